"""The history lists as people read them (issue 12): names rather than ids, statuses as labelled
badges, long text on one line with the whole of it on hover, no codes or Python reprs, the
tenant column only while several tenants are listed, and the same queries for 5 rows or 50.

The fit on a 1366 px screen is measured in a browser: tests/browser/test_history_lists.py.
"""

from __future__ import annotations

import datetime as dt
import html as html_lib
import re

import pytest
from django.contrib.auth.models import User
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ClientFactory,
    PSAConnectionFactory,
    TenantFactory,
    TimeEntryFactory,
)
from tests.timelogging.admin_support import admin_url
from timelogging.admin.display import duration_text
from timelogging.admin.history import AutomationRunAdmin, TimeEntryAdmin
from timelogging.models import (
    AutomationRun,
    ConfigChange,
    PostAttempt,
    PSAConnection,
    StaffProfile,
    Tenant,
    TimeEntry,
)
from timelogging.services.roles import role_grant

pytestmark = pytest.mark.django_db

LONG_CLIENT = "Northwind Traders International Holdings (EMEA Managed Services Division)"
LONG_ERROR = (
    "ConnectWise refused the request: chargeToId: Ticket 1001 is closed and cannot accept "
    "time entries; member jdoe has no access to the Service Desk board of the company"
)
# Codes that must never reach a reader: error classes, skip reasons, vendors, statuses.
CODES = (
    "unresolved",
    "permanent",
    "not_found",
    "connectwise",
    "client_not_in_scope",
    "retry_wait",
    "status_off",
)


def shown_text(page: str) -> str:
    """What a reader sees or hovers over: the text between tags and the title attributes,
    without the sidebar's filter links (their addresses carry codes, not their words)."""
    titles = " ".join(re.findall(r'title="([^"]*)"', page))
    text = re.sub(r"<script.*?</script>|<style.*?</style>", " ", page, flags=re.S)
    text = re.sub(r"<[^>]+>", " ", text)
    return html_lib.unescape(f"{text} {titles}")


def history(tenant: Tenant, n: int) -> None:
    """``n`` runs with entries of every status, and a skipped run, of ``tenant``."""
    client = ClientFactory(tenant=tenant, name=LONG_CLIENT)
    automation = AutomationFactory(tenant=tenant, name="Reset password and unlock account")
    statuses = [s for s, _ in TimeEntry.Status.choices]
    for i in range(n):
        run = AutomationRunFactory(tenant=tenant, client=client, automation=automation)
        status = statuses[i % len(statuses)]
        failed = status in (TimeEntry.Status.FAILED, TimeEntry.Status.HELD)
        TimeEntryFactory(
            run=run,
            status=status,
            psa_user_ref="jdoe",
            psa_user_name="John Doe",
            psa_entry_id="4521" if status == TimeEntry.Status.POSTED else "",
            error_class="unresolved" if failed else "",
            error=LONG_ERROR if failed else "",
            attempts=2 if failed else 0,
        )
    AutomationRunFactory(
        tenant=tenant,
        client=client,
        automation=automation,
        decision=AutomationRun.Decision.SKIP,
        skip_reason=AutomationRun.SkipReason.CLIENT_NOT_IN_SCOPE,
    )


def config_history(tenant: Tenant, n: int, actor: User) -> None:
    connection_type = ContentType.objects.get_for_model(PSAConnection)
    for i in range(n):
        ConfigChange.objects.create(
            tenant=tenant,
            actor=actor if i % 2 else None,
            content_type=connection_type,
            object_pk=str(i),
            object_repr=f"ConnectWise PSA ({tenant.name})",
            action=ConfigChange.Action.UPDATE,
            changes={"vendor": ["autotask", "connectwise"], "name": ["", LONG_CLIENT]},
        )


def paused(tenant: Tenant, n: int) -> None:
    for _ in range(n):
        PSAConnectionFactory(
            tenant=tenant,
            is_active=False,
            paused_at=timezone.now(),
            pause_reason=LONG_ERROR,
        )


def queries(client, url: str, params: dict | None = None) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params or {})
        assert response.status_code == 200
    return len(ctx.captured_queries)


# --- the same queries for 5 rows or 50 -------------------------------------------------------
PAGES = {
    "runs": lambda: admin_url(AutomationRun, "changelist"),
    "entries": lambda: admin_url(TimeEntry, "changelist"),
    "configuration history": lambda: admin_url(ConfigChange, "changelist"),
    "delivery queue": lambda: reverse("admin:delivery_queue"),
}


def fill(tenant: Tenant, n: int, actor: User) -> None:
    history(tenant, n)
    config_history(tenant, n, actor)
    paused(tenant, n)


@pytest.mark.parametrize("page", list(PAGES))
@pytest.mark.parametrize("who", ["superuser", "superuser, one tenant", "staff"])
def test_a_page_costs_the_same_queries_for_5_rows_or_50(client, admin_user, page, who, monkeypatch):
    # 20 rows a page: 5 rows are one page, 50 are three (the paginator's path), both counted.
    monkeypatch.setattr(AutomationRunAdmin, "list_per_page", 20)
    monkeypatch.setattr(TimeEntryAdmin, "list_per_page", 20)
    tenant = TenantFactory(name="Acme MSP")
    params = {}
    if who == "staff":
        user = User.objects.create_user("staff", password="pw")
        role_grant(user=user, tenant=tenant, role="staff")
        client.force_login(user)
    else:
        client.force_login(admin_user)
        if who == "superuser, one tenant":
            params = {"tenant__id__exact": tenant.pk}
    url = PAGES[page]()
    fill(tenant, 5, admin_user)
    queries(client, url, params)  # warm: the session, content types and caches of a first visit
    few = queries(client, url, params)
    fill(tenant, 45, admin_user)
    assert queries(client, url, params) == few
    if page in ("runs", "entries"):
        assert queries(client, url, {**params, "p": 2}) == few


# --- what the lists say ------------------------------------------------------------------------
@pytest.fixture
def acme(admin_user):
    tenant = TenantFactory(name="Acme MSP")
    history(tenant, 7)
    config_history(tenant, 2, admin_user)
    paused(tenant, 1)
    return tenant


def test_entries_list_names_client_and_automation_and_says_status_in_words(admin_client, acme):
    page = admin_client.get(admin_url(TimeEntry, "changelist")).content.decode()
    text = shown_text(page)
    assert LONG_CLIENT in text and "Reset password and unlock account" in text
    # Each status a badge with its words (short in the column, whole on hover).
    assert 'piadesk-badge-error" title="Failed (needs a person)">Failed<' in page
    assert 'title="Held (connection paused)">Held<' in page
    assert 'title="Waiting to retry">Retrying<' in page
    assert '>Posted</span> <span class="piadesk-psa-id"' in page and "#4521" in page
    # The error on one line, the whole of it (with whose problem it is) on hover.
    hover = f'class="piadesk-one-line" title="One user (no usable PSA user) · {LONG_ERROR}'
    assert hover in html_lib.unescape(page)
    assert "2 attempts" in text
    for code in CODES:
        assert code not in text, code


def test_runs_list_says_the_decision_and_why_in_words(admin_client, acme):
    page = admin_client.get(admin_url(AutomationRun, "changelist")).content.decode()
    text = shown_text(page)
    assert "Logged" in text and "Skipped" in text
    assert "The client carries none of the chosen tags" in text
    assert LONG_CLIENT in text
    # The entry's status, linked to the entry.
    entry = TimeEntry.objects.filter(status=TimeEntry.Status.FAILED).first()
    assert f'href="{admin_url(entry, "change")}"' in page
    for code in CODES:
        assert code not in text, code


def test_config_history_and_queue_say_codes_in_words(admin_client, acme):
    acme.time_zone = "America/New_York"
    acme.save()
    ConfigChange.objects.create(
        tenant=acme,
        content_type=ContentType.objects.get_for_model(PSAConnection),
        object_pk="1",
        object_repr="ConnectWise PSA",
        action=ConfigChange.Action.UPDATE,
        changes={
            "paused_at": ["None", "2026-01-14 15:04:05.123456+00:00"],
            "settings": [{}, {"company_id": "acme"}],
        },
    )
    page = admin_client.get(
        admin_url(ConfigChange, "changelist"), {"tenant__id__exact": acme.pk}
    ).content.decode()
    text = shown_text(page)
    assert "Autotask → ConnectWise PSA" in text
    # A time in the tenant's zone, labelled, not a Python repr; settings by their labels.
    assert "(empty) → 2026-01-14 10:04 EST" in text and "05.123456" not in text
    assert "Company ID: acme" in text and "company_id" not in text
    queue = admin_client.get(reverse("admin:delivery_queue")).content.decode()
    text = shown_text(queue)
    assert "One user (no usable PSA user)" in text
    assert 'title="Failed (needs a person)">Failed<' in queue
    # The pause's reason on one line, the whole of it on hover.
    assert f'<span class="piadesk-one-line" title="{LONG_ERROR}">' in html_lib.unescape(queue)
    assert '<meta http-equiv="refresh"' in queue
    for code in CODES:
        assert code not in text, code


def test_tenant_column_only_while_several_tenants_are_listed(client, admin_client, acme):
    for model in (AutomationRun, TimeEntry, ConfigChange):
        url = admin_url(model, "changelist")
        assert "column-tenant_name" in admin_client.get(url).content.decode()
        one = admin_client.get(url, {"tenant__id__exact": acme.pk}).content.decode()
        assert "column-tenant_name" not in one
    user = User.objects.create_user("auditor", password="pw")
    role_grant(user=user, tenant=acme, role="auditor")
    client.force_login(user)
    assert StaffProfile.objects.get(user=user).tenant == acme
    page = client.get(admin_url(TimeEntry, "changelist")).content.decode()
    assert "column-tenant_name" not in page and LONG_CLIENT in page


def test_sorting_is_offered_on_the_indexed_date_only_across_tenants(admin_client, acme):
    # HistoryModelAdmin's rule holds for the new columns: across tenants only the date sorts.
    for model, date in ((AutomationRun, "received_at"), (TimeEntry, "created_at")):
        cl = admin_client.get(admin_url(model, "changelist")).context["cl"]
        assert list(cl.sortable_by) == [date]
    # Names are read from other tables: never sortable (a join sort), even for one tenant.
    for model in (AutomationRun, TimeEntry):
        url = admin_url(model, "changelist")
        page = admin_client.get(url, {"tenant__id__exact": acme.pk}).content.decode()
        for column in ("client_name", "automation_name"):
            header = re.search(rf'<th scope="col" class="([^"]*column-{column}[^"]*)"', page)
            assert header and "sortable" not in header.group(1), column


def test_durations_read_as_seconds_not_python_reprs(admin_client, acme):
    entry = TimeEntry.objects.filter(status=TimeEntry.Status.FAILED).first()
    PostAttempt.objects.create(
        tenant=acme,
        entry=entry,
        number=1,
        started_at=timezone.now(),
        duration_ms=17_080,
        outcome="unresolved",
        error=LONG_ERROR,
        exchanges=[{"method": "GET", "url": "https://cw.example.com/x", "duration_ms": 17_080}],
    )
    run = entry.run
    run.completed_at = run.started_at + dt.timedelta(seconds=17.080418)
    run.save()
    page = admin_client.get(admin_url(entry, "change")).content.decode()
    assert "17.1 s" in page and "0:00:17" not in page and "17080" not in page
    # The error whole on the entry's page; the attempt's outcome in words.
    assert LONG_ERROR in html_lib.unescape(page)
    assert "One user (no usable PSA user)" in page
    assert "attempt 1: One user (no usable PSA user)" in page  # the attempt's row title
    for code in CODES:
        assert code not in shown_text(page), code
    run_page = admin_client.get(admin_url(run, "change")).content.decode()
    assert "17.1 s" in run_page and "0:00:17" not in run_page
    for code in CODES:
        assert code not in shown_text(run_page), code


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (0.35, "350 ms"),
        (17.080418, "17.1 s"),
        (60, "1 min"),
        (200, "3 min 20 s"),
        (3600, "1 h"),
        (4000, "1 h 6 min"),
    ],
)
def test_duration_text(seconds, text):
    assert duration_text(seconds) == text
