"""The worker clusters' heartbeat, as django-q2 itself reports it.

django-q2's guard process saves a ``Stat`` of its cluster every guard cycle (0.5 s) with a
3-second expiry, into the Django cache named by ``Q_CLUSTER["cache"]``. piadesk's default cache
is per process (locmem), which the web process cannot read, so the cluster statistics go to a
database cache table of their own (``CLUSTER_STATUS_CACHE``): every web process, on any host,
sees every cluster that writes to the same database. The table is created after ``migrate``
(``ensure_cluster_status_table``, connected to ``post_migrate`` in ``timelogging.apps``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.core.cache import caches
from django.core.management import call_command
from django.utils import timezone

CLUSTER_STATUS_CACHE = "cluster_status"
CLUSTER_STATUS_TABLE = "piadesk_cluster_status"


@dataclass(frozen=True)
class ClusterHeartbeat:
    clusters: int  # clusters whose last heartbeat has not expired
    last_seen: dt.datetime | None

    def age_seconds(self, now: dt.datetime | None = None) -> float | None:
        if self.last_seen is None:
            return None
        return max(0.0, ((now or timezone.now()) - self.last_seen).total_seconds())


def cluster_heartbeat() -> ClusterHeartbeat:
    """The running clusters and their latest heartbeat (raises if the database is down)."""
    from django_q.brokers import get_broker
    from django_q.conf import Conf
    from django_q.status import Stat

    stats = [s for s in Stat.get_all(broker=get_broker()) if s.status != Conf.STOPPED]
    last = max((s.timestamp for s in stats), default=None)
    return ClusterHeartbeat(clusters=len(stats), last_seen=last)


def ensure_cluster_status_table(**kwargs: object) -> None:
    """Create the cluster status cache table if it is missing (idempotent, like migrate)."""
    caches[CLUSTER_STATUS_CACHE]  # noqa: B018 - fails loudly if the cache is not configured
    call_command(
        "createcachetable",
        CLUSTER_STATUS_TABLE,
        database=str(kwargs.get("using", "default")),
        verbosity=0,
    )
