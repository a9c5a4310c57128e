"""``GET /healthz``: is piadesk working? No authentication, JSON, cheap (three small queries).

- ``database``: a ``SELECT 1`` answered. When it is not, the answer is **503** and nothing
  else is checked: no request can be served without the database.
- ``worker``: the qcluster heartbeat (``piadesk.ops.heartbeat``). No cluster alive makes the
  status ``degraded`` (still 200: the web keeps accepting runs, which wait in the queue), as
  does a queue whose oldest due entry has waited more than ``PIADESK_HEALTH_MAX_DUE_SECONDS``.
- ``queue``: entries due now and how long the oldest has been due; ``paused_connections``:
  connections holding their entries until staff resume them.

What it reveals is counts and ages only, never a tenant, an entry or a setting.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from piadesk.ops.heartbeat import cluster_heartbeat
from piadesk.ops.snapshot import queue_health

logger = logging.getLogger(__name__)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except DatabaseError as exc:
        logger.warning("healthz: database unreachable: %s", exc)
        # Drop the broken connection so that the next request connects afresh.
        connection.close_if_unusable_or_obsolete()
        return False


def health_report() -> tuple[int, dict[str, Any]]:
    if not _database_ok():
        return 503, {"status": "down", "database": {"ok": False}}
    try:
        heartbeat = cluster_heartbeat()
        queue = queue_health()
    except DatabaseError as exc:  # lost between the two checks
        logger.warning("healthz: database failed mid-check: %s", exc)
        return 503, {"status": "down", "database": {"ok": False}}
    age = heartbeat.age_seconds()
    worker_ok = heartbeat.clusters > 0
    queue_ok = (queue.oldest_due_age_seconds or 0) <= settings.PIADESK_HEALTH_MAX_DUE_SECONDS
    report = {
        "status": "ok" if worker_ok and queue_ok else "degraded",
        "database": {"ok": True},
        "worker": {
            "ok": worker_ok,
            "clusters": heartbeat.clusters,
            "heartbeat_age_seconds": round(age, 1) if age is not None else None,
        },
        "queue": {
            "ok": queue_ok,
            "due": queue.due,
            "oldest_due_age_seconds": (
                round(queue.oldest_due_age_seconds, 1)
                if queue.oldest_due_age_seconds is not None
                else None
            ),
        },
        "paused_connections": queue.paused_connections,
    }
    return 200, report


@never_cache
@require_GET
def healthz_view(request: HttpRequest) -> JsonResponse:
    status, report = health_report()
    return JsonResponse(report, status=status)
