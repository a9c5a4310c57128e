"""The API passes by the staff site's sessions and messages (piadesk/site_only.py); the site
keeps them, and the API keeps what it needs (the database-down 503 is tested in tests/ops)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.django_db


def test_an_ingest_has_no_session_and_sets_no_cookie(api, run_payload):
    response = api.generic(
        "POST",
        "/api/v1/automation-runs/",
        json.dumps(run_payload()),
        content_type="application/json",
    )
    assert response.status_code == 201
    assert not hasattr(response.wsgi_request, "session")
    assert not hasattr(response.wsgi_request, "_messages")
    assert response.wsgi_request.user is None  # DRF: the caller is a key, not a person
    assert not response.cookies
    assert "Cookie" not in response.get("Vary", "")


def test_the_staff_site_keeps_its_session_and_messages(client, admin_user):
    response = client.post(
        "/admin/login/?next=/admin/", {"username": admin_user.username, "password": "password"}
    )
    assert response.status_code == 302
    assert "sessionid" in response.cookies
    page = client.get("/admin/")
    assert page.status_code == 200
    assert hasattr(page.wsgi_request, "session") and hasattr(page.wsgi_request, "_messages")


def test_an_automation_first_reported_is_recorded_with_the_requests_address(api, run_payload):
    from timelogging.models import ConfigChange

    response = api.generic(
        "POST",
        "/api/v1/automation-runs/",
        json.dumps(run_payload(automation={"key": "new-one", "name": "New one"})),
        content_type="application/json",
        HTTP_X_FORWARDED_FOR="203.0.113.9",
        HTTP_X_CORRELATION_ID="corr-42",
    )
    assert response.status_code == 201
    change = ConfigChange.objects.get(content_type__model="automation")
    assert (change.remote_addr, change.cid, change.actor) == ("203.0.113.9", "corr-42", None)


def test_an_ingest_that_changes_no_configuration_enters_no_history_context(
    api, run_payload, monkeypatch
):
    """auditlog's context (a signal receiver connected and disconnected, the headers parsed)
    is entered for the API only around a change: the first report of an automation."""
    import piadesk.site_only

    entered = []
    original = piadesk.site_only.set_extra_data

    def counting(**kwargs):
        entered.append(1)
        return original(**kwargs)

    monkeypatch.setattr(piadesk.site_only, "set_extra_data", counting)

    def ingest(run_id):
        body = json.dumps(run_payload(run_id=run_id))
        response = api.generic(
            "POST", "/api/v1/automation-runs/", body, content_type="application/json"
        )
        assert response.status_code == 201

    ingest("first")  # the automation and the client are new: created
    ingest("second")  # read once more, then kept by the process (services/ingest_cache.py)
    assert len(entered) == 4
    ingest("third")
    assert len(entered) == 4
