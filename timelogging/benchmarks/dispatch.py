"""The dispatch benchmark: how fast one ``qcluster`` drains a queue of due entries.

With W worker processes and a PSA answering each request after L seconds, no worker pool can
post more than W / L entries per second. ``dispatch_measure`` queues N entries for one tenant
whose connection points at a PSA stand-in (``bench/psa_standin.py``), starts a real
``manage.py qcluster`` with W workers on the same database, and reads back:

- the steady rate: entries posted from 10 % to 90 % of the batch (from the entries'
  ``posted_at``, so the cluster's start-up and the tail are excluded), to be divided by W / L;
- the CPU spent per entry over the same stretch, by the cluster's processes, their PostgreSQL
  backends and the stand-in (from ``/proc``, processes that ended included; Linux only, else
  not reported);
- the workers' resident memory at 10 % and at 90 % (flat when nothing accumulates per entry).

What the PSA saw (requests per entry, duplicates, most in flight, most per minute) comes from
the stand-in's ``/stats``; ``bench/run.py`` prints it all against the targets.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import asdict, dataclass
from pathlib import Path

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from timelogging.crypto import encrypt_secrets
from timelogging.models import (
    Automation,
    AutomationRun,
    Client,
    PSAConnection,
    Tenant,
    TimeEntry,
)
from timelogging.services.ingest import entry_enqueue

TERMINAL = (TimeEntry.Status.POSTED, TimeEntry.Status.FAILED, TimeEntry.Status.HELD)


def steady_rate(posted_times: list[dt.datetime]) -> float:
    """Entries per second from 10 % to 90 % of the batch posted (``posted_times`` sorted).

    The window's first entry was posted at its start, so it is not counted: n timestamps
    bound n - 1 intervals. 0.0 for fewer than 10 entries or a window of no length.
    """
    if len(posted_times) < 10:
        return 0.0
    lo = int(len(posted_times) * 0.1)
    hi = int(len(posted_times) * 0.9) - 1
    span = (posted_times[hi] - posted_times[lo]).total_seconds()
    return (hi - lo) / span if span > 0 else 0.0


@dataclass
class DispatchResult:
    entries: int
    workers: int
    latency_ms: float
    max_concurrency: int
    requests_per_minute_budget: int
    posted: int
    not_posted: dict[str, int]
    steady_rate: float  # entries/s from 10 % to 90 % posted
    drain_seconds: float  # first to last posted
    cpu_ms_per_entry: float | None
    rss_mb_at_10: float | None
    rss_mb_at_90: float | None
    psa: dict

    def as_json(self) -> str:
        return json.dumps(asdict(self))


def dispatch_seed(
    *,
    entries: int,
    psa_url: str,
    max_concurrency: int,
    requests_per_hour: int,
    batch: int = 2000,
) -> Tenant:
    """One tenant, its ConnectWise connection to the stand-in, and ``entries`` queued entries
    logged as a specified user (one PSA request each: no user look-up)."""
    tenant = Tenant.objects.create(
        name=f"Bench dispatch {timezone.now():%H%M%S%f}",
        time_logging_enabled=True,
        apply_to=Tenant.ApplyTo.ALL,
        log_as=Tenant.LogAs.SPECIFIED,
        specified_psa_user_ref="bench",
        specified_psa_user_name="Bench",
    )
    PSAConnection.objects.create(
        tenant=tenant,
        vendor="connectwise",
        settings={"site_url": psa_url, "company_id": "bench", "public_key": "bench"},
        secrets_encrypted=encrypt_secrets({"private_key": "bench-private"}),
        max_concurrency=max_concurrency,
        requests_per_hour=requests_per_hour,
    )
    client = Client.objects.create(tenant=tenant, key="bench-client", name="Bench client")
    automation = Automation.objects.create(tenant=tenant, key="bench-auto", name="Bench")
    started = timezone.now() - dt.timedelta(hours=1)
    for offset in range(0, entries, batch):
        count = min(batch, entries - offset)
        with transaction.atomic():
            runs = AutomationRun.objects.bulk_create(
                AutomationRun(
                    tenant=tenant,
                    run_id=f"bench-{offset + i}",
                    automation=automation,
                    client=client,
                    ticket_id=str(1000 + (offset + i) % 50),
                    started_by="jane@msp.example",
                    started_at=started,
                    completed_at=started + dt.timedelta(minutes=3),
                    outcome=AutomationRun.Outcome.COMPLETED,
                    summary="benchmark run",
                    content_hash="0" * 64,
                    decision=AutomationRun.Decision.LOG,
                )
                for i in range(count)
            )
            now = timezone.now()
            created = TimeEntry.objects.bulk_create(
                TimeEntry(
                    tenant=tenant,
                    run=run,
                    # bulk_create skips TimeEntry.save, which copies these from the run.
                    client=client,
                    automation=automation,
                    log_as=Tenant.LogAs.SPECIFIED,
                    minutes=3,
                    start=run.started_at,
                    end=run.completed_at,
                    notes=f"benchmark run\n\nReference: {run.reference_text}",
                    psa_user_ref="bench",
                    psa_user_name="Bench",
                    next_attempt_at=now,
                    enqueued_at=now,
                )
                for run in runs
            )
            for entry in created:
                entry_enqueue(entry_id=entry.pk)
    return tenant


def _proc_cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # utime and stime are the 14th and 15th fields of the line (11th and 12th after the name).
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _proc_rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _group_pids(pgid: int) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == pgid:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def _backend_pids() -> list[int]:
    """PostgreSQL backends of this database other than ours (the cluster's connections)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND pid <> pg_backend_pid()"
        )
        return [row[0] for row in cursor.fetchall()]


def psa_stats(psa_url: str) -> dict:
    with urllib.request.urlopen(f"{psa_url}/stats", timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


@dataclass
class _Sample:
    cpu: float
    rss_mb: float
    posted: int


class _CpuTracker:
    """CPU seconds used so far by the cluster's processes and their PostgreSQL backends, dead
    ones included. django-q2 replaces a worker after 500 tasks (its ``recycle``) and the
    replaced worker's backend ends with it: a sum over the live processes only would drop
    their CPU. So every process seen keeps its last reading; ``track`` is called every
    0.1 s, so a process that ends loses at most its last 0.1 s."""

    def __init__(self, cluster_pgid: int) -> None:
        self.cluster_pgid = cluster_pgid
        self.seen: dict[int, float] = {}

    def track(self) -> None:
        for pid in _group_pids(self.cluster_pgid) + _backend_pids():
            cpu = _proc_cpu_seconds(pid)
            if cpu:
                self.seen[pid] = max(cpu, self.seen.get(pid, 0.0))

    def sample(self, psa_url: str, posted: int) -> _Sample | None:
        if not Path("/proc/self/stat").exists():
            return None
        self.track()
        cpu = sum(self.seen.values()) + psa_stats(psa_url)["cpu_seconds"]
        # The workers are the cluster's biggest processes: the largest RSS is the figure to
        # watch (django-q2's recycling after 500 tasks is part of what keeps it flat).
        rss = max((_proc_rss_mb(pid) for pid in _group_pids(self.cluster_pgid)), default=0.0)
        return _Sample(cpu=cpu, rss_mb=rss, posted=posted)


def dispatch_measure(
    *,
    entries: int,
    workers: int,
    psa_url: str,
    latency_ms: float,
    max_concurrency: int = 10,
    requests_per_hour: int = 6_000_000,
    timeout: float = 600,
    log_path: Path | None = None,
) -> DispatchResult:
    dispatch_seed(
        entries=entries,
        psa_url=psa_url,
        max_concurrency=max_concurrency,
        requests_per_hour=requests_per_hour,
    )
    env = {**os.environ, "Q_WORKERS": str(workers), "PYTHONUNBUFFERED": "1"}
    log = open(log_path or os.devnull, "a")  # noqa: SIM115 - closed below
    cluster = subprocess.Popen(
        [sys.executable, str(Path(settings.BASE_DIR) / "manage.py"), "qcluster"],
        cwd=settings.BASE_DIR,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    tracker = _CpuTracker(cluster.pid)
    first: _Sample | None = None
    last: _Sample | None = None
    try:
        deadline = time.monotonic() + timeout
        next_count = 0.0
        while time.monotonic() < deadline:
            # Progress from the stand-in's count of creates (one per posted entry): counting
            # the posted entries in the database ten times a second would cost more the
            # longer the drain, and load the machine being measured.
            posted = psa_stats(psa_url)["creates"]
            tracker.track()
            if first is None and posted >= entries * 0.1:
                first = tracker.sample(psa_url, posted)
            if last is None and posted >= entries * 0.9:
                last = tracker.sample(psa_url, posted)
            if cluster.poll() is not None:
                break
            if posted >= entries or time.monotonic() >= next_count:
                # Entries that end failed or held make no create: the database says when all
                # are done (every 5 s, and once the creates are all in).
                if TimeEntry.objects.filter(status__in=TERMINAL).count() >= entries:
                    break
                next_count = time.monotonic() + 5
            time.sleep(0.1)
    finally:
        try:
            os.killpg(cluster.pid, signal.SIGTERM)
            cluster.wait(timeout=5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(cluster.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        cluster.wait()
        log.close()

    posted_times = sorted(
        posted_at
        for posted_at in TimeEntry.objects.filter(status=TimeEntry.Status.POSTED).values_list(
            "posted_at", flat=True
        )
        if posted_at is not None  # a posted entry always has it; the column is nullable
    )
    not_posted = {}
    for status in TimeEntry.Status.values:
        if status != TimeEntry.Status.POSTED:
            n = TimeEntry.objects.filter(status=status).count()
            if n:
                not_posted[status] = n
    rate = steady_rate(posted_times)
    drain = 0.0
    if len(posted_times) >= 10:
        drain = (posted_times[-1] - posted_times[0]).total_seconds()
    cpu_ms = None
    if first is not None and last is not None and last.posted > first.posted:
        cpu_ms = (last.cpu - first.cpu) * 1000 / (last.posted - first.posted)
    return DispatchResult(
        entries=entries,
        workers=workers,
        latency_ms=latency_ms,
        max_concurrency=max_concurrency,
        requests_per_minute_budget=-(-requests_per_hour // 60),
        posted=len(posted_times),
        not_posted=not_posted,
        steady_rate=rate,
        drain_seconds=drain,
        cpu_ms_per_entry=cpu_ms,
        rss_mb_at_10=first.rss_mb if first else None,
        rss_mb_at_90=last.rss_mb if last else None,
        psa=psa_stats(psa_url),
    )
