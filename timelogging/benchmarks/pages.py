"""Server time of the history pages, measured in-process with Django's test ``Client``: the
whole request (middleware, admin or DRF, queries, template rendering), no network, no browser.

Each page is requested ``warmup`` times (caches, connections, the planner's first look), then
``n`` times with a stopwatch; one more request, not timed, counts its queries and keeps the
slowest query's SQL, for ``EXPLAIN``.
"""

from __future__ import annotations

import gc
import resource
import statistics
import time
import tracemalloc
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.db import connection
from django.http import StreamingHttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext


@dataclass(frozen=True)
class PageSpec:
    group: str
    label: str
    url: str
    note: str = ""


@dataclass
class PageResult:
    spec: PageSpec
    status: int
    timings_ms: list[float]
    queries: int
    slowest_sql: str = ""
    slowest_ms: float = 0.0
    size_bytes: int = 0

    @property
    def p50(self) -> float:
        return statistics.median(self.timings_ms)

    @property
    def p95(self) -> float:
        ordered = sorted(self.timings_ms)
        return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]

    @property
    def worst(self) -> float:
        return max(self.timings_ms)


def url(path: str, **params: object) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def _get(client: Client, path: str, headers: dict[str, str]) -> tuple[int, int]:
    # Over HTTPS, as behind the proxy: with DEBUG off, plain HTTP is only redirected (301).
    response = client.get(path, headers=headers, secure=True)
    if isinstance(response, StreamingHttpResponse):
        size = sum(len(bytes(chunk)) for chunk in response.streaming_content)
    else:
        size = len(response.content)
    return response.status_code, size


def measure(
    client: Client,
    spec: PageSpec,
    *,
    n: int,
    warmup: int = 2,
    headers: dict[str, str] | None = None,
) -> PageResult:
    headers = headers or {}
    for _ in range(warmup):
        _get(client, spec.url, headers)
    timings = []
    status = size = 0
    for _ in range(n):
        began = time.perf_counter()
        status, size = _get(client, spec.url, headers)
        timings.append((time.perf_counter() - began) * 1000)
    with CaptureQueriesContext(connection) as ctx:
        _get(client, spec.url, headers)
    slowest = max(ctx.captured_queries, key=lambda q: float(q["time"]), default=None)
    return PageResult(
        spec=spec,
        status=status,
        timings_ms=timings,
        queries=len(ctx.captured_queries),
        slowest_sql=slowest["sql"] if slowest else "",
        slowest_ms=float(slowest["time"]) * 1000 if slowest else 0.0,
        size_bytes=size,
    )


@dataclass
class MemoryResult:
    spec: PageSpec
    status: int
    rows: int
    seconds: float
    size_bytes: int
    traced_peak_bytes: int
    maxrss_delta_bytes: int


def measure_stream_memory(
    client: Client, spec: PageSpec, *, headers: dict[str, str] | None = None
) -> MemoryResult:
    """Peak memory of one streamed download, consumed chunk by chunk as a server would send
    it: Python's allocations (tracemalloc) and the process's peak RSS growth (which also sees
    the database driver's C buffers, but only grows: a previous larger peak hides it). Then
    once more without tracing, timed (tracemalloc slows Python down several times)."""
    gc.collect()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    tracemalloc.start()
    status, size, rows = _consume(client, spec.url, headers or {})
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    began = time.perf_counter()
    _consume(client, spec.url, headers or {})
    return MemoryResult(
        spec=spec,
        status=status,
        rows=rows,
        seconds=time.perf_counter() - began,
        size_bytes=size,
        traced_peak_bytes=peak,
        maxrss_delta_bytes=(rss_after - rss_before) * 1024,  # ru_maxrss is in KiB on Linux
    )


def _consume(client: Client, path: str, headers: dict[str, str]) -> tuple[int, int, int]:
    response = client.get(path, headers=headers, secure=True)
    chunks: Iterable[bytes] = (
        (bytes(chunk) for chunk in response.streaming_content)
        if isinstance(response, StreamingHttpResponse)
        else [response.content]
    )
    size = lines = 0
    for chunk in chunks:
        size += len(chunk)
        lines += chunk.count(b"\n")
    # Less the header; no exported column holds a line break.
    return response.status_code, size, max(0, lines - 1)


def explain(sql: str) -> str:
    """EXPLAIN ANALYZE of a captured query (PostgreSQL), for the report."""
    if connection.vendor != "postgresql" or not sql.lstrip().upper().startswith("SELECT"):
        return ""
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + sql)
        return "\n".join(row[0] for row in cursor.fetchall())
