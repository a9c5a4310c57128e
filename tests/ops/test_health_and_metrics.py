"""/healthz and /metrics: what an operator's monitoring reads."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid

import pytest
import responses
from django.db import OperationalError, connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.signing import SignedPackage
from django_q.status import Stat, Status

from psa.base import RetryableError
from psa.http import PSASession
from tests.factories import PSAConnectionFactory, TimeEntryFactory
from timelogging.models import PostAttempt, TimeEntry

pytestmark = pytest.mark.django_db


def fake_cluster_heartbeat(*, seconds_ago: float = 0.5) -> None:
    """What a running qcluster's guard saves every 0.5 s (django_q.status.Stat.save)."""
    status = Status(pid=4242, cluster_id=uuid.uuid4())
    status.status = Conf.IDLE
    status.timestamp = timezone.now() - dt.timedelta(seconds=seconds_ago)
    get_broker().set_stat(Stat.get_key(status.cluster_id), SignedPackage.dumps(status, True), 3)


def healthz(client):
    response = client.get("/healthz")
    return response.status_code, json.loads(response.content)


def test_healthz_without_a_worker_is_degraded_but_up(client):
    status, body = healthz(client)
    assert status == 200
    assert body["status"] == "degraded"
    assert body["database"] == {"ok": True}
    assert body["worker"] == {"ok": False, "clusters": 0, "heartbeat_age_seconds": None}
    assert body["queue"] == {"ok": True, "due": 0, "oldest_due_age_seconds": None}
    assert body["paused_connections"] == 0


def test_healthz_with_a_live_cluster_and_an_idle_queue_is_ok(client):
    fake_cluster_heartbeat(seconds_ago=1)
    status, body = healthz(client)
    assert (status, body["status"]) == (200, "ok")
    assert body["worker"]["ok"] is True
    assert body["worker"]["clusters"] == 1
    assert 0.5 <= body["worker"]["heartbeat_age_seconds"] < 5


def test_healthz_reports_the_oldest_due_entry_and_paused_connections(client, settings):
    connection_ = PSAConnectionFactory(paused_at=timezone.now(), pause_reason="401")
    now = timezone.now()
    TimeEntryFactory(
        status=TimeEntry.Status.PENDING, next_attempt_at=now - dt.timedelta(seconds=120)
    )
    TimeEntryFactory(
        status=TimeEntry.Status.RETRY_WAIT, next_attempt_at=now - dt.timedelta(seconds=10)
    )
    # Not due: waiting for its retry time, or done.
    TimeEntryFactory(
        status=TimeEntry.Status.RETRY_WAIT, next_attempt_at=now + dt.timedelta(hours=1)
    )
    TimeEntryFactory(status=TimeEntry.Status.POSTED, next_attempt_at=now - dt.timedelta(days=1))
    fake_cluster_heartbeat()

    status, body = healthz(client)
    assert status == 200
    assert body["queue"]["due"] == 2
    assert 119 <= body["queue"]["oldest_due_age_seconds"] < 130
    assert body["paused_connections"] == 1
    assert body["status"] == "ok"

    settings.PIADESK_HEALTH_MAX_DUE_SECONDS = 60
    status, body = healthz(client)
    assert (status, body["status"], body["queue"]["ok"]) == (200, "degraded", False)
    assert connection_.paused_at is not None


def test_healthz_is_503_when_the_database_does_not_answer(client, monkeypatch):
    def unreachable(*args, **kwargs):
        raise OperationalError("connection to server at 127.0.0.1 failed: Connection refused")

    monkeypatch.setattr(connection, "cursor", unreachable)
    response = client.get("/healthz")
    assert response.status_code == 503
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {"status": "down", "database": {"ok": False}}


def metrics_text(client, **headers) -> str:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return response.content.decode()


def sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_report_entries_attempts_queue_and_connections_from_the_database(client):
    paused = PSAConnectionFactory(vendor="autotask", paused_at=timezone.now())
    entry = TimeEntryFactory(
        status=TimeEntry.Status.PENDING, next_attempt_at=timezone.now() - dt.timedelta(minutes=5)
    )
    TimeEntryFactory(status=TimeEntry.Status.HELD, connection=paused, tenant=paused.tenant)
    for number, outcome in enumerate(["rate_limited", "posted"], start=1):
        PostAttempt.objects.create(
            tenant=entry.tenant,
            entry=entry,
            number=number,
            started_at=timezone.now(),
            outcome=outcome,
        )
    fake_cluster_heartbeat()

    text = metrics_text(client)
    assert sample(text, "piadesk_database_up") == 1
    assert sample(text, 'piadesk_time_entries{status="pending",vendor="none"}') == 1
    assert sample(text, 'piadesk_time_entries{status="held",vendor="autotask"}') == 1
    assert sample(text, 'piadesk_post_attempts_total{outcome="rate_limited"}') == 1
    assert sample(text, 'piadesk_post_attempts_total{outcome="posted"}') == 1
    assert sample(text, "piadesk_queue_due_entries") == 1
    assert 299 <= sample(text, "piadesk_queue_oldest_due_age_seconds") < 320
    assert sample(text, "piadesk_paused_connections") == 1
    assert sample(text, 'piadesk_psa_connections{vendor="autotask"}') == 1
    assert sample(text, "piadesk_worker_clusters") == 1
    assert sample(text, "piadesk_worker_heartbeat_age_seconds") < 5


def test_metrics_count_ingest_answers_by_status(client, api, run_payload):
    before = metrics_text(client)
    created = sample(before, 'piadesk_ingest_requests_total{status="201"}') or 0
    invalid = sample(before, 'piadesk_ingest_requests_total{status="400"}') or 0

    payload = run_payload()
    assert api.post("/api/v1/automation-runs/", payload, format="json").status_code == 201
    assert api.post("/api/v1/automation-runs/", {"run_id": ""}, format="json").status_code == 400
    api.get("/api/v1/automation-runs/")  # reads are not ingest

    after = metrics_text(client)
    assert sample(after, 'piadesk_ingest_requests_total{status="201"}') == created + 1
    assert sample(after, 'piadesk_ingest_requests_total{status="400"}') == invalid + 1


@responses.activate
def test_metrics_observe_psa_request_latency_per_vendor(client):
    name = 'piadesk_psa_request_duration_seconds_count{vendor="halopsa"}'
    before = sample(metrics_text(client), name) or 0
    responses.get("https://halo.example/api/Agent", json=[])
    session = PSASession(vendor="halopsa")
    session.request("GET", "https://halo.example/api/Agent")
    with pytest.raises(RetryableError):  # connection refused: timed too
        session.request("GET", "https://halo.example/api/Nowhere")
    assert sample(metrics_text(client), name) == before + 2


def test_metrics_token_when_set(client, settings):
    settings.PIADESK_METRICS_TOKEN = "s3cret-metrics-token"
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    text = metrics_text(client, HTTP_AUTHORIZATION="Bearer s3cret-metrics-token")
    assert "piadesk_database_up 1.0" in text


def test_metrics_sum_every_process_in_multiprocess_mode(tmp_path):
    """gunicorn workers and qcluster workers each count; /metrics shows the sum."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prom"),
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'empty.sqlite3'}",
    }
    (tmp_path / "prom").mkdir()
    observe = (
        "import django; django.setup(); from psa.metrics import psa_request_observe; "
        "psa_request_observe(vendor='connectwise', seconds=0.2)"
    )
    for _ in range(2):  # two processes, as two workers
        subprocess.run([sys.executable, "-c", observe], env=env, check=True)
    scrape = (
        "import django; django.setup(); from prometheus_client import generate_latest; "
        "from piadesk.ops.metrics import _registry; print(generate_latest(_registry()).decode())"
    )
    text = subprocess.run(
        [sys.executable, "-c", scrape], env=env, check=True, capture_output=True, text=True
    ).stdout
    assert sample(text, 'piadesk_psa_request_duration_seconds_count{vendor="connectwise"}') == 2
    # The database of this scrape has no tables: reported, not raised.
    assert sample(text, "piadesk_database_up") == 0
