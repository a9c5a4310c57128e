"""Reports: time logged per client / automation / PSA user by week or month, runs logged and
skipped; numbers, tenant isolation, the page and its SVG charts."""

from __future__ import annotations

import datetime as dt
import importlib

import pytest
from django.apps import apps as django_apps
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from tests.factories import (
    AutomationFactory,
    AutomationRunFactory,
    ClientFactory,
    TenantFactory,
    TimeEntryFactory,
)
from timelogging.admin.charts import axis_ticks, bar_list_chart, column_chart, with_unit
from timelogging.admin.reports import default_range, period_starts, pivot
from timelogging.models import AutomationRun, ReportMonth, StaffProfile, TimeEntry
from timelogging.selectors import report_names, run_decisions_by_period, time_logged_by_period
from timelogging.services.entry_catalog import entries_catalog_fill
from timelogging.tasks import sweep_entries

pytestmark = pytest.mark.django_db

REPORTS = "admin:reports"
MONDAY = dt.date(2026, 3, 2)  # weeks of 2 and 9 March 2026


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def posted(tenant, *, client, automation, start, minutes, user=("jdoe", "John Doe"), **kw):
    run = AutomationRunFactory(
        tenant=tenant, client=client, automation=automation, started_at=start
    )
    AutomationRun.objects.filter(pk=run.pk).update(received_at=start + dt.timedelta(minutes=7))
    return TimeEntryFactory(
        run=run,
        minutes=minutes,
        start=start,
        status=kw.pop("status", TimeEntry.Status.POSTED),
        psa_user_ref=user[0],
        psa_user_name=user[1],
        **kw,
    )


@pytest.fixture
def acme():
    """Acme: two clients, two automations, entries in two weeks; plus noise that must not
    count (failed, out of range, another tenant)."""
    tenant = TenantFactory(name="Acme")
    contoso = ClientFactory(tenant=tenant, key="contoso", name="Contoso")
    fabrikam = ClientFactory(tenant=tenant, key="fabrikam", name="")  # shown by its key
    reset = AutomationFactory(tenant=tenant, name="Reset password")
    onboard = AutomationFactory(tenant=tenant, name="Onboard user")
    week1, week2 = MONDAY, MONDAY + dt.timedelta(days=7)
    posted(tenant, client=contoso, automation=reset, start=at(week1), minutes=20)
    posted(
        tenant,
        client=contoso,
        automation=onboard,
        start=at(week1 + dt.timedelta(days=6), 23),
        minutes=40,
    )
    posted(
        tenant,
        client=fabrikam,
        automation=reset,
        start=at(week2),
        minutes=15,
        user=("asmith", "Ann Smith"),
    )
    posted(
        tenant,
        client=fabrikam,
        automation=reset,
        start=at(week2),
        minutes=99,
        status=TimeEntry.Status.FAILED,
    )
    posted(
        tenant, client=contoso, automation=reset, start=at(week1 - dt.timedelta(days=1)), minutes=50
    )
    for reason in ("client_not_in_scope", "client_not_in_scope", "automation_off"):
        run = AutomationRunFactory(
            tenant=tenant, client=fabrikam, automation=reset, decision="skip", skip_reason=reason
        )
        AutomationRun.objects.filter(pk=run.pk).update(received_at=at(week2, 12))
    other = TenantFactory(name="Other")
    posted(
        other,
        client=ClientFactory(tenant=other, name="Contoso"),
        automation=AutomationFactory(tenant=other),
        start=at(week1),
        minutes=500,
    )
    return tenant


RANGE = {"start": MONDAY, "end": MONDAY + dt.timedelta(days=13)}


def test_time_per_client_automation_and_user_by_week(acme):
    rows = time_logged_by_period(tenant_ids=[acme.pk], period="week", by="client", **RANGE)
    names = report_names(by="client", keys=[r.key for r in rows])
    got = sorted((r.period, names[r.key], r.minutes, r.entries) for r in rows)
    week2 = MONDAY + dt.timedelta(days=7)
    assert got == [(MONDAY, "Contoso", 60, 2), (week2, "fabrikam", 15, 1)]

    rows = time_logged_by_period(tenant_ids=[acme.pk], period="week", by="automation", **RANGE)
    names = report_names(by="automation", keys=[r.key for r in rows])
    got = sorted((r.period, names[r.key], r.minutes) for r in rows)
    assert got == [
        (MONDAY, "Onboard user", 40),
        (MONDAY, "Reset password", 20),
        (week2, "Reset password", 15),
    ]

    rows = time_logged_by_period(tenant_ids=[acme.pk], period="week", by="psa_user", **RANGE)
    got = sorted((r.period, r.key, r.name, r.minutes) for r in rows)
    assert got == [(MONDAY, "jdoe", "John Doe", 60), (week2, "asmith", "Ann Smith", 15)]


def test_time_by_month_and_the_range_is_inclusive(acme):
    rows = time_logged_by_period(
        tenant_ids=[acme.pk],
        period="month",
        by="client",
        start=MONDAY - dt.timedelta(days=1),
        end=MONDAY + dt.timedelta(days=13),
    )
    names = report_names(by="client", keys=[r.key for r in rows])
    got = sorted((r.period, names[r.key], r.minutes) for r in rows)
    # The entry of Sunday 1 March is in; all of March is one month.
    assert got == [(dt.date(2026, 3, 1), "Contoso", 110), (dt.date(2026, 3, 1), "fabrikam", 15)]


def test_run_decisions_count_logged_and_skipped_with_reasons(acme):
    rows = run_decisions_by_period(tenant_ids=[acme.pk], period="week", **RANGE)
    got = sorted((r.period, r.decision, r.skip_reason, r.runs) for r in rows)
    week2 = MONDAY + dt.timedelta(days=7)
    assert got == [
        (MONDAY, "log", "", 2),
        (week2, "log", "", 2),  # the failed entry's run was logged too
        (week2, "skip", "automation_off", 1),
        (week2, "skip", "client_not_in_scope", 2),
    ]


def test_other_tenants_never_count(acme):
    other_ids = list(
        TimeEntry.objects.exclude(tenant=acme).values_list("tenant_id", flat=True).distinct()
    )
    rows = time_logged_by_period(tenant_ids=[acme.pk], period="week", by="client", **RANGE)
    assert sum(r.minutes for r in rows) == 75
    rows = time_logged_by_period(tenant_ids=other_ids, period="week", by="client", **RANGE)
    assert sum(r.minutes for r in rows) == 500


def test_periods_and_pivot_fill_gaps_and_sum_the_rest():
    weeks = period_starts(dt.date(2026, 3, 4), dt.date(2026, 3, 30), "week")
    assert weeks == [dt.date(2026, 3, 2) + dt.timedelta(weeks=i) for i in range(5)]
    months = period_starts(dt.date(2025, 11, 15), dt.date(2026, 2, 1), "month")
    assert months == [
        dt.date(2025, 11, 1),
        dt.date(2025, 12, 1),
        dt.date(2026, 1, 1),
        dt.date(2026, 2, 1),
    ]
    assert default_range("week", dt.date(2026, 3, 18)) == (
        dt.date(2025, 12, 29),
        dt.date(2026, 3, 18),
    )
    assert default_range("month", dt.date(2026, 3, 18)) == (
        dt.date(2025, 4, 1),
        dt.date(2026, 3, 18),
    )

    from timelogging.selectors import TimeLogged

    rows = [
        TimeLogged(period=weeks[i % 2], key=f"c{i}", minutes=60 * (i + 1), entries=1)
        for i in range(5)
    ]
    looked_up = []

    def names(keys):
        looked_up.append(keys)
        return {key: f"Client {key[1:]}" for key in keys}

    table = pivot(rows, weeks, names=names, top=2)
    assert looked_up == [["c4", "c3"]]  # only the names shown
    assert [r.name for r in table] == ["Client 4", "Client 3", "Other (3)"]
    assert table[0].hours == [5.0, 0, 0, 0, 0] and table[1].hours == [0, 4.0, 0, 0, 0]
    assert table[2].total == 6.0 and table[2].entries == 3


def _report(client, **params):
    return client.get(reverse(REPORTS), params)


def test_the_page_draws_svg_charts_and_tables(admin_client, acme):
    response = _report(admin_client, tenant=acme.pk, start="2026-03-02", end="2026-03-15")
    assert response.status_code == 200
    html = response.content.decode()
    # Time per week, clients, automations, users, runs, reasons (the admin has icon SVGs too).
    # ... and the entries not in the PSA (one failed).
    assert html.count('class="piadesk-chart"') == 7
    assert "Contoso" in html and "fabrikam" in html and "Ann Smith" in html
    assert "1.25 h" in html  # 75 minutes logged
    assert "The client carries none of the chosen tags" in html
    assert "66.7 %" in html  # share of skipped runs out of scope (2 of 3)
    report = response.context["report"]
    assert report["runs_logged"] == 4 and report["runs_skipped"] == 3
    assert report["total_entries"] == 3
    # Linked from the time entries list.
    changelist = admin_client.get(reverse("admin:timelogging_timeentry_changelist"))
    assert reverse(REPORTS) in changelist.content.decode()


def test_names_are_escaped_in_charts_and_tables(admin_client):
    tenant = TenantFactory()
    evil = ClientFactory(tenant=tenant, name='<script>alert("x")</script>')
    posted(
        tenant,
        client=evil,
        automation=AutomationFactory(tenant=tenant),
        start=timezone.now() - dt.timedelta(days=1),
        minutes=5,
    )
    html = _report(admin_client, tenant=tenant.pk).content.decode()
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert" in html


def test_superusers_choose_a_tenant_and_staff_see_only_their_own(client, admin_client, acme):
    response = _report(admin_client)
    assert response.status_code == 200 and response.context["report"] is None
    assert "Choose a tenant" in response.content.decode()

    other = TenantFactory(name="Initech")
    staff = User.objects.create_user("auditor", password="pw", is_staff=True)
    staff.user_permissions.set(Permission.objects.filter(codename="view_timeentry"))
    StaffProfile.objects.create(user=staff, tenant=acme)
    client.force_login(staff)
    response = _report(client)  # their only tenant, chosen for them
    assert response.context["report"] is not None
    assert response.context["tenant"] == acme
    assert "Initech" not in response.content.decode()
    response = _report(client, tenant=other.pk)
    assert response.context["report"] is None
    assert "Select a valid choice" in response.content.decode()


def test_without_view_permission_or_tenant_nothing_is_shown(client, acme):
    nobody = User.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(nobody)
    assert _report(client, tenant=acme.pk).status_code == 403
    nobody.user_permissions.set(Permission.objects.filter(codename="view_timeentry"))
    response = _report(client, tenant=acme.pk)
    assert response.status_code == 200 and response.context["report"] is None
    assert "belongs to no tenant" in response.content.decode()


def test_bad_ranges_are_refused(admin_client, acme):
    response = _report(admin_client, tenant=acme.pk, start="2026-03-10", end="2026-03-01")
    assert response.context["report"] is None
    assert "“To” is before “From”" in response.content.decode()
    response = _report(admin_client, tenant=acme.pk, start="2020-01-01", end="2026-03-01")
    assert "at most three years" in response.content.decode()


def test_queries_do_not_grow_with_clients_or_periods(admin_client, acme):
    def count(**params):
        # Each view sums what it keeps anew (PostgreSQL keeps closed months): the same work.
        ReportMonth.objects.all().delete()
        with CaptureQueriesContext(connection) as ctx:
            assert _report(admin_client, tenant=acme.pk, **params).status_code == 200
        return len(ctx.captured_queries)

    few = count(start="2026-03-02", end="2026-03-15")
    few_months = count(start="2025-03-02", end="2026-03-15", period="month")
    for i in range(15):
        posted(
            acme,
            client=ClientFactory(tenant=acme),
            automation=AutomationFactory(tenant=acme),
            start=at(MONDAY + dt.timedelta(days=i % 14)),
            minutes=5,
        )
    assert count(start="2026-03-02", end="2026-03-15") == few
    assert count(start="2025-03-02", end="2026-03-15", period="week") == few
    assert count(start="2025-03-02", end="2026-03-15", period="month") == few_months


def test_entries_not_in_the_psa_are_reported_by_status(admin_client, acme):
    week2 = MONDAY + dt.timedelta(days=7)
    contoso = acme.client_set.get(key="contoso")
    reset = acme.automation_set.get(name="Reset password")
    for status, minutes in (("held", 10), ("held", 5), ("discarded", 30), ("retry_wait", 7)):
        posted(
            acme, client=contoso, automation=reset, start=at(week2), minutes=minutes, status=status
        )
    response = _report(admin_client, tenant=acme.pk, start="2026-03-02", end="2026-03-15")
    report = response.context["report"]
    got = [(r.status, r.entries, r.total, r.hours) for r in report["not_posted"]]
    # In the order a person deals with them; the fixture's failed entry (99 min) among them.
    assert got == [
        ("failed", [0, 1], 1, 99 / 60),
        ("held", [0, 2], 2, 15 / 60),
        ("retry_wait", [0, 1], 1, 7 / 60),
        ("discarded", [0, 1], 1, 0.5),
    ]
    assert report["not_posted_total"] == 5
    html = response.content.decode()
    assert "Discarded (never posted)" in html
    assert f"?status__exact=held&amp;tenant__id__exact={acme.pk}" in html
    assert "5</strong>entries not in the PSA" in html.replace("\n", "")
    # Posted time is unchanged by them.
    assert report["total_entries"] == 3


def test_the_report_downloads_as_csv(admin_client, acme):
    response = admin_client.get(
        reverse("admin:reports_csv"),
        {"tenant": acme.pk, "start": "2026-03-02", "end": "2026-03-15"},
    )
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith(f'attachment; filename="report-{acme.pk}-')
    lines = b"".join(response.streaming_content).decode().lstrip("\ufeff").splitlines()
    assert lines[0] == "table,name,2 Mar,9 Mar,total,entries"
    assert "hours per client,Contoso,1.00,0.00,1.00,2" in lines
    assert "hours per psa user,Ann Smith,0.00,0.25,0.25,1" in lines
    assert "entries not in the PSA,Failed (needs a person),0,1,1.65,1" in lines
    assert "runs skipped,The client carries none of the chosen tags,,,,2" in lines
    # The page links it with the same choices.
    page = _report(admin_client, tenant=acme.pk, start="2026-03-02", end="2026-03-15")
    assert reverse("admin:reports_csv") + "?tenant=" in page.content.decode()


def test_the_csv_is_refused_like_the_page(client, acme):
    user = User.objects.create_user("nobody", password="pw", is_staff=True)
    client.force_login(user)
    response = client.get(reverse("admin:reports_csv"), {"tenant": acme.pk})
    assert response.status_code == 403


def test_counts_are_singular_for_one(admin_client):
    tenant = TenantFactory(name="Solo")
    posted(
        tenant,
        client=ClientFactory(tenant=tenant),
        automation=AutomationFactory(tenant=tenant),
        start=at(MONDAY),
        minutes=5,
    )
    html = _report(admin_client, tenant=tenant.pk, start="2026-03-02", end="2026-03-15")
    text = " ".join(html.content.decode().split())
    assert "logged in 1 entry" in text and "1 entries" not in text
    assert "</strong>run received" in text
    assert "1 runs" not in text


def test_chart_helpers():
    assert axis_ticks(0) == [0, 1]
    assert axis_ticks(0.7) == [0, 0.2, 0.4, 0.6, 0.8]
    assert axis_ticks(7.3) == [0, 2, 4, 6, 8]
    assert axis_ticks(12) == [0, 5, 10, 15]
    assert axis_ticks(260) == [0, 100, 200, 300]
    assert axis_ticks(3, whole=True) == [0, 1, 2, 3]  # counts: never 0.75 of a run
    assert axis_ticks(2, whole=True) == [0, 1, 2]
    assert (with_unit(1, "run|runs"), with_unit(2, "run|runs"), with_unit(1.5, "h")) == (
        "1 run",
        "2 runs",
        "1.5 h",
    )
    ticks = column_chart(title="t", labels=["a"], series=[("x", [0.7])], unit="h")
    assert [t for t in ("0.2", "0.4", "0.6", "0.8") if f">{t}</text>" in ticks] == [
        "0.2",
        "0.4",
        "0.6",
        "0.8",
    ]
    assert ">0.25</text>" not in ticks and ">0.175</text>" not in ticks
    svg = column_chart(
        title="T & <b>", labels=["a<", "b"], series=[("x", [1, 2]), ("y", [0, 3])], unit="h"
    )
    assert svg.startswith("<svg") and svg.endswith("</svg>")
    assert "T &amp; &lt;b&gt;" in svg and "a&lt;" in svg
    assert svg.count("<rect") == 3 + 2  # three non-empty bars, two legend keys
    bars = bar_list_chart(title="t", items=[("one", 2.0), ("two", 1.0)], unit="h")
    assert bars.count("<rect") == 2
    assert bar_list_chart(title="t", items=[], unit="h").startswith("<svg")


# --- the entry's copy of its run's client and automation (what the reports group by) ----------
def test_entries_carry_their_runs_client_and_automation(api, run_payload):
    """Ingest (``TimeEntry.save``) copies them: the report reads the entry alone."""
    payload = run_payload()
    response = api.post("/api/v1/automation-runs/", payload, format="json")
    assert response.status_code == 201
    entry = TimeEntry.objects.select_related("run").get(run__run_id=payload["run_id"])
    assert (entry.client_id, entry.automation_id) == (entry.run.client_id, entry.run.automation_id)
    assert entry.client_id is not None


def test_the_sweep_fills_in_entries_written_by_the_previous_version(acme):
    """An entry written without them (the version before 0015, still serving during the
    upgrade) is left out of the per-client report until the sweep copies them from its run."""
    TimeEntry.objects.filter(tenant=acme).update(client=None, automation=None)
    before = time_logged_by_period(tenant_ids=[acme.pk], period="week", by="client", **RANGE)
    assert {r.key for r in before} == {"None"}

    assert sweep_entries().startswith("0 rescued")
    for entry in TimeEntry.objects.filter(tenant=acme).select_related("run"):
        assert (entry.client_id, entry.automation_id) == (
            entry.run.client_id,
            entry.run.automation_id,
        )
    after = time_logged_by_period(tenant_ids=[acme.pk], period="week", by="client", **RANGE)
    assert "None" not in {r.key for r in after}
    assert sum(r.minutes for r in after) == 75
    assert entries_catalog_fill() == 0  # nothing left: the partial index is empty


def test_migration_0015_copies_client_and_automation_onto_existing_entries(acme):
    """Its data step, on entries as the previous version left them (the schema steps are
    Django's own)."""
    migration = importlib.import_module("timelogging.migrations.0015_entry_client_automation")
    TimeEntry.objects.update(client=None, automation=None)
    migration.copy_from_runs(django_apps, connection.schema_editor())
    entries = TimeEntry.objects.select_related("run")
    assert entries.count() > 1
    for entry in entries:
        assert (entry.client_id, entry.automation_id) == (
            entry.run.client_id,
            entry.run.automation_id,
        )
