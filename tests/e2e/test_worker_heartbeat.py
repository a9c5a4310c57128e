"""A real qcluster's heartbeat reaches /healthz and /metrics (through the database cache)."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_healthz_sees_the_running_cluster_and_notices_when_it_is_gone(qcluster, client):
    def worker():
        return json.loads(client.get("/healthz").content)["worker"]

    up = wait_for(lambda: worker()["ok"] and worker(), timeout=60, what="a cluster heartbeat")
    assert up["clusters"] == 1
    assert up["heartbeat_age_seconds"] < 3
    assert "piadesk_worker_clusters 1.0" in client.get("/metrics").content.decode()

    qcluster.kill()  # SIGKILL: no goodbye, the heartbeat simply stops and expires
    gone = wait_for(
        lambda: not worker()["ok"] and worker(), timeout=15, what="the heartbeat to expire"
    )
    assert gone["clusters"] == 0
    body = json.loads(client.get("/healthz").content)
    assert body["status"] == "degraded"
