"""Reports: time logged per client, automation and PSA user, by week or month, the entries
not in the PSA (waiting, held, failed, discarded: time the PSA does not show), and how many
runs were logged or skipped and why, for one tenant and a date range; as a page and as CSV.
Charts are inline SVG (``charts.py``); the figures come from ``selectors`` (aggregated in the
database: seven queries whatever the range or the number of clients; on PostgreSQL a
monthly report reads the whole months that have ended from the kept sums,
``services/report_months.py``).

The page is a site view (``PiadeskAdminSite``). Which tenants a user may report on is
``selectors.visible_tenant_ids``, the rule of every admin page and of the API. The selectors
take tenant ids, never a request.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from django import forms
from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils import timezone
from django.utils.safestring import SafeString

from timelogging.admin.charts import bar_list_chart, column_chart
from timelogging.exports import csv_response, csv_safe
from timelogging.forms import model_choice_field
from timelogging.models import AutomationRun, Tenant, TimeEntry
from timelogging.selectors import (
    ReportDimension,
    ReportPeriod,
    TimeLogged,
    entries_not_posted_by_period,
    report_names,
    scope_to_tenants,
    visible_tenant_ids,
)
from timelogging.services.report_months import report_sums

MAX_DAYS = 3 * 366  # 157 weekly columns at most: the page stays readable and bounded
TOP = 12  # rows per table and chart; the rest are summed as "Other"


def report_tenants(user: Any) -> QuerySet[Tenant]:
    """The tenants ``user`` may see reports of."""
    return scope_to_tenants(Tenant.objects.all(), visible_tenant_ids(user), "pk")


def default_range(period: ReportPeriod, today: dt.date) -> tuple[dt.date, dt.date]:
    """The last 12 weeks (from a Monday) or the last 12 months (from the 1st), to today."""
    if period == "month":
        month = today.year * 12 + today.month - 1 - 11
        return dt.date(month // 12, month % 12 + 1, 1), today
    monday = today - dt.timedelta(days=today.weekday())
    return monday - dt.timedelta(weeks=11), today


REPORT_FIRST_DAY, REPORT_LAST_DAY = dt.date(2000, 1, 1), dt.date(2099, 12, 31)
REPORT_RANGE = "Choose a date from 2000-01-01 to 2099-12-31."


class ReportForm(forms.Form):
    tenant = forms.ModelChoiceField(queryset=Tenant.objects.none(), empty_label="Choose a tenant")
    period = forms.ChoiceField(choices=[("week", "By week"), ("month", "By month")], required=False)
    start = forms.DateField(
        label="From",
        required=False,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
    )
    end = forms.DateField(
        label="To",
        required=False,
        widget=forms.DateInput(format="%Y-%m-%d", attrs={"type": "date"}),
    )

    def __init__(self, *args: Any, tenants: QuerySet[Tenant], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        model_choice_field(self, "tenant").queryset = tenants

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in ("start", "end"):
            # Dates near year 1 or 9999 overflow when turned into periods (a 500 once).
            if (value := data.get(name)) and not REPORT_FIRST_DAY <= value <= REPORT_LAST_DAY:
                self.add_error(name, REPORT_RANGE)
                data.pop(name, None)
        if self.errors:
            return data
        period: ReportPeriod = "month" if data.get("period") == "month" else "week"
        start, end = default_range(period, timezone.localdate())
        data["period"] = period
        data["start"] = data.get("start") or start
        data["end"] = data.get("end") or end
        if data["end"] < data["start"]:
            raise forms.ValidationError("“To” is before “From”.")
        if (data["end"] - data["start"]).days > MAX_DAYS:
            raise forms.ValidationError("Choose a range of at most three years.")
        return data


def period_starts(start: dt.date, end: dt.date, period: ReportPeriod) -> list[dt.date]:
    """Every week (Monday) or month (1st) that overlaps ``start``..``end``: the columns, with
    the empty ones too (no data is a zero, not a missing column)."""
    if period == "week":
        first = start - dt.timedelta(days=start.weekday())
        return [first + dt.timedelta(weeks=i) for i in range((end - first).days // 7 + 1)]
    months = []
    month = start.year * 12 + start.month - 1
    while (day := dt.date(month // 12, month % 12 + 1, 1)) <= end:
        months.append(day)
        month += 1
    return months


def period_label(day: dt.date, period: ReportPeriod) -> str:
    return day.strftime("%b %Y") if period == "month" else day.strftime("%d %b").lstrip("0")


@dataclass(frozen=True)
class TableRow:
    name: str
    hours: list[float]  # per period
    total: float
    entries: int


def pivot(
    rows: Iterable[TimeLogged],
    periods: Sequence[dt.date],
    *,
    names: Callable[[list[str]], dict[str, str]] | None = None,
    top: int = TOP,
) -> list[TableRow]:
    """Rows per key with a column per period, largest total first; beyond ``top``, one
    "Other" row sums the rest (a tenant has thousands of clients). ``names`` looks up the
    display names of the keys shown (one query for the few shown, not one per row)."""
    column = {day: i for i, day in enumerate(periods)}
    minutes: dict[str, list[int]] = defaultdict(lambda: [0] * len(periods))
    row_names: dict[str, str] = {}
    entries: dict[str, int] = defaultdict(int)
    for row in rows:
        minutes[row.key][column[row.period]] += row.minutes
        entries[row.key] += row.entries
        if row.name:
            row_names[row.key] = row.name
    ranked = sorted(minutes, key=lambda key: (-sum(minutes[key]), key))
    shown, rest = ranked[:top], ranked[top:]
    looked_up = names(shown) if names and shown else {}
    table = [
        _row(
            looked_up.get(key) or row_names.get(key) or key or "(none)", minutes[key], entries[key]
        )
        for key in shown
    ]
    if rest:
        summed = [sum(minutes[key][i] for key in rest) for i in range(len(periods))]
        table.append(_row(f"Other ({len(rest)})", summed, sum(entries[key] for key in rest)))
    return table


def _names(by: ReportDimension, keys: list[str]) -> dict[str, str]:
    return report_names(by=by, keys=keys)


def _row(name: str, minutes: list[int], entries: int) -> TableRow:
    return TableRow(
        name=name, hours=[m / 60 for m in minutes], total=sum(minutes) / 60, entries=entries
    )


# The entries not in the PSA, in the order a person deals with them.
NOT_POSTED = (
    TimeEntry.Status.FAILED,
    TimeEntry.Status.HELD,
    TimeEntry.Status.PENDING,
    TimeEntry.Status.POSTING,
    TimeEntry.Status.RETRY_WAIT,
    TimeEntry.Status.DISCARDED,
)


@dataclass(frozen=True)
class NotPostedRow:
    status: str
    label: str
    entries: list[int]  # per period
    total: int
    hours: float


def not_posted_rows(
    *,
    tenant_ids: list[int],
    start: dt.date,
    end: dt.date,
    period: ReportPeriod,
    periods: Sequence[dt.date],
) -> list[NotPostedRow]:
    column = {day: i for i, day in enumerate(periods)}
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * len(periods))
    minutes: dict[str, int] = defaultdict(int)
    for row in entries_not_posted_by_period(
        tenant_ids=tenant_ids, start=start, end=end, period=period
    ):
        counts[row.status][column[row.period]] += row.entries
        minutes[row.status] += row.minutes
    return [
        NotPostedRow(
            status=str(status),
            label=str(status.label),
            entries=counts[status],
            total=sum(counts[status]),
            hours=minutes[status] / 60,
        )
        for status in NOT_POSTED
        if status in counts
    ]


@dataclass(frozen=True)
class Section:
    title: str
    chart: SafeString
    rows: list[TableRow]


def time_report_context(
    *, tenant_ids: list[int], start: dt.date, end: dt.date, period: ReportPeriod
) -> dict[str, Any]:
    """Everything the page shows, for the given tenants and range."""
    periods = period_starts(start, end, period)
    labels = [period_label(day, period) for day in periods]
    unit = "h"
    sections = []
    per_period = [0.0] * len(periods)
    total_entries = 0
    dimensions: list[tuple[ReportDimension, str]] = [
        ("client", "Clients"),
        ("automation", "Automations"),
        ("psa_user", "PSA users"),
    ]
    sums = report_sums(tenant_ids=tenant_ids, start=start, end=end, period=period)
    for by, title in dimensions:
        table = pivot(sums.time[by], periods, names=partial(_names, by))
        if by == "client":  # every posted entry has exactly one client: the totals
            for row in table:
                per_period = [a + b for a, b in zip(per_period, row.hours, strict=True)]
                total_entries += row.entries
        chart = bar_list_chart(
            title=f"Time logged per {title.lower().rstrip('s')}",
            # Not the "Other" row: a thousand small clients together would dwarf the top ones.
            items=[(row.name, row.total) for row in table[:TOP]],
            unit=unit,
        )
        sections.append(Section(title=title, chart=chart, rows=table))

    not_posted = not_posted_rows(
        tenant_ids=tenant_ids, start=start, end=end, period=period, periods=periods
    )
    decisions = sums.decisions
    column = {day: i for i, day in enumerate(periods)}
    logged = [0] * len(periods)
    skipped = [0] * len(periods)
    reasons: dict[str, int] = defaultdict(int)
    for d in decisions:
        if d.decision == AutomationRun.Decision.LOG:
            logged[column[d.period]] += d.runs
        else:
            skipped[column[d.period]] += d.runs
            reasons[d.skip_reason] += d.runs
    runs_total = sum(logged) + sum(skipped)
    skipped_total = sum(skipped)
    reason_labels = dict(AutomationRun.SkipReason.choices)
    reason_rows = [
        (reason_labels.get(reason, reason or "(none)"), n, 100 * n / skipped_total)
        for reason, n in sorted(reasons.items(), key=lambda kv: -kv[1])
    ]
    return {
        "period": period,
        "start": start,
        "end": end,
        "labels": labels,
        "total_hours": sum(per_period),
        "total_entries": total_entries,
        "runs_total": runs_total,
        "runs_logged": sum(logged),
        "runs_skipped": skipped_total,
        "logged_percent": 100 * sum(logged) / runs_total if runs_total else 0,
        "time_zone": timezone.get_current_timezone_name(),
        "not_posted": not_posted,
        "not_posted_total": sum(row.total for row in not_posted),
        "not_posted_chart": column_chart(
            title=f"Entries not in the PSA per {period}",
            labels=labels,
            series=[(row.label, row.entries) for row in not_posted],
            unit="entry|entries",
            whole=True,
        ),
        "time_chart": column_chart(
            title=f"Time logged per {period}",
            labels=labels,
            series=[("Time logged", per_period)],
            unit=unit,
        ),
        "runs_chart": column_chart(
            title=f"Runs logged and skipped per {period}",
            labels=labels,
            series=[("Logged", logged), ("Skipped", skipped)],
            unit="run|runs",
            whole=True,
        ),
        "reasons_chart": bar_list_chart(
            title="Why runs were skipped",
            items=[(label, n) for label, n, _ in reason_rows],
            unit="run|runs",
        ),
        "reason_rows": reason_rows,
        "sections": sections,
    }


def report_csv_rows(report: dict[str, Any]) -> Iterator[list[str]]:
    """The page's tables, one after the other: hours per client, automation and PSA user per
    period, the entries not in the PSA per status, the runs skipped per reason."""
    labels = report["labels"]
    yield ["table", "name", *labels, "total", "entries"]
    for section in report["sections"]:
        for row in section.rows:
            yield [
                f"hours per {section.title.lower().rstrip('s')}",
                csv_safe(row.name),
                *(f"{h:.2f}" for h in row.hours),
                f"{row.total:.2f}",
                str(row.entries),
            ]
    for row in report["not_posted"]:
        yield [
            "entries not in the PSA",
            row.label,
            *(str(n) for n in row.entries),
            f"{row.hours:.2f}",
            str(row.total),
        ]
    for label, runs, _ in report["reason_rows"]:
        yield ["runs skipped", label, *([""] * len(labels)), "", str(runs)]


def reports_page(site: admin.AdminSite, request: HttpRequest, *, as_csv: bool = False) -> Any:
    """The Reports page; ``as_csv``: its tables as a CSV file (the same form, the same rows)."""
    # Whoever may see the time entries (staff and auditors) sees their reports.
    if not site.get_model_admin(TimeEntry).has_view_permission(request):
        raise PermissionDenied
    tenants = report_tenants(request.user)
    data = request.GET.copy()
    if "tenant" not in data and len(own := list(tenants.values_list("pk", flat=True)[:2])) == 1:
        data["tenant"] = str(own[0])  # staff of one tenant: no need to choose
    # Show the range in force in the form (the default one when none was given).
    period: ReportPeriod = "month" if data.get("period") == "month" else "week"
    start, end = default_range(period, timezone.localdate())
    data.setdefault("period", period)
    if not data.get("start"):
        data["start"] = start.isoformat()
    if not data.get("end"):
        data["end"] = end.isoformat()
    form = ReportForm(data if "tenant" in data else None, tenants=tenants)
    if not form.is_bound:
        form = ReportForm(initial={"period": period, "start": start, "end": end}, tenants=tenants)
    context: dict[str, Any] = {
        **site.each_context(request),
        "opts": TimeEntry._meta,
        "title": "Reports",
        "form": form,
        "report": None,
    }
    if form.is_valid():
        tenant = form.cleaned_data["tenant"]
        context["tenant"] = tenant
        context["report"] = time_report_context(
            tenant_ids=[tenant.pk],
            start=form.cleaned_data["start"],
            end=form.cleaned_data["end"],
            period=form.cleaned_data["period"],
        )
        if as_csv:
            rows = report_csv_rows(context["report"])
            return csv_response(rows, name=f"report-{tenant.pk}", excel_bom=True)
    return TemplateResponse(request, "admin/timelogging/timeentry/reports.html", context)
