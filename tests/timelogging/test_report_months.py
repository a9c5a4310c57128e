"""Kept months of the monthly report (services/report_months.py): the same figures as summed
from the entries, read back instead of summed, and made stale by every write that changes
them (the PostgreSQL triggers of migration 0019), concurrent ones included."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from django.db import OperationalError, connection, connections, transaction
from django.utils import timezone

from tests.factories import AutomationFactory, AutomationRunFactory, ClientFactory, TenantFactory
from tests.timelogging.test_reports import posted
from timelogging.models import AutomationRun, ReportMonth, ReportMonthFigure, TimeEntry
from timelogging.services import report_months
from timelogging.services.report_months import keep_months, report_sums

pytestmark = pytest.mark.django_db
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="months are kept on PostgreSQL only"
)

JAN, FEB, MAR = dt.date(2025, 1, 1), dt.date(2025, 2, 1), dt.date(2025, 3, 1)
YEAR = {"start": JAN, "end": dt.date(2025, 12, 31), "period": "month"}


def at(day: dt.date, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime.combine(day, dt.time(hour)))


def comparable(sums: report_months.ReportSums) -> dict:
    return {
        **{by: sorted(sums.time[by], key=repr) for by in report_months.DIMENSIONS},
        "decisions": sorted(sums.decisions, key=repr),
    }


def posted_new(tenant, *, start: dt.datetime, minutes: int, **kw) -> TimeEntry:
    """An entry of a client and an automation of its own."""
    return posted(
        tenant,
        client=ClientFactory(tenant=tenant),
        automation=AutomationFactory(tenant=tenant),
        start=start,
        minutes=minutes,
        **kw,
    )


@pytest.fixture
def books():
    """Entries and runs in January to March 2025 (months long closed), one on the last
    evening of January (the month a zone puts it in matters), noise that must not count."""
    tenant = TenantFactory(name="Books")
    north, south = ClientFactory(tenant=tenant, name="North"), ClientFactory(tenant=tenant)
    reset, onboard = AutomationFactory(tenant=tenant), AutomationFactory(tenant=tenant)
    posted(tenant, client=north, automation=reset, start=at(JAN + dt.timedelta(days=4)), minutes=20)
    posted(tenant, client=north, automation=onboard, start=at(dt.date(2025, 1, 31), 23), minutes=40)
    posted(tenant, client=south, automation=reset, start=at(FEB), minutes=15, user=("ann", "Ann"))
    posted(tenant, client=south, automation=reset, start=at(MAR), minutes=30)
    posted(tenant, client=south, automation=reset, start=at(MAR), minutes=99, status="failed")
    run = AutomationRunFactory(
        tenant=tenant, client=south, automation=reset, decision="skip", skip_reason="automation_off"
    )
    AutomationRun.objects.filter(pk=run.pk).update(received_at=at(FEB, 12))
    other = TenantFactory()
    posted_new(other, start=at(FEB), minutes=500)
    return tenant


def summed(tenant, **period) -> report_months.ReportSums:
    return report_months._summed([tenant.pk], period["start"], period["end"], period["period"])


def test_the_report_has_the_figures_summed_from_the_entries(books):
    """Kept or not, the figures are the selectors' (and kept twice, still the same)."""
    expected = comparable(summed(books, **YEAR))
    assert sum(r.minutes for r in expected["client"]) == 105
    assert comparable(report_sums(tenant_ids=[books.pk], **YEAR)) == expected
    assert comparable(report_sums(tenant_ids=[books.pk], **YEAR)) == expected
    kept = ReportMonth.objects.filter(tenant=books)
    assert kept.count() == (12 if connection.vendor == "postgresql" else 0)


def test_weeks_several_tenants_and_open_months_are_summed_from_the_entries(books):
    this_month = timezone.localdate().replace(day=1)
    report_sums(tenant_ids=[books.pk], start=this_month, end=timezone.localdate(), period="month")
    report_sums(tenant_ids=[books.pk], start=JAN, end=dt.date(2025, 3, 31), period="week")
    report_sums(tenant_ids=[books.pk, books.pk + 1], **YEAR)
    assert not ReportMonth.objects.exists()


@on_postgresql
def test_kept_months_are_read_back_not_summed_again(books):
    report_sums(tenant_ids=[books.pk], **YEAR)
    # Changed behind the triggers' back: what the report shows is what was kept.
    ReportMonthFigure.objects.filter(
        report_month__tenant=books, report_month__month=FEB, kind="client"
    ).update(minutes=1000)
    sums = report_sums(tenant_ids=[books.pk], **YEAR)
    assert sum(r.minutes for r in sums.time["client"]) == 20 + 40 + 1000 + 30


@on_postgresql
def test_a_range_partly_in_whole_months_sums_the_rest_from_the_entries(books):
    """15 January to 15 March: February kept, the two half months summed."""
    period = {"start": dt.date(2025, 1, 15), "end": dt.date(2025, 3, 15), "period": "month"}
    assert comparable(report_sums(tenant_ids=[books.pk], **period)) == comparable(
        summed(books, **period)
    )
    assert list(ReportMonth.objects.values_list("month", flat=True)) == [FEB]


@on_postgresql
def test_each_time_zone_keeps_its_own_months(books):
    """The last evening of January (UTC, the test settings' zone) is the 1st of February in
    Tokyo."""
    home = comparable(report_sums(tenant_ids=[books.pk], **YEAR))
    with timezone.override("Asia/Tokyo"):
        tokyo = comparable(report_sums(tenant_ids=[books.pk], **YEAR))
        assert tokyo == comparable(summed(books, **YEAR))

    def january(sums):
        return sum(r.minutes for r in sums["client"] if r.period == JAN)

    assert (january(home), january(tokyo)) == (60, 20)
    zones = set(ReportMonth.objects.values_list("time_zone", flat=True))
    assert zones == {timezone.get_current_timezone_name(), "Asia/Tokyo"}


@on_postgresql
def test_an_entry_posted_late_makes_its_month_stale_and_the_report_counts_it(books):
    late = posted_new(books, start=at(FEB, 9), minutes=45, status=TimeEntry.Status.POSTING)
    report_sums(tenant_ids=[books.pk], **YEAR)  # February kept without it (not posted yet)
    assert not ReportMonth.objects.filter(stale=True).exists()
    TimeEntry.objects.filter(pk=late.pk).update(status=TimeEntry.Status.POSTED)
    assert list(ReportMonth.objects.filter(stale=True).values_list("month", flat=True)) == [FEB]
    assert comparable(report_sums(tenant_ids=[books.pk], **YEAR)) == comparable(
        summed(books, **YEAR)
    )
    assert not ReportMonth.objects.filter(stale=True).exists()


@on_postgresql
@pytest.mark.parametrize(
    "write",
    [
        pytest.param(lambda entries, runs: entries.update(client=None), id="entry's client"),
        pytest.param(lambda entries, runs: entries.update(minutes=1), id="entry's minutes"),
        pytest.param(lambda entries, runs: entries.update(status="failed"), id="unposted"),
        pytest.param(lambda entries, runs: runs.update(decision="log"), id="run re-decided"),
        pytest.param(
            lambda entries, runs: runs.update(received_at=at(MAR)), id="run's received_at"
        ),
    ],
)
def test_every_write_to_a_kept_month_makes_it_stale(books, write):
    report_sums(tenant_ids=[books.pk], **YEAR)
    write(
        TimeEntry.objects.filter(tenant=books, start__month=2),
        AutomationRun.objects.filter(tenant=books, decision="skip"),
    )
    assert FEB in ReportMonth.objects.filter(stale=True).values_list("month", flat=True)
    assert comparable(report_sums(tenant_ids=[books.pk], **YEAR)) == comparable(
        summed(books, **YEAR)
    )


@on_postgresql
def test_a_run_or_entry_deleted_makes_its_month_stale(books):
    report_sums(tenant_ids=[books.pk], **YEAR)
    entry = TimeEntry.objects.get(tenant=books, start__month=3, status="posted")
    run = entry.run
    entry.delete()
    run.delete()
    assert list(ReportMonth.objects.filter(stale=True).values_list("month", flat=True)) == [MAR]


@on_postgresql
def test_unrelated_writes_leave_kept_months_alone(books):
    report_sums(tenant_ids=[books.pk], **YEAR)
    entries = TimeEntry.objects.filter(tenant=books)
    entries.update(notes="edited", error="")  # not a reported column
    entries.filter(status="failed").update(minutes=5)  # not posted: not in the sums
    other = TenantFactory()
    posted_new(other, start=at(FEB), minutes=5)
    assert not ReportMonth.objects.filter(stale=True).exists()


@on_postgresql
def test_a_posting_in_the_current_month_takes_no_lock():
    """Most of a month the worker's postings and the ingest never wait for a summing: the
    triggers take the tenant's lock only for instants before the horizon. (A new tenant: this
    test's transaction must not hold its lock already.)"""
    tenant = TenantFactory()
    entry = posted_new(
        tenant,
        start=timezone.now() + dt.timedelta(days=2),  # after the horizon, whatever the day
        minutes=5,
        status=TimeEntry.Status.POSTING,
    )
    holder = connections.create_connection("default")
    try:
        with holder.cursor() as cursor:
            cursor.execute("BEGIN")
            cursor.execute("SET LOCAL lock_timeout = '5s'")
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [report_months.LOCK_CLASS, tenant.pk]
            )
            with transaction.atomic(), connection.cursor() as mine:
                mine.execute("SET LOCAL lock_timeout = '1s'")
                TimeEntry.objects.filter(pk=entry.pk).update(status="posted")
                with pytest.raises(OperationalError, match="lock timeout"):
                    with transaction.atomic():  # an old instant does wait
                        TimeEntry.objects.filter(pk=entry.pk).update(start=at(FEB))
            cursor.execute("ROLLBACK")
    finally:
        holder.close()


@on_postgresql
@pytest.mark.django_db(transaction=True)
def test_summing_waits_for_a_late_posting_in_progress_and_counts_it():
    """A posting of an old entry whose transaction is open when summing starts: the summing
    waits for its commit (the trigger's shared lock), then counts it. Without the lock the
    month would be kept without the entry, and not stale."""
    tenant = TenantFactory()
    client, automation = ClientFactory(tenant=tenant), AutomationFactory(tenant=tenant)
    posted(tenant, client=client, automation=automation, start=at(FEB), minutes=10)
    late = posted(
        tenant, client=client, automation=automation, start=at(FEB), minutes=45, status="posting"
    )
    written, release = threading.Event(), threading.Event()

    def post_late() -> None:
        try:
            with transaction.atomic():
                TimeEntry.objects.filter(pk=late.pk).update(status="posted")
                written.set()
                release.wait(10)
        finally:
            connection.close()

    def keep() -> None:
        try:
            with timezone.override(zone):
                keep_months(tenant_id=tenant.pk, months=[FEB])
        finally:
            connection.close()

    zone = timezone.get_current_timezone_name()
    poster = threading.Thread(target=post_late)
    poster.start()
    assert written.wait(10)
    summer = threading.Thread(target=keep)
    summer.start()
    summer.join(0.5)
    assert summer.is_alive()  # waiting for the posting's commit
    release.set()
    poster.join(10)
    summer.join(10)
    kept = ReportMonth.objects.get(tenant=tenant, month=FEB)
    figures = kept.figures.filter(kind="client")
    assert [(f.minutes, f.count) for f in figures] == [(55, 2)]
    assert not kept.stale
