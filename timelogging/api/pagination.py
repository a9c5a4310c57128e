"""Cursor pagination of the history: stable under inserts, no COUNT, one query per page.

DRF's CursorPagination keeps the position (the first ordering field) in an opaque cursor and
filters on it, so a page is ``WHERE tenant = … AND created_at < position ORDER BY created_at
DESC, id DESC LIMIT n``: served by ``Index(tenant, -created_at, -id)`` however deep the page,
and new rows arriving meanwhile never shift or repeat the rows of the next page (offset
pagination would). Rows with the same timestamp are told apart by the cursor's offset, and
the ``id`` tie-breaker keeps their order deterministic.

Two things differ from DRF's defaults, because a bad query parameter must be a 400 naming the
parameter, never silently ignored nor a 500:
- ``page_size`` outside 1..MAX_PAGE_SIZE is refused (DRF would silently use the default);
- a cursor that was not issued by us is a 400 (DRF answers 404, and a cursor with a forged
  position would reach the database as a malformed date-time and raise a 500).
"""

from __future__ import annotations

import re
from typing import Any

from rest_framework.exceptions import NotFound, ValidationError
from rest_framework.pagination import Cursor, CursorPagination

from timelogging.api.filters import parse_instant

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
_DIGITS = re.compile(r"^[0-9]{1,9}$")


class HistoryCursorPagination(CursorPagination):
    page_size = DEFAULT_PAGE_SIZE
    page_size_query_param = "page_size"
    max_page_size = MAX_PAGE_SIZE
    page_size_query_description = (
        f"Results per page, 1-{MAX_PAGE_SIZE} (default {DEFAULT_PAGE_SIZE})."
    )
    cursor_query_description = (
        "Where the page starts: the opaque value from a previous answer's `next` or `previous` "
        "link. Leave out for the newest page."
    )
    # The position is the first ordering field: a date-time on both history lists.
    ordering: tuple[str, ...] = ("-created_at", "-id")
    template = None  # JSON only: no browsable-API page controls

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None or raw == "":
            return self.page_size
        if not _DIGITS.match(raw) or not 1 <= int(raw) <= MAX_PAGE_SIZE:
            raise ValidationError(
                {self.page_size_query_param: [f"Give a whole number from 1 to {MAX_PAGE_SIZE}."]}
            )
        return int(raw)

    def decode_cursor(self, request) -> Cursor | None:
        invalid = ValidationError(
            {
                self.cursor_query_param: [
                    "Invalid cursor: use the `next` or `previous` link of a previous answer."
                ]
            }
        )
        try:
            cursor = super().decode_cursor(request)
        except NotFound:
            raise invalid from None
        if cursor is None or cursor.position is None:
            return cursor
        try:
            # DRF's stubs say position is an int (an offset); CursorPagination puts the
            # ordering field's value there, for us a timestamp.
            position = parse_instant(str(cursor.position))
        except ValueError:
            raise invalid from None
        return cursor._replace(position=position.isoformat())  # type: ignore[arg-type]  # see above

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"].update(minimum=1, maximum=MAX_PAGE_SIZE)
        return parameters


class TimeEntryPagination(HistoryCursorPagination):
    ordering = ("-created_at", "-id")


class AutomationRunPagination(HistoryCursorPagination):
    ordering = ("-received_at", "-id")
