"""Prometheus metrics: ``GET /metrics`` (text format, prometheus-client).

Two kinds, because web and worker are many processes (gunicorn workers, qcluster workers):

- **Gauges read from the database at scrape time** (``DatabaseCollector``): entries by status
  and vendor, post attempts by outcome (a counter: attempts are never deleted), due entries
  and the oldest one's wait, paused and active connections, live worker clusters and their
  heartbeat age. Any web process answers the same, whichever one Prometheus reaches.
- **Counters and histograms kept by the processes that see the events**: PSA request latency
  per vendor (``psa.http``, in the qcluster workers and in the web processes' look-ups), and
  ingest requests by status code (``IngestMetricsMiddleware``). Each process counts its own; with
  ``PROMETHEUS_MULTIPROC_DIR`` set (a directory shared by gunicorn and the qcluster, emptied
  before they start), prometheus-client's multiprocess mode writes them to files there and
  ``/metrics`` sums every process's values. Without it (``make run``, tests) ``/metrics``
  shows the answering process's own values only.

``PIADESK_METRICS_TOKEN``: when set, ``/metrics`` requires ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable, Iterator

from django.conf import settings
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from piadesk.ops.heartbeat import cluster_heartbeat
from piadesk.ops.snapshot import operations_snapshot

INGEST_PATH = "/api/v1/automation-runs/"

INGEST_REQUESTS = Counter(
    "piadesk_ingest_requests",
    "Runs reported to POST /api/v1/automation-runs/, by HTTP status answered.",
    ["status"],
)


class DatabaseCollector(Collector):
    """Gauges computed from the database on each scrape (see the module docstring)."""

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        up = GaugeMetricFamily(
            "piadesk_database_up", "1 when the database answered this scrape's queries."
        )
        try:
            snapshot = operations_snapshot()
            heartbeat = cluster_heartbeat()
        except DatabaseError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up

        entries = GaugeMetricFamily(
            "piadesk_time_entries",
            "Time entries by status and PSA vendor.",
            labels=["status", "vendor"],
        )
        for (status, vendor), n in sorted(snapshot.entries.items()):
            entries.add_metric([status, vendor], n)
        yield entries

        attempts = CounterMetricFamily(
            "piadesk_post_attempts",
            "Attempts at posting an entry, by outcome: posted, adopted (found already in the "
            "PSA) or the error class.",
            labels=["outcome"],
        )
        for outcome, n in sorted(snapshot.attempts.items()):
            attempts.add_metric([outcome], n)
        yield attempts

        queue = snapshot.queue
        yield GaugeMetricFamily(
            "piadesk_queue_due_entries", "Entries due for an attempt now.", value=queue.due
        )
        yield GaugeMetricFamily(
            "piadesk_queue_oldest_due_age_seconds",
            "How long the oldest due entry has been waiting for its attempt (0 when none).",
            value=queue.oldest_due_age_seconds or 0.0,
        )
        yield GaugeMetricFamily(
            "piadesk_paused_connections",
            "Active PSA connections paused on a configuration problem (entries held).",
            value=queue.paused_connections,
        )
        connections = GaugeMetricFamily(
            "piadesk_psa_connections", "Active PSA connections by vendor.", labels=["vendor"]
        )
        for vendor, n in sorted(snapshot.connections.items()):
            connections.add_metric([vendor], n)
        yield connections
        yield GaugeMetricFamily(
            "piadesk_worker_clusters",
            "qcluster processes alive (heartbeat within 3 s).",
            value=heartbeat.clusters,
        )
        age = heartbeat.age_seconds()
        if age is not None:
            yield GaugeMetricFamily(
                "piadesk_worker_heartbeat_age_seconds",
                "Seconds since the latest worker cluster heartbeat.",
                value=age,
            )


def _registry() -> CollectorRegistry:
    """This process's metrics, or every process's under multiprocess mode, plus the DB's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
    else:
        registry = CollectorRegistry()
        registry.register(_ProcessMetrics())
    registry.register(DatabaseCollector())
    return registry


class _ProcessMetrics(Collector):
    """The default registry's metrics (this process's counters, histograms, process_*)."""

    def collect(self):
        return REGISTRY.collect()


def _authorized(request: HttpRequest) -> bool:
    token = settings.PIADESK_METRICS_TOKEN
    if not token:
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token)


@never_cache
@require_GET
def metrics_view(request: HttpRequest) -> HttpResponse:
    if not _authorized(request):
        response = HttpResponse("Unauthorized: send Authorization: Bearer <token>.\n", status=401)
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        response["Content-Type"] = "text/plain; charset=utf-8"
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)


class IngestMetricsMiddleware:
    """Counts the answers to the ingest endpoint by status code (throttled, 5xx included)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.method == "POST" and request.path == INGEST_PATH:
            INGEST_REQUESTS.labels(status=str(response.status_code)).inc()
        return response
