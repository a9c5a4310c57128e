"""What /healthz and /metrics report, read from the database at request time.

Gauges are computed from the database when they are read rather than kept in each process:
gunicorn's workers and the qcluster are separate processes, and the database is the one place
that knows the queue. Every query here is an aggregate served by an index of ``TimeEntry``
(``entry_due``, ``entry_status_age``) or a small table (connections, attempts by outcome).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from django.db.models import Count, Min
from django.utils import timezone

from timelogging.models import PostAttempt, PSAConnection, TimeEntry


@dataclass(frozen=True)
class QueueHealth:
    due: int  # open entries whose next attempt time has come
    oldest_due_age_seconds: float | None  # how long the oldest of them has been due
    paused_connections: int


@dataclass(frozen=True)
class OperationsSnapshot:
    queue: QueueHealth
    entries: dict[tuple[str, str], int] = field(default_factory=dict)  # (status, vendor) → n
    attempts: dict[str, int] = field(default_factory=dict)  # outcome → n (ever)
    connections: dict[str, int] = field(default_factory=dict)  # vendor → active connections


def queue_health(*, now: dt.datetime | None = None) -> QueueHealth:
    """Due entries and the oldest one's wait (the ``entry_due`` index), paused connections."""
    now = now or timezone.now()
    due = TimeEntry.objects.filter(
        status__in=TimeEntry.OPEN_STATUSES, next_attempt_at__lte=now
    ).aggregate(n=Count("pk"), oldest=Min("next_attempt_at"))
    oldest = due["oldest"]
    return QueueHealth(
        due=due["n"],
        oldest_due_age_seconds=max(0.0, (now - oldest).total_seconds()) if oldest else None,
        paused_connections=PSAConnection.objects.filter(
            is_active=True, paused_at__isnull=False
        ).count(),
    )


def operations_snapshot(*, now: dt.datetime | None = None) -> OperationsSnapshot:
    vendors = dict(PSAConnection.objects.values_list("pk", "vendor"))
    entries: dict[tuple[str, str], int] = {}
    rows = (
        TimeEntry.objects.values_list("status", "connection_id").annotate(n=Count("pk")).order_by()
    )
    for status, connection_id, n in rows:
        key = (status, vendors.get(connection_id, "none"))
        entries[key] = entries.get(key, 0) + n
    attempts = dict(PostAttempt.objects.values_list("outcome").annotate(n=Count("pk")).order_by())
    connections: dict[str, int] = {}
    for vendor in PSAConnection.objects.filter(is_active=True).values_list("vendor", flat=True):
        connections[vendor] = connections.get(vendor, 0) + 1
    return OperationsSnapshot(
        queue=queue_health(now=now), entries=entries, attempts=attempts, connections=connections
    )
