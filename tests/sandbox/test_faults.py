"""Fault injection: the failures piadesk's delivery must survive, on demand."""

from __future__ import annotations

import json

import pytest
import requests

from psa.sandbox.models import SandboxFaults, SandboxTimeEntry
from tests.sandbox.conftest import API, auth_headers, entry_body

pytestmark = pytest.mark.django_db


def set_faults(client, vendor="connectwise", **faults):
    return client.post(
        f"/sandbox/{vendor}/faults", json.dumps(faults), content_type="application/json"
    )


def test_faults_are_set_read_and_cleared(client):
    assert client.get("/sandbox/connectwise/faults").json()["error_rate"] == 0
    response = set_faults(client, error_rate=0.25, retry_after_seconds=7)
    assert response.status_code == 200
    assert response.json()["error_rate"] == 0.25
    assert SandboxFaults.objects.get(vendor="connectwise").retry_after_seconds == 7
    assert client.delete("/sandbox/connectwise/faults").json()["error_rate"] == 0
    assert not SandboxFaults.objects.exists()


@pytest.mark.parametrize(
    "faults",
    [{"error_rate": 2}, {"nope": 1}, {"timeout_seconds": -1}, {"error_rate": "x"}],
)
def test_bad_fault_settings_are_400(client, faults):
    assert set_faults(client, **faults).status_code == 400


def test_unknown_vendor_is_404(client):
    assert client.get("/sandbox/nowhere/faults").status_code == 404


def test_throttle_answers_429_with_retry_after(cw, client):
    set_faults(client, throttle_rate=1, retry_after_seconds=3)
    response = cw.get("system/info")
    assert response.status_code == 429
    assert response["Retry-After"] == "3"


def test_errors_before_store_store_nothing(cw, client):
    set_faults(client, error_rate=1)
    response = cw.post("time/entries", entry_body())
    assert response.status_code in (500, 502, 503)
    assert not SandboxTimeEntry.objects.exists()


def test_error_after_store_stores_the_entry_and_answers_502(cw, client):
    set_faults(client, error_after_store_rate=1)
    response = cw.post("time/entries", entry_body())
    assert response.status_code == 502
    assert SandboxTimeEntry.objects.count() == 1


def test_pages_and_conveniences_never_fail(client, account):
    set_faults(client, error_rate=1, throttle_rate=1)
    assert client.get("/sandbox/").status_code == 200
    assert client.get("/sandbox/connectwise/entries.json").status_code == 200


@pytest.mark.django_db(transaction=True)
def test_drop_after_store_closes_the_connection_over_real_http(live_server, account):
    SandboxFaults.objects.create(vendor="connectwise", drop_after_store_rate=1)
    with pytest.raises(requests.ConnectionError):
        requests.post(
            f"{live_server.url}{API}time/entries",
            json=entry_body(),
            headers=auth_headers(),
            timeout=10,
        )
    assert SandboxTimeEntry.objects.count() == 1
