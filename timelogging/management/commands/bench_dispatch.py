"""``manage.py bench_dispatch``: drain a queue of entries with a real ``qcluster`` against a PSA
stand-in and print the figures as one JSON line (``timelogging/benchmarks/dispatch.py``).

A benchmark, not a test: run it on an empty, throw-away database (``make bench`` makes one per
run); it adds a tenant and its entries and leaves them there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from timelogging.benchmarks.dispatch import dispatch_measure
from timelogging.models import TimeEntry


class Command(BaseCommand):
    help = "Drain N queued entries with one qcluster of W workers against a PSA stand-in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--entries", type=int, default=400)
        parser.add_argument("--workers", type=int, default=2)
        parser.add_argument("--psa-url", required=True, help="bench/psa_standin.py's address")
        parser.add_argument("--latency-ms", type=float, required=True, help="the stand-in's")
        parser.add_argument("--max-concurrency", type=int, default=10)
        parser.add_argument("--requests-per-hour", type=int, default=6_000_000)
        parser.add_argument("--timeout", type=float, default=600)
        parser.add_argument("--log", default="", help="append the cluster's output here")

    def handle(self, *args: Any, **o: Any) -> None:
        if TimeEntry.objects.exists():
            raise CommandError("This database has time entries: use an empty, throw-away one.")
        result = dispatch_measure(
            entries=o["entries"],
            workers=o["workers"],
            psa_url=o["psa_url"].rstrip("/"),
            latency_ms=o["latency_ms"],
            max_concurrency=o["max_concurrency"],
            requests_per_hour=o["requests_per_hour"],
            timeout=o["timeout"],
            log_path=Path(o["log"]) if o["log"] else None,
        )
        self.stdout.write(result.as_json())
