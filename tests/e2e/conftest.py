"""End-to-end fixtures: a real ``qcluster`` process sharing the test database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connection

ROOT = Path(settings.BASE_DIR)
# The machine's PostgreSQL, where the production-path tests create databases of their own.
ADMIN_PG = os.environ.get("PIADESK_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")


def test_database_url() -> str:
    db = connection.settings_dict
    if db["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    host = db.get("HOST") or "127.0.0.1"
    port = db.get("PORT") or 5432
    return f"postgres://{user}{password}@{host}:{port}/{db['NAME']}"


class Worker:
    """``manage.py qcluster`` in its own process group, on the test database."""

    def __init__(self, workers: int = 2, **env: str) -> None:
        self.env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": test_database_url(),
            "Q_WORKERS": str(workers),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.log_path = ROOT / "var" / f"qcluster-{os.getpid()}.log"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        self.log = open(self.log_path, "a")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT,
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def kill(self) -> None:
        """SIGKILL the whole cluster (guard, workers, monitor, pusher): a crashed machine."""
        assert self.process is not None
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()
        self.process = None

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                # django-q2 lets workers finish for a while; the tests are done with them, and
                # the delivery design survives a kill anyway.
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                pass
        # Workers, monitor and pusher are children in the same process group: one may outlive
        # the guard and keep a database session open (PostgreSQL then refuses to drop the test
        # database). Make sure none is left.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


@pytest.fixture
def qcluster(transactional_db):
    worker = Worker()
    worker.log_path.unlink(missing_ok=True)
    worker.start()
    yield worker
    worker.stop()


def stop_process_group(process: subprocess.Popen, *, timeout: float) -> None:
    """SIGTERM the process's group, wait up to ``timeout`` s, then SIGKILL what is left (a
    child that outlives its parent would keep a database session open)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def wait_for(predicate, *, timeout: float = 60, interval: float = 0.25, what: str = ""):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or predicate}")


@pytest.fixture
def postgres_database():
    psycopg = pytest.importorskip("psycopg")
    try:
        admin = psycopg.connect(ADMIN_PG, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(f"PostgreSQL not reachable at {ADMIN_PG}: {exc}")
    name = f"piadesk_prod_e2e_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin.execute(f'CREATE DATABASE "{name}"')
    yield ADMIN_PG.rsplit("/", 1)[0] + f"/{name}"
    admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    admin.close()
