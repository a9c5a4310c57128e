"""A PSA stand-in for the dispatch benchmark: ConnectWise's two calls, a fixed latency, counters.

``python bench/psa_standin.py --port P --latency-ms L`` answers

- ``GET /login/companyinfo/<company>``: the codebase (``{"Codebase": "v2025_1/"}``);
- ``POST /v2025_1/apis/3.0/time/entries``: 201 with a new id;

each after ``L`` ms, on a thread per connection (keep-alive), so that the only limit on the
workers is the latency itself (the W / L bound). ``GET /stats`` reports what a PSA would see:
requests, creates, duplicate creates (the same ``piadesk-run:`` reference twice), the most
requests in flight at once, the most requests in one calendar minute (the request budget), and
the stand-in's own CPU time. Standard library only; not part of piadesk.
"""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

REFERENCE_RE = re.compile(r"piadesk-run:[0-9a-f-]{36}")


class Stats:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests = 0
        self.creates = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.references: Counter[str] = Counter()
        self.per_minute: Counter[int] = Counter()

    def enter(self) -> None:
        with self.lock:
            self.requests += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.per_minute[int(time.time() // 60)] += 1

    def leave(self) -> None:
        with self.lock:
            self.in_flight -= 1

    def as_dict(self) -> dict:
        with self.lock:
            return {
                "requests": self.requests,
                "creates": self.creates,
                "distinct_references": len(self.references),
                "duplicate_creates": sum(n - 1 for n in self.references.values() if n > 1),
                "max_in_flight": self.max_in_flight,
                "max_requests_per_minute": max(self.per_minute.values(), default=0),
                "cpu_seconds": time.process_time(),
            }


def make_handler(stats: Stats, latency: float) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a worker that reuses its session may
        # Headers and body go out in two writes: with Nagle's algorithm the body of an answer
        # on a kept connection waits for the client's delayed ACK (40 ms on Linux), which a
        # real PSA's server does not make its clients wait.
        disable_nagle_algorithm = True

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def _answer(self, status: int, body: object) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            if self.path == "/stats":
                self._answer(200, stats.as_dict())
                return
            stats.enter()
            try:
                time.sleep(latency)
                if self.path.startswith("/login/companyinfo/"):
                    self._answer(200, {"Codebase": "v2025_1/", "CompanyName": "Bench"})
                else:
                    self._answer(404, {"code": "NotFound", "message": "not in the stand-in"})
            finally:
                stats.leave()

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode(errors="replace")
            stats.enter()
            try:
                time.sleep(latency)
                if self.path.endswith("/apis/3.0/time/entries"):
                    match = REFERENCE_RE.search(body)
                    with stats.lock:
                        stats.creates += 1
                        if match:
                            stats.references[match.group(0)] += 1
                        entry_id = stats.creates
                    self._answer(201, {"id": entry_id})
                else:
                    self._answer(404, {"code": "NotFound", "message": "not in the stand-in"})
            finally:
                stats.leave()

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--latency-ms", type=float, default=100)
    args = parser.parse_args()
    stats = Stats()
    ThreadingHTTPServer.request_queue_size = 128
    ThreadingHTTPServer.daemon_threads = True
    server = ThreadingHTTPServer(
        ("127.0.0.1", args.port), make_handler(stats, args.latency_ms / 1000)
    )
    server.serve_forever()


if __name__ == "__main__":
    main()
