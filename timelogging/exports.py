"""The CSV exports: the time entry history (shared by the API and the admin) and the
configuration history (admin).

Rows are built in one place (``TIME_ENTRY_COLUMNS``) so that both time entry exports always
have the same columns. The response streams: rows are read from the database in chunks
(``QuerySet.iterator``) and written one at a time, so an export of millions of entries runs in
constant memory.
"""

from __future__ import annotations

import csv
import datetime as dt
import zoneinfo
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from timelogging.models import TimeEntry
from timelogging.selectors import TIME_ENTRY_HISTORY_RELATED

# Rows fetched per database round trip. With select_related there is no prefetching, so on
# PostgreSQL this is the server-side cursor's fetch size and on SQLite the fetchmany() size.
CHUNK_SIZE = 2000

# Spreadsheet programs (Excel, LibreOffice, Google Sheets) run a cell that starts with one of
# these as a formula: a client name like "=HYPERLINK(...)" sent by the automation service would
# execute on an auditor's machine. OWASP's advice: prefix such cells with an apostrophe, which
# makes the spreadsheet show the text as typed. Tab and carriage return start formulas too.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def _iso(value: dt.datetime | None, zone: dt.tzinfo = dt.UTC) -> str:
    return value.astimezone(zone).isoformat() if value is not None else ""


# The columns holding a date and time: UTC in the API's export; in the admin's, the tenant's
# zone, with its offset in each cell and its name in the header.
TIME_COLUMNS = ("start", "end", "created_at", "posted_at")


def admin_zone() -> zoneinfo.ZoneInfo | None:
    """The zone the admin page asking for an export shows (the tenant's, see admin/site.py),
    read while its view runs: the rows stream after the view has returned."""
    zone = timezone.get_current_timezone()
    return zone if isinstance(zone, zoneinfo.ZoneInfo) else None


# (header, value of the cell for one entry); the entry comes with TIME_ENTRY_HISTORY_RELATED.
TIME_ENTRY_COLUMNS: list[tuple[str, Callable[[TimeEntry], Any]]] = [
    ("tenant", lambda e: e.tenant.name),
    ("run_id", lambda e: e.run.run_id),
    ("reference", lambda e: e.run.reference_text),
    ("ticket_id", lambda e: e.run.ticket_id),
    ("client_key", lambda e: e.run.client.key),
    ("client_name", lambda e: e.run.client.name),
    ("automation_key", lambda e: e.run.automation.key),
    ("automation_name", lambda e: e.run.automation.name),
    ("started_by", lambda e: e.run.started_by),
    ("status", lambda e: e.status),
    ("minutes", lambda e: e.minutes),
    ("start", lambda e: _iso(e.start)),
    ("end", lambda e: _iso(e.end)),
    ("log_as", lambda e: e.log_as),
    ("psa_user_ref", lambda e: e.psa_user_ref),
    ("psa_user_name", lambda e: e.psa_user_name),
    ("psa_entry_id", lambda e: e.psa_entry_id),
    ("attempts", lambda e: e.attempts),
    ("error_class", lambda e: e.error_class),
    ("error", lambda e: e.error),
    ("created_at", lambda e: _iso(e.created_at)),
    ("posted_at", lambda e: _iso(e.posted_at)),
]


def csv_safe(value: Any) -> str:
    """The cell's text, with a leading apostrophe when a spreadsheet would run it."""
    text = "" if value is None else str(value)
    if text.startswith(FORMULA_TRIGGERS):
        return "'" + text
    return text


def time_entry_csv_rows(
    entries: Iterable[TimeEntry], *, zone: zoneinfo.ZoneInfo | None = None
) -> Iterator[list[str]]:
    """The header, then one row per entry; times in UTC, or in ``zone`` (labelled)."""
    if zone is None:
        yield [header for header, _ in TIME_ENTRY_COLUMNS]
        for entry in entries:
            yield [csv_safe(cell(entry)) for _, cell in TIME_ENTRY_COLUMNS]
        return
    yield [
        f"{header} ({zone.key})" if header in TIME_COLUMNS else header
        for header, _ in TIME_ENTRY_COLUMNS
    ]
    for entry in entries:
        yield [
            _iso(getattr(entry, header), zone) if header in TIME_COLUMNS else csv_safe(cell(entry))
            for header, cell in TIME_ENTRY_COLUMNS
        ]


class _Echo:
    """A file-like object whose write() returns what it was given: csv.writer formats each row
    and hands the text straight to the response instead of buffering the whole file."""

    def write(self, value: str) -> str:
        return value


def csv_response(
    rows: Iterable[list[str]], *, name: str, excel_bom: bool = False
) -> StreamingHttpResponse:
    """A streamed CSV attachment ``<name>-<UTC time>.csv`` of ``rows`` (the header first).

    ``excel_bom`` starts the file with a UTF-8 byte order mark: Excel reads a CSV without one
    in the machine's legacy code page and garbles every non-ASCII name. Programs reading the
    API's export are better served without it (it would stick to the first header).
    """
    writer = csv.writer(_Echo())
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")

    def lines() -> Iterator[str]:
        if excel_bom:
            yield "\ufeff"
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def time_entries_csv_response(
    entries: QuerySet[TimeEntry],
    *,
    excel_bom: bool = False,
    zone: zoneinfo.ZoneInfo | None = None,
) -> StreamingHttpResponse:
    """A streamed CSV attachment of ``entries`` (already filtered and ordered by the caller);
    ``zone``: the times in this zone, its name in their headers (the admin's export, in the
    tenant's zone); without it, UTC (the API's)."""
    # select_related is additive: the admin's changelist queryset lacks the run's client and
    # automation, which every row shows (without them: two queries per row).
    rows = entries.select_related(*TIME_ENTRY_HISTORY_RELATED).iterator(chunk_size=CHUNK_SIZE)
    return csv_response(
        time_entry_csv_rows(rows, zone=zone), name="time-entries", excel_bom=excel_bom
    )
