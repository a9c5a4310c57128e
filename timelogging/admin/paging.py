"""Paging the history lists at millions of rows.

Django's admin counts the filtered rows on every page (``SELECT COUNT(*)``), even with
``show_full_result_count = False``: a million-row count per click. And its pages are
``OFFSET`` pages: page 2,000 makes the database read and throw away 200,000 joined rows.

``HistoryPaginator`` counts exactly only up to ``exact_up_to`` rows; beyond, on PostgreSQL,
it takes the planner's estimate (``EXPLAIN``, no rows read), and the list says "about".
Deep pages first pick the page's ids from the ordering index alone, then join only those
rows ("deferred join"): the offset is still walked, but over index entries, not joined rows.
"""

from __future__ import annotations

import json
from functools import cached_property
from typing import Any

from django.core.paginator import Page, Paginator
from django.db import connections
from django.db.models import QuerySet

# Below this many rows a page is cheap to join directly; above, ids are picked first.
DEFERRED_JOIN_FROM_OFFSET = 1_000


class HistoryPaginator(Paginator):
    exact_up_to = 10_000
    object_list: QuerySet[Any]  # the changelist's queryset (Paginator takes any sequence)

    def __init__(self, object_list: QuerySet[Any], *args: Any, **kwargs: Any) -> None:
        super().__init__(object_list, *args, **kwargs)
        # Read by the pagination template ("about 1,176,000 runs").
        self.count_is_estimate = False

    @cached_property
    def count(self) -> int:
        rows = self.object_list.order_by().values("pk")
        # At most exact_up_to + 1 rows are read, however large the table.
        capped = rows[: self.exact_up_to + 1].count()
        if capped <= self.exact_up_to:
            return capped
        estimate = _planner_estimate(rows)
        if estimate is None:
            # Not PostgreSQL (SQLite on a laptop, small tables): count exactly.
            return rows.count()
        self.count_is_estimate = True
        return max(estimate, capped)

    def page(self, number: Any) -> Page:
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if not self.count_is_estimate and top + self.orphans >= self.count:
            top = self.count
        rows = self.object_list
        if bottom >= DEFERRED_JOIN_FROM_OFFSET:
            # The subquery keeps the list's filters and order (Django keeps ORDER BY in a
            # sliced subquery) but selects only ids: PostgreSQL walks the ordering index,
            # index-only when the visibility map allows, then joins the page's rows alone.
            rows = rows.filter(pk__in=rows.values("pk")[bottom:top])
        else:
            rows = rows[bottom:top]
        return self._get_page(rows, number, self)  # type: ignore[attr-defined]  # Paginator's page factory, not in the stubs


def _planner_estimate(rows: QuerySet[Any]) -> int | None:
    connection = connections[rows.db]
    if connection.vendor != "postgresql":
        return None
    plan = json.loads(rows.explain(format="json"))
    return int(plan[0]["Plan"]["Plan Rows"])
