"""API throttling per key (issue 9, finding 3): 429 with Retry-After and a JSON body."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from timelogging.models import TenantAPIKey

pytestmark = pytest.mark.django_db

RUNS = "/api/v1/automation-runs/"


@pytest.fixture
def rates(settings):
    def set_rates(ingest: str = "1000/minute", read: str = "1000/minute") -> None:
        settings.REST_FRAMEWORK = {
            **settings.REST_FRAMEWORK,
            "DEFAULT_THROTTLE_RATES": {"ingest": ingest, "read": read},
        }

    return set_rates


def client_for(tenant, name: str = "another") -> APIClient:
    _, key = TenantAPIKey.objects.create_key(tenant=tenant, name=name)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    return client


def test_reporting_beyond_the_rate_is_429_with_retry_after(api, run_payload, rates):
    rates(ingest="3/minute")
    for n in range(3):
        response = api.post(RUNS, run_payload(run_id=f"run-{n}"), format="json")
        assert response.status_code == 201
    response = api.post(RUNS, run_payload(run_id="run-4"), format="json")
    assert response.status_code == 429
    assert response["Content-Type"] == "application/json"
    assert 0 < int(response["Retry-After"]) <= 60
    assert "throttled" in response.json()["detail"].lower()


def test_the_rate_is_per_key(api, tenant, run_payload, rates):
    rates(ingest="1/minute")
    assert api.post(RUNS, run_payload(run_id="a"), format="json").status_code == 201
    assert api.post(RUNS, run_payload(run_id="b"), format="json").status_code == 429
    other = client_for(tenant)
    assert other.post(RUNS, run_payload(run_id="c"), format="json").status_code == 201


def test_reads_have_their_own_rate(api, run_payload, rates):
    rates(ingest="1/minute", read="2/minute")
    assert api.post(RUNS, run_payload(), format="json").status_code == 201
    assert api.get(RUNS).status_code == 200
    assert api.get("/api/v1/time-entries/").status_code == 200
    response = api.get(RUNS)
    assert response.status_code == 429 and "Retry-After" in response


def test_default_rates_are_settings():
    from piadesk import settings

    assert settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] == {
        "ingest": "600/minute",
        "read": "300/minute",
    }
