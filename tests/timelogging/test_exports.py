"""The CSV export of the time entry history: from the API and from the admin changelist."""

from __future__ import annotations

import csv
import io

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ClientFactory,
    TenantFactory,
    TimeEntryFactory,
)
from tests.timelogging.admin_support import admin_url
from timelogging.exports import TIME_ENTRY_COLUMNS, csv_safe
from timelogging.models import StaffProfile, TenantAPIKey, TimeEntry

EXPORT = "/api/v1/time-entries/export.csv"
HEADER = [header for header, _ in TIME_ENTRY_COLUMNS]
pytestmark = pytest.mark.django_db


def entry_for(tenant, **kwargs) -> TimeEntry:
    run_kwargs = {k[5:]: kwargs.pop(k) for k in list(kwargs) if k.startswith("run__")}
    return TimeEntryFactory.create(
        run=AutomationRunFactory.create(tenant=tenant, **run_kwargs), **kwargs
    )


def read_csv(response) -> list[dict[str, str]]:
    assert response.status_code == 200, getattr(response, "content", b"")
    assert response.streaming  # never the whole file in memory
    text = b"".join(response.streaming_content).decode("utf-8")
    text = text.removeprefix("\ufeff")
    rows = list(csv.reader(io.StringIO(text)))
    # The admin's export names the zone of its time columns: "start (America/New_York)".
    assert [header.split(" (")[0] for header in rows[0]] == HEADER
    return [dict(zip(HEADER, row, strict=True)) for row in rows[1:]]


@pytest.mark.parametrize(
    "value,expected",
    [
        ('=HYPERLINK("http://evil","x")', '\'=HYPERLINK("http://evil","x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("Contoso = good", "Contoso = good"),
        ("", ""),
        (None, ""),
        (7, "7"),
    ],
)
def test_csv_safe_defuses_formulas(value, expected):
    assert csv_safe(value) == expected


def test_api_export_is_a_streamed_attachment_with_every_column(api, tenant):
    client = ClientFactory(tenant=tenant, key="contoso", name="Contoso Ltd – Zürich")
    automation = AutomationFactory(tenant=tenant, key="reset", name="Reset password")
    entry = entry_for(
        tenant,
        run__run_id="run-42",
        run__ticket_id="1001",
        run__client=client,
        run__automation=automation,
        status=TimeEntry.Status.FAILED,
        psa_user_ref="jdoe",
        psa_user_name="John Doe",
        attempts=2,
        error_class="permanent",
        error='ConnectWise said: "member, jdoe" cannot\nenter time',
    )
    response = api.get(EXPORT)
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="time-entries-')
    assert disposition.endswith('.csv"')
    (row,) = read_csv(response)
    assert row == {
        "tenant": "Acme MSP",
        "run_id": "run-42",
        "reference": entry.run.reference_text,
        "ticket_id": "1001",
        "client_key": "contoso",
        "client_name": "Contoso Ltd – Zürich",
        "automation_key": "reset",
        "automation_name": "Reset password",
        "started_by": entry.run.started_by,
        "status": "failed",
        "minutes": "7",
        "start": entry.start.isoformat(),
        "end": entry.end.isoformat(),
        "log_as": "starter",
        "psa_user_ref": "jdoe",
        "psa_user_name": "John Doe",
        "psa_entry_id": "",
        "attempts": "2",
        "error_class": "permanent",
        "error": 'ConnectWise said: "member, jdoe" cannot\nenter time',
        "created_at": entry.created_at.isoformat(),
        "posted_at": "",
    }


def test_api_export_has_no_byte_order_mark(api, tenant):
    entry_for(tenant)
    response = api.get(EXPORT)
    assert b"".join(response.streaming_content).startswith(b"tenant,")


def test_api_export_defuses_formulas_sent_by_the_automation_service(api, tenant):
    client = ClientFactory(tenant=tenant, key="=cmd|' /C calc'!A0", name="@SUM(1+1)*cmd")
    entry_for(tenant, run__client=client, error="-1+1")
    (row,) = read_csv(api.get(EXPORT))
    assert row["client_key"] == "'=cmd|' /C calc'!A0"
    assert row["client_name"] == "'@SUM(1+1)*cmd"
    assert row["error"] == "'-1+1"


def test_api_export_honours_the_filters_and_the_tenant(api, tenant):
    other = TenantFactory()
    entry_for(other, run__run_id="theirs", status=TimeEntry.Status.FAILED)
    entry_for(tenant, run__run_id="ok", status=TimeEntry.Status.POSTED)
    entry_for(tenant, run__run_id="bad-1", status=TimeEntry.Status.FAILED)
    entry_for(tenant, run__run_id="bad-2", status=TimeEntry.Status.FAILED)
    assert [r["run_id"] for r in read_csv(api.get(EXPORT))] == ["bad-2", "bad-1", "ok"]
    rows = read_csv(api.get(EXPORT, {"status": "failed"}))
    assert [r["run_id"] for r in rows] == ["bad-2", "bad-1"]
    _, their_key = TenantAPIKey.objects.create_key(tenant=other, name="theirs")
    from rest_framework.test import APIClient

    theirs = APIClient()
    theirs.credentials(HTTP_AUTHORIZATION=f"Bearer {their_key}")
    assert [r["run_id"] for r in read_csv(theirs.get(EXPORT))] == ["theirs"]


def test_api_export_ignores_the_accept_header(api, tenant):
    entry_for(tenant)
    assert len(read_csv(api.get(EXPORT, HTTP_ACCEPT="text/csv"))) == 1
    response = api.get(EXPORT, {"status": "nope"}, HTTP_ACCEPT="text/csv")
    assert response.status_code == 400
    assert response.json()["errors"]["status"]


def test_api_export_of_an_empty_history_is_the_header(api):
    assert read_csv(api.get(EXPORT)) == []


def _export_queries(client, url, params=None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
        assert response.status_code == 200
        b"".join(response.streaming_content)
    return len(ctx.captured_queries)


def test_api_export_queries_do_not_grow_with_the_rows(api, tenant, settings):
    settings.PIADESK_API_CACHE_SECONDS = 0  # the key is read on each request, as counted below
    for _ in range(3):
        entry_for(tenant)
    few = _export_queries(api, EXPORT)
    for _ in range(40):
        entry_for(tenant)
    assert _export_queries(api, EXPORT) == few == 2  # the key, then the rows


def test_api_export_reads_in_chunks(api, tenant, monkeypatch):
    """Rows are fetched chunk by chunk (constant memory), not all at once."""
    from django.db.models.query import QuerySet

    chunk_sizes = []
    iterator = QuerySet.iterator

    def spy(self, chunk_size=None):
        chunk_sizes.append(chunk_size)
        return iterator(self, chunk_size=chunk_size)

    monkeypatch.setattr(QuerySet, "iterator", spy)
    entry_for(tenant)
    assert len(read_csv(api.get(EXPORT))) == 1
    assert chunk_sizes == [2000]


# --- the admin --------------------------------------------------------------------------------
def test_changelist_links_to_the_export_of_the_current_filters(admin_client):
    entry_for(TenantFactory())
    changelist = admin_url(TimeEntry, "changelist")
    export = admin_url(TimeEntry, "export_csv")
    html = admin_client.get(changelist).content.decode()
    assert f'href="{export}">Export CSV</a>' in html
    assert "Delivery queue" in html
    html = admin_client.get(changelist, {"status__exact": "failed", "q": "1001"}).content.decode()
    assert f'href="{export}?status__exact=failed&amp;q=1001">Export CSV</a>' in html


def test_admin_export_is_the_filtered_changelist_every_page(admin_client):
    acme, other = TenantFactory(name="Acme"), TenantFactory(name="Other")
    for n in range(3):
        entry_for(acme, run__run_id=f"acme-failed-{n}", status=TimeEntry.Status.FAILED)
    entry_for(acme, run__run_id="acme-posted", status=TimeEntry.Status.POSTED)
    entry_for(other, run__run_id="other-failed", status=TimeEntry.Status.FAILED)
    export = admin_url(TimeEntry, "export_csv")

    rows = read_csv(admin_client.get(export))
    assert len(rows) == 5
    rows = read_csv(
        admin_client.get(export, {"status__exact": "failed", "tenant__id__exact": acme.pk})
    )
    assert [r["run_id"] for r in rows] == [f"acme-failed-{n}" for n in (2, 1, 0)]
    assert {r["tenant"] for r in rows} == {"Acme"}
    # The changelist's search and ordering too; the page number is not a filter.
    rows = read_csv(admin_client.get(export, {"q": "acme-posted", "p": "7"}))
    assert [r["run_id"] for r in rows] == ["acme-posted"]
    rows = read_csv(admin_client.get(export, {"o": "-4", "status__exact": "failed"}))  # minutes
    assert len(rows) == 4


def test_admin_export_starts_with_a_byte_order_mark_for_excel(admin_client):
    entry_for(TenantFactory(), run__client=ClientFactory(name="Zürich AG"))
    response = admin_client.get(admin_url(TimeEntry, "export_csv"))
    content = b"".join(response.streaming_content)
    assert content.startswith("\ufefftenant,".encode())
    assert "Zürich AG" in content.decode("utf-8-sig")


def test_admin_export_defuses_formulas(admin_client):
    entry_for(TenantFactory(), run__automation=AutomationFactory(name="=1+2"))
    (row,) = read_csv(admin_client.get(admin_url(TimeEntry, "export_csv")))
    assert row["automation_name"] == "'=1+2"


def test_admin_export_with_unusable_parameters_goes_back_to_the_changelist(admin_client):
    response = admin_client.get(admin_url(TimeEntry, "export_csv"), {"nonsense__field": "1"})
    assert response.status_code == 302
    assert response["Location"] == admin_url(TimeEntry, "changelist") + "?e=1"


def test_admin_export_needs_view_permission(client):
    tenant = TenantFactory()
    entry_for(tenant)
    export = admin_url(TimeEntry, "export_csv")
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    StaffProfile.objects.create(user=staff, tenant=tenant)
    client.force_login(staff)
    assert client.get(export).status_code == 403
    staff.user_permissions.set(Permission.objects.filter(codename="view_timeentry"))
    staff = User.objects.get(pk=staff.pk)  # drop the cached permissions
    client.force_login(staff)
    assert len(read_csv(client.get(export))) == 1


def test_admin_export_needs_a_login(client):
    response = client.get(admin_url(TimeEntry, "export_csv"))
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_admin_export_queries_do_not_grow_with_the_rows(admin_client):
    tenant = TenantFactory()
    for _ in range(3):
        entry_for(tenant, posted_at=timezone.now())
    export = admin_url(TimeEntry, "export_csv")
    few = _export_queries(admin_client, export)
    for _ in range(30):
        entry_for(tenant)
    assert _export_queries(admin_client, export) == few
