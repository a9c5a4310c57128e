"""The PSA request latency histogram, observed by ``psa.http.PSASession`` on every exchange.

Exposed by ``/metrics`` (``piadesk.ops.metrics``); in multiprocess mode each qcluster worker
writes its observations to ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

from prometheus_client import Histogram

PSA_REQUEST_SECONDS = Histogram(
    "piadesk_psa_request_duration_seconds",
    "Time of one HTTP request to a PSA (answered or not), by vendor.",
    ["vendor"],
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60),
)


def psa_request_observe(*, vendor: str, seconds: float) -> None:
    PSA_REQUEST_SECONDS.labels(vendor=vendor or "unknown").observe(seconds)
