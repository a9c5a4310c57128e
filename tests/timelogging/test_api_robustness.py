"""Input that once made the API answer 500 (found by tests/test_api_fuzz.py and by probing its
edges), now answered as client errors, and errors answered in JSON wherever the API is."""

from __future__ import annotations

import json

import pytest
from django.test import RequestFactory

from timelogging.api.errors import page_not_found, server_error
from timelogging.models import AutomationRun

URL = "/api/v1/automation-runs/"
pytestmark = pytest.mark.django_db


def post(api, body: str):
    return api.generic("POST", URL, body, content_type="application/json")


@pytest.mark.parametrize("depth", [100, 900, 1000, 5000, 100_000])
@pytest.mark.parametrize("shape", ["array", "object"])
def test_deeply_nested_json_is_400(api, run_payload, depth, shape):
    """Python's json decoder recurses per level and raised RecursionError (a 500)."""
    opening, closing = ("[", "]") if shape == "array" else ('{"a":', "}")
    nested = opening * depth + ("1" if shape == "object" else "") + closing * depth
    for body in (nested, json.dumps(run_payload())[:-1] + f', "client": {nested}}}'):
        response = post(api, body)
        assert response.status_code == 400, response.content[:200]
        assert response.json()["detail"]
    assert AutomationRun.objects.count() == 0


def test_started_by_that_lower_casing_lengthens_past_the_column_is_400(api, run_payload):
    """Lower-casing "İ" gives two characters: a valid 188-character e-mail became 374, which
    PostgreSQL refused (a 500); SQLite stored it silently."""
    email = "a@" + ".".join(["İ" * 60] * 3) + ".com"
    assert len(email) <= 254 < len(email.lower())
    response = post(api, json.dumps(run_payload(started_by=email)))
    assert response.status_code == 400, response.content
    assert response.json()["errors"]["started_by"]
    assert AutomationRun.objects.count() == 0


def test_started_by_is_still_stored_lower_cased(api, run_payload):
    response = post(api, json.dumps(run_payload(started_by=" John.Doe@MSP.example ")))
    assert response.status_code == 201
    assert response.json()["started_by"] == "john.doe@msp.example"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/automation-runs/%C2%84/",  # a run id the route refuses (found by the fuzzer)
        "/api/v1/automation-runs/a%2Fb/",
        "/api/v1/nothing-here/",
        "/api/",
    ],
)
def test_unknown_api_urls_answer_json_404(api, path):
    response = api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Not found."}


def test_other_urls_keep_djangos_html_404(client):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


def test_server_errors_answer_json_under_the_api():
    api_response = server_error(RequestFactory().get("/api/v1/time-entries/"))
    assert api_response.status_code == 500
    assert json.loads(api_response.content) == {"detail": "Server error."}
    page = server_error(RequestFactory().get("/admin/"))
    assert page.status_code == 500
    assert page["Content-Type"].startswith("text/html")
    assert page_not_found(RequestFactory().get("/x/"), Exception()).status_code == 404
