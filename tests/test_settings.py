"""Invariants of the worker configuration (docs: piadesk/settings.py, engineering.md)."""

from __future__ import annotations

import importlib
import pickle

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


def test_q_cluster_invariants():
    q = settings.Q_CLUSTER
    attempt = settings.PSA_MAX_REQUESTS_PER_ATTEMPT * (
        settings.PSA_HTTP_CONNECT_TIMEOUT + settings.PSA_HTTP_READ_TIMEOUT
    )
    # A task is killed only after its longest possible attempt, and re-delivered only after
    # it was killed: never while a first delivery may still be posting.
    assert q["retry"] > q["timeout"] > attempt
    # piadesk decides retries from its own entry state; the broker must not re-run failures.
    assert q["ack_failures"] is True
    # The default save_limit (250) caps throughput near 110 tasks/s.
    assert q.get("save_limit", 250) >= 1000
    assert q["orm"] == "default"


@pytest.mark.django_db
def test_task_arguments_are_ids_only(api, run_payload):
    from django_q.models import OrmQ

    api.post("/api/v1/automation-runs/", run_payload(), format="json")
    task = OrmQ.objects.get().task
    assert all(isinstance(arg, int) for arg in task["args"])
    assert task["kwargs"] == {}
    pickle.dumps(task["args"])


def test_production_refuses_to_start_without_secrets(monkeypatch):
    import piadesk.settings as piadesk_settings

    for name in ("DEBUG", "SECRET_KEY", "PIADESK_ENCRYPTION_KEYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DEBUG", "false")
    try:
        with pytest.raises(ImproperlyConfigured, match="SECRET_KEY"):
            importlib.reload(piadesk_settings)
        monkeypatch.setenv("SECRET_KEY", "x" * 50)
        with pytest.raises(ImproperlyConfigured, match="PIADESK_ENCRYPTION_KEYS"):
            importlib.reload(piadesk_settings)
        monkeypatch.setenv("DEBUG", "maybe")
        with pytest.raises(ImproperlyConfigured, match="DEBUG must be a boolean"):
            importlib.reload(piadesk_settings)
    finally:
        monkeypatch.undo()
        importlib.reload(piadesk_settings)
