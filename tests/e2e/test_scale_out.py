"""Scale-out, proven: two web servers and two worker clusters on one PostgreSQL, three tenants
(one per vendor), PSA faults, one cluster SIGKILLed and PostgreSQL restarted mid-burst.

The layout, as README "Scaling out" describes it:

- a PostgreSQL cluster of the test's own (``initdb`` on a free port, as the ``postgres`` user
  when the test runs as root), so that restarting it disturbs nothing else on the machine;
- two gunicorn servers (``deploy/piadesk-web.service``'s command, two workers each) and two
  ``qcluster`` processes, all on that database;
- the PSA sandboxes of the three vendors served by a third gunicorn on a database of the
  machine's PostgreSQL: the PSAs stay up while piadesk's database restarts, and they fail on
  their own (5xx, 429 with Retry-After, timeouts, an entry stored but its answer lost).

The automation service is played by a few threads that report runs to both web servers and
resend on a 503 (after its Retry-After) or a lost connection, as README "The API" tells
clients to. While PostgreSQL is down, ingest must answer a JSON 503 with Retry-After (never a
500); afterwards web and workers reconnect by themselves; every run that was answered 201 or
200 is in the database, and every logged run has exactly one entry in its PSA.

It runs in the PostgreSQL suite (CI's second stage); on SQLite it is skipped.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import IO

import pytest
import requests
from cryptography.fernet import Fernet
from django.db import connection

from tests.e2e.conftest import stop_process_group, wait_for
from tests.e2e.test_production import unit_command

pytestmark = [pytest.mark.e2e]

ROOT = Path(__file__).resolve().parents[2]
HTTPS = {"X-Forwarded-Proto": "https"}
RUNS_PER_TENANT = int(os.environ.get("PIADESK_SCALE_RUNS_PER_TENANT", "40"))
VENDORS = ("connectwise", "autotask", "halopsa")
# Short timeouts so that faults resolve in seconds, with the settings invariant kept:
# Q retry (30) > Q timeout (20) > one attempt's deadline (15); lease (25) > timeout.
WORKER_ENV = {
    "PSA_HTTP_CONNECT_TIMEOUT": "2",
    "PSA_HTTP_READ_TIMEOUT": "2",
    "PSA_ATTEMPT_DEADLINE_SECONDS": "15",
    "Q_TIMEOUT": "20",
    "Q_RETRY": "30",
    "Q_WORKERS": "2",
    "PIADESK_POSTING_LEASE_SECONDS": "25",
    "PIADESK_RETRY_BASE_SECONDS": "1",
    "PIADESK_RETRY_MAX_SECONDS": "5",
    "PIADESK_MAX_ATTEMPTS": "100",
    "PIADESK_SWEEP_MINUTES": "1",
}
FAULTS = {
    "error_rate": 0.05,
    "throttle_rate": 0.03,
    "retry_after_seconds": 1,
    "timeout_rate": 0.02,
    "timeout_seconds": 3,  # longer than the workers' read timeout
    "latency_ms_min": 0,
    "latency_ms_max": 20,
    "drop_after_store_rate": 0.03,
    "error_after_store_rate": 0.03,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _pg_bin() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
    if found:
        return found[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module", autouse=True)
def _postgresql_suite_only():
    if connection.vendor != "postgresql":
        pytest.skip("runs in the PostgreSQL suite (DATABASE_URL=postgres://...)")


class PrivatePostgres:
    """A PostgreSQL cluster of this test's own, in a temporary directory."""

    def __init__(self) -> None:
        bin_dir = _pg_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL's server binaries (initdb, pg_ctl) are not installed")
        self.bin: Path = bin_dir
        self.port = free_port()
        self.base = Path(tempfile.mkdtemp(prefix="piadesk-scale-pg-"))
        self.data = self.base / "data"
        self.log = self.base / "postgresql.log"
        self.as_postgres = os.geteuid() == 0  # PostgreSQL refuses to run as root
        if self.as_postgres:
            shutil.chown(self.base, "postgres", "postgres")
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/piadesk"

    def _run(self, *args: str) -> None:
        command = [str(self.bin / args[0]), *args[1:]]
        if self.as_postgres:
            command = ["runuser", "-u", "postgres", "--", *command]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{args}: {result.stdout}{result.stderr}"

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync")
        self.start()
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "piadesk")

    def start(self) -> None:
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.base} "
            "-c fsync=off -c max_connections=200"
        )
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "start")

    def stop(self) -> None:
        # "fast": active sessions are terminated, as in a restart for an upgrade or failover.
        self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        try:
            self.stop()
        except AssertionError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)


class Processes:
    """Long-running processes in their own process groups, logs in one directory."""

    def __init__(self, logs: Path) -> None:
        self.logs = logs
        self.running: dict[str, tuple[subprocess.Popen, IO[str]]] = {}

    def start(self, name: str, command: list[str], env: dict[str, str]) -> None:
        log = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 - closed in stop()
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.running[name] = (process, log)

    def kill(self, name: str) -> None:
        process, log = self.running.pop(name)
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        log.close()

    def stop(self, name: str) -> None:
        process, log = self.running.pop(name)
        stop_process_group(process, timeout=10)
        log.close()

    def stop_all(self) -> None:
        for name in list(self.running):
            self.stop(name)

    def tail(self, name: str, chars: int = 3000) -> str:
        path = self.logs / f"{name}.log"
        return f"--- {name}\n" + (path.read_text()[-chars:] if path.exists() else "")


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, f"{args[:2]}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def shell(env: dict[str, str], code: str) -> object:
    """Run ``code`` in ``manage.py shell`` with ``env``; it prints one JSON line at the end."""
    return json.loads(manage(env, "shell", "-c", code).strip().splitlines()[-1])


SANDBOX_SETUP = """
import json
from psa.sandbox.models import SandboxFaults
from timelogging.management.sandbox import SANDBOX_VENDORS, autotask_proxy_time_entry
for spec in SANDBOX_VENDORS.values():
    spec.seed()
autotask_proxy_time_entry(enabled=True)
for vendor in SANDBOX_VENDORS:
    SandboxFaults.objects.update_or_create(vendor=vendor, defaults=FAULTS)
# How piadesk connects to each (piadesk's own processes run without the sandbox app).
print(json.dumps({
    vendor: {"label": spec.label, "settings": spec.settings(SANDBOX_URL), "secrets": spec.secrets}
    for vendor, spec in SANDBOX_VENDORS.items()
}))
"""

TENANTS_SETUP = """
import json
from timelogging.models import Automation, Tenant, TenantAPIKey
from timelogging.services.connections import connection_save
keys = {}
for vendor, spec in SANDBOXES.items():
    tenant = Tenant.objects.create(
        name=f"Scale {vendor}", time_logging_enabled=True, apply_to=Tenant.ApplyTo.ALL
    )
    Automation.objects.create(tenant=tenant, key="reset-password", minutes=20)
    connection = connection_save(
        tenant=tenant, vendor=vendor, name=f"{spec['label']} sandbox",
        settings=spec["settings"], secrets=spec["secrets"],
    )
    connection.requests_per_hour = 600_000  # the request budget is not what this is about
    connection.save()
    keys[vendor] = TenantAPIKey.objects.create_key(tenant=tenant, name="scale-out")[1]
print(json.dumps(keys))
"""

OUTCOME = """
import json
from timelogging.models import AutomationRun, TimeEntry
runs = list(AutomationRun.objects.values_list("run_id", "decision", "tenant__name"))
entries = [
    [e.run.run_id, e.run.reference_text, e.status, e.tenant.name]
    for e in TimeEntry.objects.select_related("run", "tenant")
]
print(json.dumps({"runs": runs, "entries": entries}))
"""

SANDBOX_ENTRIES = """
import json
from psa.sandbox.models import SandboxTimeEntry
print(json.dumps(list(SandboxTimeEntry.objects.values_list("vendor", "notes"))))
"""


@pytest.fixture
def private_postgres():
    pg = PrivatePostgres()
    pg.init()
    yield pg
    pg.destroy()


def base_env(tmp_path: Path) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PIADESK_", "DEBUG", "DATABASE_URL", "PROMETHEUS_", "Q_"))
    }
    return {**env, "PYTHONUNBUFFERED": "1", "DJANGO_SETTINGS_MODULE": "piadesk.settings"}


class Client:
    """The automation service: reports runs, resends on 503 / a lost connection."""

    def __init__(self, bases: list[str], keys: dict[str, str]) -> None:
        self.bases = bases
        self.keys = keys
        self.accepted: dict[str, str] = {}  # run_id -> vendor, answered 201 or 200
        self.statuses: Counter[int] = Counter()
        self.unavailable_without_retry_after = 0
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def report(self, vendor: str, run_id: str, i: int) -> None:
        started = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=1)
        body = {
            "run_id": run_id,
            "automation": {"key": "reset-password", "name": "Reset password"},
            "client": {"key": "contoso", "name": "Contoso"},
            "ticket_id": "1001",
            "started_by": "john.doe@demo-msp.example",
            "started_at": started.isoformat(),
            "completed_at": (started + dt.timedelta(minutes=1)).isoformat(),
        }
        headers = {**HTTPS, "Authorization": f"Bearer {self.keys[vendor]}"}
        session = requests.Session()
        deadline = time.monotonic() + 180
        attempt = 0
        while time.monotonic() < deadline:
            base = self.bases[(i + attempt) % len(self.bases)]  # alternate between the webs
            attempt += 1
            try:
                response = session.post(
                    f"{base}/api/v1/automation-runs/", json=body, headers=headers, timeout=30
                )
            except requests.RequestException:
                time.sleep(0.5)
                continue
            with self.lock:
                self.statuses[response.status_code] += 1
            if response.status_code in (200, 201):
                with self.lock:
                    self.accepted[run_id] = vendor
                return
            if response.status_code == 503:
                if "Retry-After" not in response.headers or "detail" not in response.json():
                    with self.lock:
                        self.unavailable_without_retry_after += 1
                time.sleep(min(float(response.headers.get("Retry-After", 1)), 2))
                continue
            with self.lock:
                self.errors.append(f"{run_id}: {response.status_code} {response.text[:300]}")
            return
        with self.lock:
            self.errors.append(f"{run_id}: not accepted within 180 s")


def test_two_webs_and_two_workers_survive_a_cluster_kill_and_a_database_restart(
    tmp_path, private_postgres, postgres_database
):
    logs = tmp_path / "logs"
    logs.mkdir()
    processes = Processes(logs)
    env = base_env(tmp_path)
    sandbox_port, web_ports = free_port(), [free_port(), free_port()]
    sandbox_url = f"http://127.0.0.1:{sandbox_port}"
    sandbox_env = {
        **env,
        "DEBUG": "1",
        "PIADESK_SANDBOX": "1",
        "DATABASE_URL": postgres_database,
        "PIADESK_VAR_DIR": str(tmp_path / "sandbox-var"),
        "PIADESK_BIND": f"127.0.0.1:{sandbox_port}",
        "WEB_CONCURRENCY": "3",
    }
    piadesk_env = {
        **env,
        "DEBUG": "0",
        "SECRET_KEY": Fernet.generate_key().decode() + "-scale-out",
        "PIADESK_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DATABASE_URL": private_postgres.url,
        "PIADESK_VAR_DIR": str(tmp_path / "var"),
        "CONNECTWISE_CLIENT_ID": str(uuid.uuid4()),
        "EMAIL_URL": "dummy:",
        # The PSAs are the sandboxes on loopback; production allows public addresses only.
        "PIADESK_PSA_ALLOWED_NETWORKS": "127.0.0.0/8",
        **WORKER_ENV,
    }
    try:
        manage(sandbox_env, "migrate", "--noinput")
        sandboxes = shell(
            sandbox_env, f"FAULTS = {FAULTS!r}\nSANDBOX_URL = {sandbox_url!r}\n" + SANDBOX_SETUP
        )
        manage(piadesk_env, "migrate", "--noinput")
        keys = shell(piadesk_env, f"SANDBOXES = {sandboxes!r}\n" + TENANTS_SETUP)
        assert isinstance(keys, dict) and sorted(keys) == sorted(VENDORS)

        web_command = unit_command("piadesk-web.service", 0)
        worker_command = unit_command("piadesk-worker.service", 0)
        processes.start("sandbox", web_command, sandbox_env)
        for n, port in enumerate(web_ports, 1):
            web_env = {**piadesk_env, "PIADESK_BIND": f"127.0.0.1:{port}", "WEB_CONCURRENCY": "2"}
            processes.start(f"web{n}", web_command, web_env)
        for n in (1, 2):
            processes.start(f"worker{n}", worker_command, piadesk_env)
        bases = [f"http://127.0.0.1:{port}" for port in web_ports]

        def healthy(base: str):
            def check():
                try:
                    response = requests.get(f"{base}/healthz", timeout=10)
                except requests.RequestException:
                    return None
                body = response.json()
                return body if body.get("worker", {}).get("clusters") == 2 else None

            return check

        for base in bases:
            wait_for(healthy(base), timeout=180, interval=0.5, what=f"{base}/healthz, 2 clusters")
        wait_for(
            lambda: requests.get(f"{sandbox_url}/sandbox/", timeout=10).ok,
            timeout=60,
            what="the sandbox server",
        )

        client = Client(bases, keys)
        runs = [
            (vendor, f"scale-{vendor}-{i:03d}", i)
            for i in range(RUNS_PER_TENANT)
            for vendor in VENDORS
        ]
        random.Random(7).shuffle(runs)
        work = iter(runs)
        work_lock = threading.Lock()

        def reporter():
            while True:
                with work_lock:
                    item = next(work, None)
                if item is None:
                    return
                client.report(*item)
                time.sleep(0.05)  # a burst spread over the faults below

        threads = [threading.Thread(target=reporter, daemon=True) for _ in range(4)]
        t0 = time.monotonic()
        for thread in threads:
            thread.start()

        total = len(runs)
        wait_for(lambda: len(client.accepted) >= total // 3, timeout=300, what="a third accepted")
        processes.kill("worker1")  # SIGKILL mid-flight: its tasks and claims are abandoned
        wait_for(lambda: len(client.accepted) >= total // 2, timeout=300, what="half accepted")
        private_postgres.stop()
        down_at = time.monotonic()
        # Down long enough for the reporters to meet it (each waits Retry-After, then resends).
        wait_for(lambda: client.statuses[503] >= 3, timeout=60, what="503s while the DB is down")
        time.sleep(2)
        private_postgres.start()
        downtime = time.monotonic() - down_at
        processes.start("worker1", worker_command, piadesk_env)  # systemd's Restart=always
        for thread in threads:
            thread.join(timeout=600)
        submitted = time.monotonic() - t0

        # Both webs reconnected by themselves: healthy, both clusters beating again.
        for base in bases:
            wait_for(healthy(base), timeout=180, interval=1, what=f"{base} healthy after restart")

        def outcome():
            result = shell(piadesk_env, OUTCOME)
            open_ = [e for e in result["entries"] if e[2] not in ("posted", "failed")]
            return None if open_ else result

        result = wait_for(outcome, timeout=900, interval=5, what="every entry final")
        drained = time.monotonic() - t0
        stored = shell(sandbox_env, SANDBOX_ENTRIES)
    except BaseException:
        print("\n".join(processes.tail(name) for name in ("web1", "web2", "worker1", "worker2")))
        raise
    finally:
        processes.stop_all()

    runs_by_id = {run_id: (decision, tenant) for run_id, decision, tenant in result["runs"]}
    entries = result["entries"]
    per_run = Counter()
    for run_id, reference, _status, _tenant in entries:
        per_run[run_id] = sum(1 for _vendor, notes in stored if reference in notes)
    statuses = Counter(status for _run, _ref, status, _tenant in entries)
    duplicates = sum(n - 1 for n in per_run.values() if n > 1)
    missing = [run_id for run_id, n in per_run.items() if n == 0]
    print(
        f"\n[scale-out] runs={total} accepted={len(client.accepted)} "
        f"answers={dict(client.statuses)} entries={len(entries)} statuses={dict(statuses)} "
        f"sandbox_entries={len(stored)} duplicates={duplicates} missing={len(missing)} "
        f"db_down_s={downtime:.1f} submit_s={submitted:.1f} drain_s={drained:.1f}"
    )
    assert client.errors == []
    # While the database was down, ingest answered JSON 503s with Retry-After, never a 500.
    assert client.statuses[503] >= 3
    assert client.unavailable_without_retry_after == 0
    assert set(client.statuses) <= {200, 201, 503}
    # Nothing the automation service was told 201/200 for is lost; each is logged once.
    assert set(client.accepted) == {run_id for _vendor, run_id, _i in runs}
    assert set(runs_by_id) == set(client.accepted)
    assert all(decision == "log" for decision, _tenant in runs_by_id.values())
    assert {run_id for run_id, *_ in entries} == set(client.accepted)
    assert statuses == {"posted": total}, statuses
    assert duplicates == 0 and missing == []
    assert len(stored) == total
    assert Counter(vendor for vendor, _notes in stored) == dict.fromkeys(VENDORS, RUNS_PER_TENANT)
