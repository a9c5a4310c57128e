"""``manage.py seed_history``: a realistic history at scale, for benchmarks and for trying the
history pages and reports with millions of rows.

    python manage.py seed_history --entries 1000000

Writes with ``COPY`` on PostgreSQL (about a minute per million entries on two cores) and
plain inserts elsewhere (use smaller counts on SQLite). Not idempotent: every run adds new
tenants, named with ``--tenant-prefix``. Do not run a worker against a seeded database: its
connections have no credentials and their sites are ``.invalid``.
"""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import connection
from django.utils import timezone

from timelogging.benchmarks.catalog import CatalogSize, catalog_seed
from timelogging.benchmarks.history import HistoryCounts, HistoryPlan, history_seed
from timelogging.models import (
    Automation,
    AutomationRun,
    Client,
    PSAUserMapping,
    Tenant,
    TimeEntry,
)


class Command(BaseCommand):
    help = "Add a realistic history (tenants, clients, runs, entries) for benchmarks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--entries", type=int, default=1_000_000, help="time entries")
        parser.add_argument("--tenants", type=int, default=200)
        parser.add_argument("--clients-per-tenant", type=int, default=1000)
        parser.add_argument("--automations-per-tenant", type=int, default=50)
        parser.add_argument("--users-per-tenant", type=int, default=25, help="PSA users")
        parser.add_argument("--days", type=int, default=365, help="history spread over")
        parser.add_argument("--batch", type=int, default=20_000, help="runs per transaction")
        parser.add_argument("--tenant-prefix", default="Seed", help="tenant names start so")
        parser.add_argument(
            "--largest-tenant-share",
            type=float,
            default=0.12,
            help="share of the runs of the largest tenant (0: no particularly large one)",
        )
        parser.add_argument("--random-seed", type=int, default=None, help="reproducible data")
        parser.add_argument(
            "--no-analyze",
            action="store_true",
            help="skip VACUUM ANALYZE at the end (the planner then guesses until autovacuum)",
        )

    def handle(self, *args: Any, **o: Any) -> None:
        for name in ("entries", "tenants", "clients_per_tenant", "automations_per_tenant"):
            if o[name] < 1:
                raise CommandError(f"--{name.replace('_', '-')} must be at least 1.")
        if not 1 <= o["users_per_tenant"] <= 500:
            raise CommandError("--users-per-tenant must be between 1 and 500.")
        if not 0 <= o["largest_tenant_share"] < 1:
            raise CommandError("--largest-tenant-share must be from 0 to below 1.")
        if o["days"] < 1 or o["batch"] < 100:
            raise CommandError("--days must be at least 1 and --batch at least 100.")
        prefix = o["tenant_prefix"].strip()
        if not prefix:
            raise CommandError("--tenant-prefix must not be empty.")
        if Tenant.objects.filter(name__startswith=f"{prefix} ").exists():
            raise CommandError(
                f"Tenants named “{prefix} …” exist already: choose another --tenant-prefix."
            )
        rnd = random.Random(o["random_seed"])
        now = timezone.now()
        start = now - dt.timedelta(days=o["days"])
        began = time.perf_counter()

        size = CatalogSize(
            tenants=o["tenants"],
            clients_per_tenant=o["clients_per_tenant"],
            automations_per_tenant=o["automations_per_tenant"],
            users_per_tenant=o["users_per_tenant"],
        )
        tenants = catalog_seed(prefix=prefix, size=size, start=start, now=now, rnd=rnd)
        catalog_seconds = time.perf_counter() - began
        self.stdout.write(
            f"Catalogue: {len(tenants)} tenants, {len(tenants) * size.clients_per_tenant:,} "
            f"clients, {len(tenants) * size.automations_per_tenant:,} automations, "
            f"{len(tenants) * size.users_per_tenant:,} PSA users ({catalog_seconds:.1f} s)"
        )

        history_began = time.perf_counter()
        last_report = [history_began]

        def progress(counts: HistoryCounts, total_runs: int) -> None:
            moment = time.perf_counter()
            if moment - last_report[0] >= 10 or counts.runs == total_runs:
                last_report[0] = moment
                rate = counts.runs / (moment - history_began)
                self.stdout.write(
                    f"  {counts.runs:,}/{total_runs:,} runs, {counts.entries:,} entries "
                    f"({rate:,.0f} runs/s)"
                )

        plan = HistoryPlan(
            entries=o["entries"],
            days=o["days"],
            batch=o["batch"],
            now=now,
            largest_share=o["largest_tenant_share"],
        )
        counts = history_seed(tenants=tenants, plan=plan, rnd=rnd, progress=progress)
        history_seconds = time.perf_counter() - history_began

        analyze_seconds = 0.0
        if not o["no_analyze"]:
            analyze_began = time.perf_counter()
            self._analyze()
            analyze_seconds = time.perf_counter() - analyze_began

        total = time.perf_counter() - began
        self.stdout.write(
            self.style.SUCCESS(
                f"Seeded {counts.runs:,} runs and {counts.entries:,} entries for "
                f"{len(tenants)} tenants “{prefix} …” over {o['days']} days in {total:.1f} s "
                f"(catalogue {catalog_seconds:.1f} s, history {history_seconds:.1f} s, "
                f"analyze {analyze_seconds:.1f} s) on {connection.vendor}."
            )
        )
        skipped = counts.runs - counts.entries
        self.stdout.write(
            f"  decisions: {counts.entries:,} logged, {skipped:,} skipped "
            f"({skipped / max(1, counts.runs):.1%})"
        )
        for reason, n in counts.skip_reasons.most_common():
            self.stdout.write(f"    skipped, {reason}: {n:,}")
        for status, n in counts.statuses.most_common():
            self.stdout.write(f"  entries {status}: {n:,}")

    def _analyze(self) -> None:
        # Fresh statistics for the planner, and (PostgreSQL) a visibility map so that counts
        # and deep pages can use index-only scans, as they would after autovacuum in production.
        tables = [m._meta.db_table for m in (Client, Automation, PSAUserMapping)]
        tables += [AutomationRun._meta.db_table, TimeEntry._meta.db_table]
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                # VACUUM cannot run in a transaction (call_command inside one, tests).
                verb = "ANALYZE" if connection.in_atomic_block else "VACUUM ANALYZE"
                for table in tables:
                    cursor.execute(f'{verb} "{table}"')
            else:
                cursor.execute("ANALYZE")
