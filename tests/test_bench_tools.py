"""The benchmark's own tools: the wrk output parser and the PSA stand-in's counters (what
``make bench`` reports as requests per entry, duplicates and requests in flight)."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from http.server import ThreadingHTTPServer
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"


def load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


WRK_OUTPUT = """Running 10s test @ http://127.0.0.1:8000/api/v1/automation-runs/
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    12.10ms    5.01ms  80.00ms   80.00%
  Latency Distribution
     50%   11.00ms
     75%   13.50ms
     90%   18.00ms
     99%    1.20s
  6340 requests in 10.00s, 1.50MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:    634.12
Transfer/sec:    153.00KB
"""


def test_wrk_output_is_parsed_with_units():
    run = load("run").parse_wrk(WRK_OUTPUT)
    assert run.rps == pytest.approx(634.12)
    assert run.p50_ms == pytest.approx(11.0)
    assert run.p99_ms == pytest.approx(1200.0)
    assert (run.non_2xx, run.errors) == (4, 3)


@pytest.fixture
def standin():
    module = load("psa_standin")
    stats = module.Stats()
    server = ThreadingHTTPServer(("127.0.0.1", 0), module.make_handler(stats, 0.05))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def post(url: str, body: str) -> int:
    request = urllib.request.Request(url, data=body.encode(), method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status


def test_standin_counts_creates_duplicates_and_requests_in_flight(standin):
    entries = f"{standin}/v2025_1/apis/3.0/time/entries"
    refs = [f"piadesk-run:{i:08d}-0000-0000-0000-000000000000" for i in (1, 2, 3, 1)]
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(lambda ref: post(entries, json.dumps({"notes": ref})), refs))
    with urllib.request.urlopen(f"{standin}/login/companyinfo/bench", timeout=5) as response:
        assert json.loads(response.read())["Codebase"] == "v2025_1/"
    with urllib.request.urlopen(f"{standin}/stats", timeout=5) as response:
        stats = json.loads(response.read())
    assert statuses == [201] * 4
    assert stats["requests"] == 5  # /stats itself is not counted
    assert stats["creates"] == 4
    assert stats["duplicate_creates"] == 1
    assert 2 <= stats["max_in_flight"] <= 4
    assert stats["max_requests_per_minute"] >= 3


def test_the_cpu_target_is_scaled_by_the_machines_speed():
    """CPU time is not comparable across machines: half of the 34 ms measured before #13,
    times how much slower this machine ran the calibration than the reference."""
    import argparse

    run = load("run")
    drain = {
        "entries": 1000,
        "workers": 2,
        "latency_ms": 1.0,
        "max_concurrency": 10,
        "requests_per_minute_budget": 100000,
        "posted": 1000,
        "steady_rate": 70.0,
        "cpu_ms_per_entry": 21.4,
        "rss_mb_at_10": 84.0,
        "rss_mb_at_90": 84.0,
        "psa": {
            "requests": 1002,
            "duplicate_creates": 0,
            "max_in_flight": 2,
            "max_requests_per_minute": 1002,
        },
    }
    twice_as_slow = argparse.Namespace(calibration=run.CALIBRATION_REFERENCE_S * 2)
    assert "target <= 34.0" in run.report(None, [drain], twice_as_slow)
    assert "times 2.00 for this machine's speed: ok" in run.report(None, [drain], twice_as_slow)
    as_fast = argparse.Namespace(calibration=run.CALIBRATION_REFERENCE_S)
    assert "target <= 17.0" in run.report(None, [drain], as_fast)
    assert ": MISS)" in run.report(None, [drain], as_fast)
    assert run.calibration_seconds() > 0


def test_steady_rate_counts_intervals_between_the_10_and_90_percent_marks():
    import datetime as dt

    from timelogging.benchmarks.dispatch import steady_rate

    start = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    # 100 entries, one every 0.1 s: 10 entries/s exactly, whatever the window.
    times = [start + dt.timedelta(seconds=i / 10) for i in range(100)]
    assert steady_rate(times) == pytest.approx(10.0)
    # A slow start and end (the cluster starting, the last stragglers) are outside the window.
    slow = (
        [start - dt.timedelta(seconds=60 - i) for i in range(10)]
        + times[10:90]
        + [times[89] + dt.timedelta(seconds=30 + i) for i in range(10)]
    )
    assert steady_rate(sorted(slow)) == pytest.approx(10.0)
    assert steady_rate(times[:9]) == 0.0
    assert steady_rate([start] * 20) == 0.0
