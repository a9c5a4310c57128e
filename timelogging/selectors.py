"""Reads that several places need: the history as the API, its CSV export and the admin see it.

Each selector returns a lazy queryset scoped to one tenant, with the related rows that its
representation shows joined in (``select_related``), so that a page or an export costs the same
number of queries whatever its size.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from django.conf import settings
from django.db.models import Count, DateField, Max, QuerySet, Sum
from django.db.models.functions import TruncMonth, TruncWeek
from django.utils import timezone

from timelogging.models import (
    Automation,
    AutomationRun,
    Client,
    StaffProfile,
    Tenant,
    TenantAPIKey,
    TimeEntry,
)

# --- who sees which tenants -------------------------------------------------------------------
_VISIBLE_CACHE = "_piadesk_visible_tenant_ids"


def _memberships(user: Any) -> list[tuple[int, str]]:
    """(tenant id, tenant's time zone) of a person's ``StaffProfile``: one query, kept on the
    user object, which lives for one request (however many filters, choices and querysets
    ask)."""
    cached = getattr(user, _VISIBLE_CACHE, None)
    if cached is None:
        cached = list(
            StaffProfile.objects.filter(user_id=user.pk).values_list(
                "tenant_id", "tenant__time_zone"
            )
        )
        setattr(user, _VISIBLE_CACHE, cached)
    return cached


def visible_tenant_ids(who: Any) -> list[int] | None:
    """The tenants ``who`` may see: the one rule for the admin, the reports and the API.

    ``None`` means every tenant (active superusers); otherwise a list: a person's
    ``StaffProfile`` tenant (MSP staff and auditors), an API key's own tenant (the automation
    service), or nothing (anyone else, anonymous users included).
    """
    if isinstance(who, TenantAPIKey):
        return [] if who.revoked else [who.tenant_id]
    if who is None or not getattr(who, "is_authenticated", False) or not who.is_active:
        return []
    if who.is_superuser:
        return None
    return [tenant_id for tenant_id, _ in _memberships(who)]


def viewing_time_zone(user: Any, *, tenant_id: int | None = None) -> str:
    """The zone a person's pages show times in: the tenant's they look at (``tenant_id``,
    when they may see it), else their own tenant's, else the site's (``TIME_ZONE``)."""
    visible = visible_tenant_ids(user)
    if visible is None:  # superusers: the zone of the tenant they look at, if any
        if tenant_id is not None:
            zone = Tenant.objects.filter(pk=tenant_id).values_list("time_zone", flat=True).first()
            if zone:
                return zone
        return str(settings.TIME_ZONE)
    zones = dict(_memberships(user)) if visible else {}
    if tenant_id in zones:
        return zones[tenant_id]
    if len(zones) == 1:
        return next(iter(zones.values()))
    return str(settings.TIME_ZONE)


def scope_to_tenants(
    queryset: QuerySet[Any], tenant_ids: list[int] | None, path: str = "tenant"
) -> QuerySet[Any]:
    """``queryset`` narrowed to ``tenant_ids`` (``None``: unchanged; empty: no rows).
    ``path`` is how the rows name their tenant ("pk" for tenants themselves)."""
    if tenant_ids is None:
        return queryset
    if not tenant_ids:
        return queryset.none()
    return queryset.filter(**{f"{path}__in": tenant_ids})


# What a time entry's history row shows: the run it logs (run id, ticket, reference), the
# run's client and automation (keys and names), and the tenant (the CSV's first column).
TIME_ENTRY_HISTORY_RELATED = ("tenant", "run", "run__client", "run__automation")
# The run's representation shows its entry (RunSerializer) and client/automation keys.
RUN_HISTORY_RELATED = ("client", "automation", "entry")


def time_entries_history(*, tenant_ids: list[int] | None) -> QuerySet[TimeEntry]:
    """The time entries of the tenants given (``visible_tenant_ids``), newest first, ordered
    as ``Index(tenant, -created_at, -id)``."""
    return (
        scope_to_tenants(TimeEntry.objects.all(), tenant_ids)
        .select_related(*TIME_ENTRY_HISTORY_RELATED)
        .order_by("-created_at", "-id")
    )


def automation_runs_history(*, tenant_ids: list[int] | None) -> QuerySet[AutomationRun]:
    """The runs of the tenants given (``visible_tenant_ids``), newest first, ordered as
    ``Index(tenant, -received_at, -id)``."""
    return (
        scope_to_tenants(AutomationRun.objects.all(), tenant_ids)
        .select_related(*RUN_HISTORY_RELATED)
        .order_by("-received_at", "-id")
    )


# --- reports: time logged and decisions, aggregated in the database --------------------------
# Each selector is one GROUP BY query over the tenants given (the caller decides which tenants
# a user may see), returning at most periods × (clients | automations | users) rows.

ReportPeriod = Literal["week", "month"]
ReportDimension = Literal["client", "automation", "psa_user"]

# What each dimension groups by: the entry's client or automation (copied from its run), or
# its PSA user.
_DIMENSIONS: dict[str, str] = {
    "client": "client_id",
    "automation": "automation_id",
    "psa_user": "psa_user_ref",
}


@dataclass(frozen=True)
class TimeLogged:
    period: dt.date
    key: str  # the client's or automation's id, or the PSA user's identifier
    minutes: int
    entries: int
    name: str = ""  # PSA users only; clients and automations: ``report_names``


@dataclass(frozen=True)
class RunDecisions:
    period: dt.date
    decision: str
    skip_reason: str
    runs: int


def _bucket(field: str, period: ReportPeriod) -> TruncWeek | TruncMonth:
    # Truncated in the site's time zone (settings.TIME_ZONE), as a date: weeks start on Monday.
    trunc = TruncWeek if period == "week" else TruncMonth
    return trunc(field, output_field=DateField())


def day_start(day: dt.date) -> dt.datetime:
    """The first instant of ``day`` in the current time zone."""
    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def _in_range(
    tenant_ids: Collection[int], field: str, start: dt.date, end: dt.date
) -> dict[str, Any]:
    """The tenants' rows whose ``field`` falls from ``start`` to ``end`` (inclusive dates)."""
    return {
        "tenant_id__in": list(tenant_ids),
        f"{field}__gte": day_start(start),
        f"{field}__lt": day_start(end + dt.timedelta(days=1)),
    }


def time_logged_by_period(
    *,
    tenant_ids: Collection[int],
    start: dt.date,
    end: dt.date,
    period: ReportPeriod,
    by: ReportDimension,
) -> list[TimeLogged]:
    """Minutes of posted entries per period and client / automation / PSA user, for entries
    whose work started from ``start`` to ``end`` (inclusive dates): the entry's start is the
    date the PSA shows, so these figures match the PSA's own time reports.

    Read from one index alone on PostgreSQL: the posted entries' ``entry_report`` (tenant,
    start, minutes, client, automation, PSA user); no join to the runs. Names are not joined
    here (that would read the clients table for every entry): the caller asks
    ``report_names`` for the few it shows.
    """
    key_field = _DIMENSIONS[by]
    aggregates: dict[str, Any] = {"minutes": Sum("minutes"), "entries": Count("*")}
    if by == "psa_user":
        # The latest name of the PSA user (MAX: one value per group without grouping by it).
        aggregates["name"] = Max("psa_user_name")
    rows = (
        TimeEntry.objects.filter(
            **_in_range(tenant_ids, "start", start, end),
            status=TimeEntry.Status.POSTED,
        )
        .annotate(bucket=_bucket("start", period))
        .values("bucket", key_field)
        .annotate(**aggregates)
        .order_by()
    )
    # Tuples, not dicts: a year of the largest tenant is ~10,000 client x month rows.
    named = by == "psa_user"
    return [
        TimeLogged(
            period=row[0],
            key=str(row[1]),
            minutes=row[2],
            entries=row[3],
            name=(row[4] or "") if named else "",
        )
        for row in rows.values_list("bucket", key_field, *aggregates)
    ]


def report_names(*, by: ReportDimension, keys: Collection[str]) -> dict[str, str]:
    """Display names of the clients or automations (by id) that a report shows."""
    if by == "psa_user" or not keys:
        return {}
    model = Client if by == "client" else Automation
    ids = [int(key) for key in keys if key.isdigit()]
    rows = model.objects.filter(pk__in=ids).values_list("pk", "name", "key")
    return {str(pk): name or key for pk, name, key in rows}


@dataclass(frozen=True)
class EntriesNotPosted:
    period: dt.date
    status: str
    entries: int
    minutes: int


def entries_not_posted_by_period(
    *, tenant_ids: Collection[int], start: dt.date, end: dt.date, period: ReportPeriod
) -> list[EntriesNotPosted]:
    """Entries not (yet) in the PSA per period and status (waiting, held, failed, discarded),
    by the day their work started, as posted time is: the time a report does not show. Read
    from the ``entry_not_posted`` index alone (a few percent of the entries)."""
    rows = (
        TimeEntry.objects.filter(
            **_in_range(tenant_ids, "start", start, end),
        )
        .exclude(status=TimeEntry.Status.POSTED)
        .annotate(bucket=_bucket("start", period))
        .values("bucket", "status")
        .annotate(entries=Count("*"), total=Sum("minutes"))
        .order_by()
    )
    return [
        EntriesNotPosted(
            period=row["bucket"],
            status=row["status"],
            entries=row["entries"],
            minutes=row["total"] or 0,
        )
        for row in rows
    ]


def run_decisions_by_period(
    *, tenant_ids: Collection[int], start: dt.date, end: dt.date, period: ReportPeriod
) -> list[RunDecisions]:
    """Runs logged and skipped (and why) per period, by the day they were received. Counted
    from the ``run_tenant_recent`` index alone (it carries decision and skip reason)."""
    rows = (
        AutomationRun.objects.filter(
            **_in_range(tenant_ids, "received_at", start, end),
        )
        .annotate(bucket=_bucket("received_at", period))
        .values("bucket", "decision", "skip_reason")
        .annotate(runs=Count("*"))
        .order_by()
    )
    return [
        RunDecisions(
            period=row["bucket"],
            decision=row["decision"],
            skip_reason=row["skip_reason"],
            runs=row["runs"],
        )
        for row in rows
    ]
