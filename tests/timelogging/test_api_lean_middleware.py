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
