"""README "Production", followed on this machine: PostgreSQL, the example environment,
``deploy/piadesk-manage`` (migrate, collectstatic, check --deploy), and the web and worker
started with the commands of the systemd units (gunicorn, qcluster).

What it proves: /healthz is 200 with the database and the worker up, /metrics carries
piadesk_ metrics summed over processes (the ingest counted by a gunicorn worker, the PSA
latency by a qcluster worker), the admin's static files are served, and a run reported over
the API is posted to the (sandbox) PSA by those processes. The requests carry
``X-Forwarded-Proto: https`` as nginx (deploy/nginx.conf) sets it.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shlex
import socket
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from tests.e2e.conftest import stop_process_group, wait_for

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
HTTPS = {"X-Forwarded-Proto": "https"}

pytestmark = pytest.mark.e2e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unit_command(unit: str, port: int) -> list[str]:
    """The unit's ExecStart, for this checkout and this virtualenv instead of /srv/piadesk."""
    text = (DEPLOY / unit).read_text()
    match = re.search(r"^ExecStart=(.+)$", text, re.M)
    assert match is not None, f"{unit} has no ExecStart"
    exec_start = match.group(1)
    assert re.search(r"^WorkingDirectory=/srv/piadesk$", text, re.M)
    assert re.search(r"^EnvironmentFile=/etc/piadesk/piadesk.env$", text, re.M)
    command = exec_start.replace("/srv/piadesk/.venv", sys.prefix).replace(
        "/srv/piadesk", str(ROOT)
    )
    return shlex.split(command)


@pytest.fixture
def production(tmp_path, postgres_database):
    """The example environment with this machine's values, as an operator fills it in."""
    port = free_port()
    values = {
        "SECRET_KEY": Fernet.generate_key().decode() + "-production-e2e",
        "PIADESK_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "CSRF_TRUSTED_ORIGINS": f"https://127.0.0.1:{port}",
        "DATABASE_URL": postgres_database,
        "PIADESK_VAR_DIR": str(tmp_path / "var"),
        "CONNECTWISE_CLIENT_ID": str(uuid.uuid4()),
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "metrics"),
        "PIADESK_METRICS_TOKEN": "metrics-token-e2e",
        "EMAIL_URL": "dummy:",  # no mail server here
        "PIADESK_BASE_URL": f"https://127.0.0.1:{port}",
    }
    lines = []
    for line in (DEPLOY / "piadesk.env.example").read_text().splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={values.pop(key)}" if key in values else line)
    assert values == {}, f"not in deploy/piadesk.env.example: {values}"
    # For this test only: a PSA to post to (the sandbox, served by the same gunicorn), the
    # test's port, and two web workers.
    lines += ["PIADESK_SANDBOX=1", f"PIADESK_BIND=127.0.0.1:{port}", "WEB_CONCURRENCY=2"]
    assert not [line for line in lines if "change-me" in line and not line.startswith("#")]
    env_file = tmp_path / "piadesk.env"
    env_file.write_text("\n".join(lines) + "\n")
    (tmp_path / "metrics").mkdir()  # systemd's RuntimeDirectory=
    (tmp_path / "var").mkdir()  # systemd's StateDirectory=
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DJANGO_", "PIADESK_", "DEBUG", "DATABASE_URL", "PROMETHEUS_"))
    }
    env_from_file = dict(line.split("=", 1) for line in lines if line and line[0] != "#")
    processes: list[tuple[subprocess.Popen, object]] = []

    def manage(*args: str) -> str:
        result = subprocess.run(
            [str(DEPLOY / "piadesk-manage"), *args],
            env={**env, "PIADESK_ENV_FILE": str(env_file), "PIADESK_VENV": sys.prefix},
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
        return result.stdout + result.stderr

    def start(unit: str) -> None:
        log = open(tmp_path / f"{unit}.log", "w")  # noqa: SIM115 - closed at teardown
        process = subprocess.Popen(
            unit_command(unit, port),
            cwd=ROOT,  # WorkingDirectory=
            env={**env, **env_from_file},  # EnvironmentFile=
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        processes.append((process, log))

    yield {"port": port, "manage": manage, "start": start, "logs": tmp_path}
    for process, log in processes:
        stop_process_group(process, timeout=20)
        log.close()


def test_the_readme_production_path_gives_a_working_piadesk(production):
    manage, port = production["manage"], production["port"]
    base = f"http://127.0.0.1:{port}"
    manage("migrate", "--noinput")
    manage("collectstatic", "--noinput")
    assert "no issues" in manage("check", "--deploy", "--fail-level", "WARNING")
    # A tenant, its connection to the sandbox PSA and an API key (staff do this in the admin).
    key = re.search(r"Bearer (\S+)'", manage("demo", "--setup-only", "--port", str(port))).group(1)

    production["start"]("piadesk-web.service")
    production["start"]("piadesk-worker.service")

    def health():
        try:
            response = requests.get(f"{base}/healthz", timeout=30)
        except requests.RequestException:  # not listening yet, or still booting
            return None
        return response if response.json().get("status") == "ok" else None

    try:
        response = wait_for(health, timeout=240, interval=0.5, what="/healthz ok")
    except AssertionError:
        logs = production["logs"]
        raise AssertionError(
            (logs / "piadesk-web.service.log").read_text()[-3000:]
            + (logs / "piadesk-worker.service.log").read_text()[-3000:]
        ) from None
    body = response.json()
    assert response.status_code == 200
    assert body["database"] == {"ok": True}
    assert body["worker"]["ok"] and body["worker"]["clusters"] == 1

    # HTTPS only: plain HTTP is redirected, as the proxy's X-Forwarded-Proto says otherwise.
    redirect = requests.get(f"{base}/admin/login/", allow_redirects=False, timeout=30)
    assert redirect.status_code == 301 and redirect.headers["Location"].startswith("https://")
    login = requests.get(f"{base}/admin/login/", headers=HTTPS, timeout=30)
    assert login.status_code == 200
    assert "max-age=31536000" in login.headers["Strict-Transport-Security"]
    css = requests.get(f"{base}/static/admin/css/base.css", headers=HTTPS, timeout=30)
    assert css.status_code == 200 and "text/css" in css.headers["Content-Type"]

    started = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=3)
    run = {
        "run_id": f"production-{uuid.uuid4().hex[:8]}",
        "automation": {"key": "reset-password", "name": "Reset password"},
        "client": {"key": "contoso"},
        "ticket_id": "1001",
        "started_by": "john.doe@demo-msp.example",
        "started_at": started.isoformat(),
        "completed_at": (started + dt.timedelta(minutes=2)).isoformat(),
    }
    api = {**HTTPS, "Authorization": f"Bearer {key}"}
    created = requests.post(f"{base}/api/v1/automation-runs/", json=run, headers=api, timeout=30)
    assert created.status_code == 201, created.text

    def posted():
        response = requests.get(
            f"{base}/api/v1/automation-runs/{run['run_id']}/", headers=api, timeout=30
        )
        entry = response.json()["entry"]
        return entry if entry["status"] == "posted" else None

    entry = wait_for(posted, timeout=240, interval=0.5, what="the entry posted by the worker")
    assert entry["psa_entry_id"]
    assert entry["logged_as"]["ref"] == "jdoe"
    sandbox = requests.get(f"{base}/sandbox/", timeout=30).text
    assert run["run_id"] in sandbox or "jdoe" in sandbox

    assert requests.get(f"{base}/metrics", timeout=30).status_code == 401
    metrics = requests.get(
        f"{base}/metrics", headers={"Authorization": "Bearer metrics-token-e2e"}, timeout=30
    ).text
    assert "piadesk_database_up 1.0" in metrics
    assert "piadesk_worker_clusters 1.0" in metrics
    assert 'piadesk_time_entries{status="posted",vendor="connectwise"} 1.0' in metrics
    assert 'piadesk_post_attempts_total{outcome="posted"} 1.0' in metrics
    # Counted in another gunicorn worker or the qcluster: summed from PROMETHEUS_MULTIPROC_DIR.
    assert 'piadesk_ingest_requests_total{status="201"} 1.0' in metrics
    count = re.search(
        r'^piadesk_psa_request_duration_seconds_count\{vendor="connectwise"\} (\S+)$', metrics, re.M
    )
    assert count and float(count.group(1)) >= 1
