"""Invariants of the worker configuration (docs: piadesk/settings.py, engineering.md)."""

from __future__ import annotations

import importlib
import pickle

import pytest
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import connection


def test_q_cluster_invariants():
    q = settings.Q_CLUSTER
    # A task is killed only after its longest possible attempt (psa/http.py enforces the
    # deadline over all of an attempt's requests), and re-delivered only after it was killed:
    # never while a first delivery may still be posting.
    assert q["retry"] > q["timeout"] > settings.PSA_ATTEMPT_DEADLINE_SECONDS
    # An entry left "posting" is taken over only once the worker holding it was killed.
    assert settings.PIADESK_POSTING_LEASE_SECONDS > q["timeout"]
    # piadesk decides retries from its own entry state; the broker must not re-run failures.
    assert q["ack_failures"] is True
    # Successful tasks' results are not kept: with a positive save_limit django-q2's monitor
    # locks and reads every kept result on each save (the default 250 caps throughput near
    # 110 tasks/s; 10,000 made the cost per entry grow through a long drain).
    assert q.get("save_limit", 250) == -1
    assert q["orm"] == "default"
    # Workers are replaced rarely (each replacement cost a new database connection, new PSA
    # connections and up to half a second idle), and when their memory grows.
    assert q["recycle"] >= 10_000
    assert q["max_rss"] is not None and q["max_rss"] >= 131_072


def test_django_q_reads_the_recycling_limits():
    from django_q.conf import Conf

    assert Conf.RECYCLE == settings.Q_CLUSTER["recycle"]
    assert Conf.MAX_RSS == settings.Q_CLUSTER["max_rss"]


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"Q_RECYCLE": "0"}, "Q_RECYCLE must be 1 or more"),
        ({"Q_MAX_RSS_KB": "50000"}, "Q_MAX_RSS_KB must be 0"),
    ],
)
def test_recycling_limits_that_would_replace_workers_constantly_are_refused(
    monkeypatch, env, message
):
    import piadesk.settings as piadesk_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        with pytest.raises(ImproperlyConfigured, match=message):
            importlib.reload(piadesk_settings)
        monkeypatch.setenv("Q_MAX_RSS_KB", "0")
        monkeypatch.delenv("Q_RECYCLE", raising=False)
        importlib.reload(piadesk_settings)
        assert piadesk_settings.Q_CLUSTER["max_rss"] is None  # 0: no memory limit
    finally:
        monkeypatch.undo()
        importlib.reload(piadesk_settings)


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


def test_email_url_configures_the_email_backend(monkeypatch):
    import piadesk.settings as piadesk_settings

    try:
        monkeypatch.setenv(
            "EMAIL_URL", "smtp://piadesk%40acme.example:p%40ss@smtp.acme.example:587/?tls=True"
        )
        importlib.reload(piadesk_settings)
        assert piadesk_settings.EMAIL_BACKEND == "django.core.mail.backends.smtp.EmailBackend"
        assert (piadesk_settings.EMAIL_HOST, piadesk_settings.EMAIL_PORT) == (
            "smtp.acme.example",
            587,
        )
        assert piadesk_settings.EMAIL_HOST_USER == "piadesk@acme.example"
        assert piadesk_settings.EMAIL_HOST_PASSWORD == "p@ss"
        assert piadesk_settings.EMAIL_USE_TLS is True
        assert piadesk_settings.EMAIL_TIMEOUT == 10
        monkeypatch.delenv("EMAIL_URL")
        monkeypatch.setenv("DEBUG", "1")
        importlib.reload(piadesk_settings)  # make run: messages on the console
        assert piadesk_settings.EMAIL_BACKEND == "django.core.mail.backends.console.EmailBackend"
        monkeypatch.setenv("EMAIL_URL", "carrier-pigeon://coop")
        with pytest.raises(ImproperlyConfigured, match="EMAIL_URL"):
            importlib.reload(piadesk_settings)
    finally:
        monkeypatch.undo()
        importlib.reload(piadesk_settings)


@pytest.mark.parametrize("value", ["0", "-5"])
def test_sweep_minutes_below_one_is_refused(monkeypatch, value):
    import piadesk.settings as piadesk_settings

    monkeypatch.setenv("PIADESK_SWEEP_MINUTES", value)
    try:
        with pytest.raises(ImproperlyConfigured, match="PIADESK_SWEEP_MINUTES"):
            importlib.reload(piadesk_settings)
    finally:
        monkeypatch.undo()
        importlib.reload(piadesk_settings)


@pytest.mark.parametrize(
    "env",
    [
        {"PSA_ATTEMPT_DEADLINE_SECONDS": "0"},
        {"PSA_ATTEMPT_DEADLINE_SECONDS": "240"},  # not below the task timeout (240)
        {"Q_TIMEOUT": "100"},  # below the attempt's deadline (120)
        {"Q_RETRY": "200"},  # a lost task re-delivered before the first is killed
    ],
)
def test_an_attempt_that_could_outlive_its_task_is_refused(monkeypatch, env):
    import piadesk.settings as piadesk_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    try:
        with pytest.raises(ImproperlyConfigured, match="PSA_ATTEMPT_DEADLINE_SECONDS < Q_TIMEOUT"):
            importlib.reload(piadesk_settings)
    finally:
        monkeypatch.undo()
        importlib.reload(piadesk_settings)


def test_postgresql_binds_parameters_on_the_server_unless_turned_off(monkeypatch):
    """Server-side binding lets psycopg prepare the statements a connection repeats (the
    worker's, the ingest's); a PgBouncer in transaction mode before 1.21 needs it off."""
    import piadesk.settings as piadesk_settings

    try:
        monkeypatch.setenv("DATABASE_URL", "postgres://piadesk@127.0.0.1:5432/piadesk")
        importlib.reload(piadesk_settings)
        assert piadesk_settings.DATABASES["default"]["OPTIONS"]["server_side_binding"] is True
        monkeypatch.setenv("DATABASE_PREPARED_STATEMENTS", "off")
        importlib.reload(piadesk_settings)
        options = piadesk_settings.DATABASES["default"].get("OPTIONS", {})
        assert "server_side_binding" not in options
        monkeypatch.setenv("DATABASE_URL", "sqlite:///:memory:")
        monkeypatch.delenv("DATABASE_PREPARED_STATEMENTS")
        importlib.reload(piadesk_settings)
        assert "server_side_binding" not in piadesk_settings.DATABASES["default"]["OPTIONS"]
    finally:
        monkeypatch.undo()
        importlib.reload(piadesk_settings)


@pytest.mark.skipif(connection.vendor != "postgresql", reason="cursor classes (PostgreSQL)")
@pytest.mark.django_db
def test_the_test_database_connection_uses_the_configured_binding():
    with connection.cursor() as cursor:
        raw = type(cursor.cursor).__name__
    binding = connection.settings_dict["OPTIONS"].get("server_side_binding")
    assert raw == ("ServerBindingCursor" if binding else "Cursor")  # Cursor: client-side
