"""The report's sums, with closed months summed once and kept (PostgreSQL).

The monthly report of a large tenant summed a year of posted entries three times (per client,
automation and PSA user) and a year of runs once, at every view: four index-only scans of
~120,000 rows, 0.4-0.5 s on a 2-core machine. A month that has ended hardly changes, so its
sums are kept (``ReportMonth``, ``ReportMonthFigure``) and read back; what is not a whole
closed month of the range (the month in progress, a range starting mid-month, weeks) is
summed from the entries as before (``selectors``). Both give the same figures: the kept ones
are the same selectors' answer for that month, in the same time zone.

Why a kept month cannot miss a write
------------------------------------
Nothing in piadesk changes a posted entry, but an entry started in a closed month can be
posted later (a retry, a held entry released), a run can be re-decided, and the sweep fills
in an old entry's client. Database triggers (migration 0019) catch every such write, whatever
code makes it: when a posted entry (before or after the write) or a run lies before the
*horizon* (the 1st of the current UTC month + 12 hours, which is at or after the start of the
current month in every time zone from UTC-12 to UTC+14), the trigger takes the tenant's
advisory lock in shared mode and marks the kept month holding that instant ``stale``.
Summing takes the same lock in exclusive mode before it reads, so

- a write whose transaction is still open when summing starts makes the summing wait for its
  commit, and the sums then include it;
- a write that comes after waits for the summing to commit, then finds the kept month and
  marks it stale: the next report sums it again.

Writes after the horizon take no lock (most of a month: the ingest and the worker's postings
are not slowed): they are in no closed month. Only months that ended ``MARGIN`` ago are kept,
which covers a clock difference between the application and the database and a transaction
that stays open after its write (none in piadesk stays open for minutes).

SQLite has no such triggers: there every report is summed from the entries.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils import timezone

from timelogging.models import ReportMonth, ReportMonthFigure
from timelogging.selectors import (
    ReportDimension,
    ReportPeriod,
    RunDecisions,
    TimeLogged,
    day_start,
    run_decisions_by_period,
    time_logged_by_period,
)

DIMENSIONS: tuple[ReportDimension, ...] = ("client", "automation", "psa_user")
# The advisory lock (class, tenant) shared by the triggers and taken by summing; the number
# is the triggers' (migration 0019), chosen not to collide with other users of such locks.
LOCK_CLASS = 7301
# A month is kept once it ended this long ago (see the module docstring).
MARGIN = dt.timedelta(hours=6)

Kind = ReportMonthFigure.Kind


@dataclass
class ReportSums:
    """Posted time per period and client / automation / PSA user, and runs per decision."""

    time: dict[ReportDimension, list[TimeLogged]] = field(
        default_factory=lambda: {by: [] for by in DIMENSIONS}
    )
    decisions: list[RunDecisions] = field(default_factory=list)

    def extend(self, other: ReportSums) -> None:
        for by in DIMENSIONS:
            self.time[by].extend(other.time[by])
        self.decisions.extend(other.decisions)


def report_sums(
    *, tenant_ids: Collection[int], start: dt.date, end: dt.date, period: ReportPeriod
) -> ReportSums:
    """The report's sums from ``start`` to ``end`` (inclusive dates) in the current time zone:
    the kept months where the range holds whole closed months of one tenant, the rest summed
    from the entries."""
    months = _keepable_months(start, end) if _applies(tenant_ids, period) else []
    if not months:
        return _summed(tenant_ids, start, end, period)
    (tenant_id,) = tenant_ids
    after = _next_month(months[-1])
    sums = _kept(tenant_id, months)
    if start < months[0]:
        sums.extend(_summed(tenant_ids, start, months[0] - dt.timedelta(days=1), period))
    if after <= end:
        sums.extend(_summed(tenant_ids, after, end, period))
    return sums


def _applies(tenant_ids: Collection[int], period: ReportPeriod) -> bool:
    return period == "month" and len(tenant_ids) == 1 and connection.vendor == "postgresql"


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _keepable_months(start: dt.date, end: dt.date) -> list[dt.date]:
    """The months wholly inside ``start``..``end`` that ended ``MARGIN`` ago or more."""
    first = start if start.day == 1 else _next_month(start)
    closed_before = timezone.now() - MARGIN
    months = []
    while (after := _next_month(first)) - dt.timedelta(days=1) <= end and (
        day_start(after) <= closed_before
    ):
        months.append(first)
        first = after
    return months


def _summed(
    tenant_ids: Collection[int], start: dt.date, end: dt.date, period: ReportPeriod
) -> ReportSums:
    """Summed from the entries and runs (``selectors``): four queries."""
    return ReportSums(
        time={
            by: time_logged_by_period(
                tenant_ids=tenant_ids, start=start, end=end, period=period, by=by
            )
            for by in DIMENSIONS
        },
        decisions=run_decisions_by_period(
            tenant_ids=tenant_ids, start=start, end=end, period=period
        ),
    )


def _kept(tenant_id: int, months: list[dt.date]) -> ReportSums:
    """The sums of closed ``months``, summing first those not kept yet or stale."""
    zone = timezone.get_current_timezone_name()
    kept = ReportMonth.objects.filter(tenant_id=tenant_id, time_zone=zone, month__in=months)
    fresh = set(kept.filter(stale=False).values_list("month", flat=True))
    if missing := [month for month in months if month not in fresh]:
        keep_months(tenant_id=tenant_id, months=missing)
    figures = ReportMonthFigure.objects.filter(
        report_month__tenant_id=tenant_id,
        report_month__time_zone=zone,
        report_month__month__in=months,
    ).values_list("report_month__month", "kind", "key", "label", "minutes", "count")
    return _from_figures(figures)


def _from_figures(figures: Iterable[tuple[dt.date, str, str, str, int, int]]) -> ReportSums:
    sums = ReportSums()
    for month, kind, key, label, minutes, count in figures:
        if kind == Kind.DECISION:
            sums.decisions.append(
                RunDecisions(period=month, decision=key, skip_reason=label, runs=count)
            )
        else:
            sums.time[kind].append(  # type: ignore[index]  # kind is a dimension here
                TimeLogged(period=month, key=key, minutes=minutes, entries=count, name=label)
            )
    return sums


def keep_months(*, tenant_id: int, months: Collection[dt.date]) -> None:
    """Sum closed ``months`` of a tenant in the current time zone and keep them (replacing
    what was kept). Holds the tenant's advisory lock meanwhile: a late posting for the tenant
    waits (the module docstring says why); the others do not."""
    zone = timezone.get_current_timezone_name()
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_CLASS, tenant_id % 2147483647]
            )
        # Another report may have summed some while this one waited for the lock.
        fresh = set(
            ReportMonth.objects.filter(
                tenant_id=tenant_id, time_zone=zone, month__in=months, stale=False
            ).values_list("month", flat=True)
        )
        todo = sorted(set(months) - fresh)
        if not todo:
            return
        # One pass over the span (four queries), kept for the months asked only.
        sums = _summed([tenant_id], todo[0], _next_month(todo[-1]) - dt.timedelta(days=1), "month")
        ReportMonthFigure.objects.filter(
            report_month__tenant_id=tenant_id,
            report_month__time_zone=zone,
            report_month__month__in=todo,
        ).delete()
        ReportMonth.objects.filter(tenant_id=tenant_id, time_zone=zone, month__in=todo).delete()
        now = timezone.now()
        kept = {
            month: ReportMonth(
                tenant_id=tenant_id,
                time_zone=zone,
                month=month,
                starts_at=day_start(month),
                ends_at=day_start(_next_month(month)),
                computed_at=now,
            )
            for month in todo
        }
        ReportMonth.objects.bulk_create(kept.values())
        ReportMonthFigure.objects.bulk_create(_figures(sums, kept), batch_size=2000)


def _figures(sums: ReportSums, kept: dict[dt.date, ReportMonth]) -> Iterable[ReportMonthFigure]:
    by_month: dict[dt.date, list[ReportMonthFigure]] = defaultdict(list)
    for by in DIMENSIONS:
        for row in sums.time[by]:
            by_month[row.period].append(
                ReportMonthFigure(
                    kind=by, key=row.key, label=row.name, minutes=row.minutes, count=row.entries
                )
            )
    for decision in sums.decisions:
        by_month[decision.period].append(
            ReportMonthFigure(
                kind=Kind.DECISION,
                key=decision.decision,
                label=decision.skip_reason,
                count=decision.runs,
            )
        )
    for month, figures in by_month.items():
        if month in kept:
            for figure in figures:
                figure.report_month = kept[month]
                yield figure
