"""The configuration history is searchable (names, users, fields and values, reasons) and
exportable as CSV (the list as filtered and searched, in the page's words), for staff and
auditors of the tenant only."""

from __future__ import annotations

import csv
import io

import pytest

from tests.timelogging.admin_support import admin_url, changeform_data
from tests.timelogging.tenancy import A_MARK, B_MARK, build_world, make_member, text
from timelogging.models import ConfigChange, Tag
from timelogging.services.operations import entries_discard

pytestmark = pytest.mark.django_db

HISTORY = admin_url(ConfigChange, "changelist")
EXPORT = HISTORY + "export.csv"


@pytest.fixture
def a():
    return build_world(A_MARK)


@pytest.fixture
def staff_user(a):
    return make_member(a.tenant, "staff", username="sam.staff")


@pytest.fixture
def staff(client, staff_user, a):
    client.force_login(staff_user)
    page = client.get(admin_url(a.tenant, "change"))
    client.post(admin_url(a.tenant, "change"), changeform_data(page, time_logging_enabled="False"))
    client.post(admin_url(Tag, "add"), {"tenant": a.tenant.pk, "name": "Night shift"})
    return client


def shown(client, term: str) -> list[str]:
    response = client.get(HISTORY, {"q": term})
    assert response.status_code == 200
    return sorted(c.object_repr for c in response.context["cl"].result_list)


def test_search_by_name_user_field_and_value_in_part(staff, a):
    assert shown(staff, "night") == ["Night shift"]
    assert set(shown(staff, "SAM.st")) >= {"Night shift", a.tenant.name}
    assert a.tenant.name in shown(staff, "time_logging_enabled")  # the field changed
    response = staff.get(HISTORY, {"q": "night"})
    assert "Searched names, users, changed fields and values, and reasons for “night”" in text(
        response
    )


def test_search_finds_an_operations_reason(staff, staff_user, a):
    entries_discard(entry_ids=[a.entry.pk], actor=staff_user, reason="Duplicate of a manual entry")
    found = staff.get(HISTORY, {"q": "manual entry"}).context["cl"].result_list
    assert [c.content_type.model for c in found] == ["timeentry"]


def test_search_never_reaches_another_tenants_history(staff):
    build_world(B_MARK)
    assert shown(staff, B_MARK) == []


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(
        'attachment; filename="configuration-history-'
    )
    body = b"".join(response.streaming_content).decode("utf-8")
    assert body.startswith("\ufeff")  # Excel reads it as UTF-8
    return list(csv.DictReader(io.StringIO(body[1:])))


def test_export_is_the_list_as_filtered_and_searched_in_the_pages_words(staff, a):
    rows = read_csv(staff.get(EXPORT, {"q": "time_logging_enabled"}))
    assert rows, "the change is exported"
    assert {r["what"] for r in rows} == {f"Tenant settings: {a.tenant.name}"}
    [row] = [r for r in rows if "status: Yes → No" in r["changes"]]
    assert (row["user"], row["action"]) == ("sam.staff", "Changed")
    assert row["when (UTC)"].endswith("+00:00")
    assert list(rows[0]) == ["when (UTC)", "tenant", "user", "what", "action", "changes", "address"]

    everything = read_csv(staff.get(EXPORT))
    assert len(everything) == ConfigChange.objects.filter(tenant=a.tenant).count()
    build_world(B_MARK)
    assert B_MARK not in "".join(str(r) for r in read_csv(staff.get(EXPORT)))


def test_export_cells_never_run_as_spreadsheet_formulas(admin_client, staff, a):
    a.tenant.name = "=HYPERLINK(1)"
    a.tenant.save()
    rows = read_csv(admin_client.get(EXPORT, {"q": "night"}))
    assert [r["tenant"] for r in rows] == ["'=HYPERLINK(1)"]


def test_the_list_links_its_export_with_the_current_filters(staff):
    html = text(staff.get(HISTORY, {"q": "night"}))
    assert f'href="{EXPORT}?q=night"' in html


def test_auditors_export_their_tenant_and_others_cannot(client, a):
    client.force_login(make_member(a.tenant, "auditor", username="ann.auditor"))
    assert read_csv(client.get(EXPORT))
    client.logout()
    assert client.get(EXPORT).status_code == 302  # to the login page
