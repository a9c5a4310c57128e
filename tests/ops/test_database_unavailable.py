"""The database down: 503 with Retry-After (JSON under /api/), never a 500 the client cannot
act on. The real restart of PostgreSQL is in tests/e2e/test_scale_out.py; here the database
error is raised where the view (or code outside it) would meet it."""

from __future__ import annotations

import json

import pytest
from django.db import InterfaceError, OperationalError, ProgrammingError
from django.test import RequestFactory

from piadesk.ops import unavailable
from timelogging.models import AutomationRun

URL = "/api/v1/automation-runs/"
pytestmark = pytest.mark.django_db


def post(api, payload):
    return api.generic("POST", URL, json.dumps(payload), content_type="application/json")


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("connection to server at 127.0.0.1, port 5432 failed: Connection refused"),
        OperationalError("terminating connection due to administrator command"),
        InterfaceError("connection already closed"),
    ],
)
def test_ingest_answers_503_with_retry_after_when_the_database_is_down(
    api, run_payload, monkeypatch, error
):
    def lost(**kwargs):
        raise error

    monkeypatch.setattr("timelogging.api.views.run_ingest", lost)
    response = post(api, run_payload())
    assert response.status_code == 503
    assert response["Retry-After"] == str(unavailable.RETRY_AFTER_SECONDS)
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert "database is unavailable" in body["detail"]
    assert body["retry_after"] == unavailable.RETRY_AFTER_SECONDS


def test_the_resend_after_the_outage_is_logged_once(api, run_payload, monkeypatch):
    """The client retries what it was answered 503 for: the run is accepted once."""
    from timelogging.api import views

    real = views.run_ingest
    monkeypatch.setattr(
        views, "run_ingest", lambda **kw: (_ for _ in ()).throw(OperationalError("down"))
    )
    assert post(api, run_payload()).status_code == 503
    assert AutomationRun.objects.count() == 0
    monkeypatch.setattr(views, "run_ingest", real)
    assert post(api, run_payload()).status_code == 201
    assert post(api, run_payload()).status_code == 200
    assert AutomationRun.objects.count() == 1


def test_staff_pages_answer_503_with_retry_after(admin_client, monkeypatch):
    def lost(*args, **kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr("timelogging.admin.site.PiadeskAdminSite.each_context", lost)
    response = admin_client.get("/admin/")
    assert response.status_code == 503
    assert response["Retry-After"] == str(unavailable.RETRY_AFTER_SECONDS)
    assert b"Service unavailable" in response.content


def test_a_query_bug_stays_a_500(api, run_payload, monkeypatch):
    def bug(**kwargs):
        raise ProgrammingError('relation "timelogging_nothing" does not exist')

    monkeypatch.setattr("timelogging.api.views.run_ingest", bug)
    api.raise_request_exception = False
    response = post(api, run_payload())
    assert response.status_code == 500
    assert response.json() == {"detail": "Server error."}
    assert "Retry-After" not in response


@pytest.mark.parametrize(
    ("path", "content_type"),
    [("/api/v1/automation-runs/", "application/json"), ("/admin/", "text/html")],
)
def test_handler500_turns_a_lost_database_outside_a_view_into_503(path, content_type):
    """Middleware after the view (a session saved) is outside process_exception's reach: the
    500 handler, called while Django handles the exception, answers 503 as well."""
    request = RequestFactory().get(path)
    try:
        raise OperationalError("the database system is shutting down")
    except OperationalError:
        response = unavailable.server_error(request)
    assert response.status_code == 503
    assert response["Retry-After"] == str(unavailable.RETRY_AFTER_SECONDS)
    assert response["Content-Type"].startswith(content_type)


def test_handler500_keeps_other_errors_500():
    request = RequestFactory().get("/api/v1/automation-runs/")
    try:
        raise ValueError("a bug")
    except ValueError:
        response = unavailable.server_error(request)
    assert response.status_code == 500
