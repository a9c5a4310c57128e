"""Entries' copy of their run's client and automation (``TimeEntry.client`` / ``automation``).

Every entry created by this version has them (``TimeEntry.save``, and ingest passes the run it
has just written). Entries written by a version before migration 0015, while it was still
serving during an upgrade, have none: the sweep calls ``entries_catalog_fill`` to copy them
from their runs, so that the reports, which read them from the ``entry_report`` index, count
those entries too. Once filled in, the partial index ``entry_catalog_missing`` is empty and the
check costs one index probe.
"""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from timelogging.models import AutomationRun, TimeEntry


def entries_catalog_fill(*, limit: int = 5000) -> int:
    """Copy the run's client and automation onto up to ``limit`` entries that lack them;
    returns how many were filled in."""
    ids = list(
        TimeEntry.objects.filter(client__isnull=True)
        .order_by("id")
        .values_list("id", flat=True)[:limit]
    )
    if not ids:
        return 0
    run = AutomationRun.objects.filter(pk=OuterRef("run_id"))
    return TimeEntry.objects.filter(pk__in=ids, client__isnull=True).update(
        client_id=Subquery(run.values("client_id")[:1]),
        automation_id=Subquery(run.values("automation_id")[:1]),
    )
