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


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def _ingest_throttle(clock, monkeypatch, rate: str):
    from django.core.cache import cache
    from rest_framework.settings import api_settings

    from timelogging.api.throttles import IngestThrottle

    monkeypatch.setitem(api_settings.DEFAULT_THROTTLE_RATES, "ingest", rate)
    cache.clear()
    throttle = IngestThrottle()
    throttle.timer = clock
    return throttle


def test_a_key_may_send_its_rate_at_once_then_at_the_rate(monkeypatch, tenant):
    """n/period: a bucket of n refilled at n per period; the refused request costs nothing."""
    from types import SimpleNamespace

    key, _ = TenantAPIKey.objects.create_key(tenant=tenant, name="bucket")
    request = SimpleNamespace(method="POST", auth=key)
    clock = _Clock()
    throttle = _ingest_throttle(clock, monkeypatch, "6/minute")
    assert [throttle.allow_request(request, None) for _ in range(7)] == [True] * 6 + [False]
    assert throttle.wait() == pytest.approx(10.0)  # one request back every 60 / 6 s
    clock.now += 9.9
    assert throttle.allow_request(request, None) is False
    assert throttle.wait() == pytest.approx(0.1)
    clock.now += 0.1
    assert throttle.allow_request(request, None) is True
    assert throttle.allow_request(request, None) is False
    # A quiet minute fills the bucket again, and no more than that.
    clock.now += 600
    assert [throttle.allow_request(request, None) for _ in range(7)] == [True] * 6 + [False]


def test_the_throttle_keeps_one_number_per_key_whatever_the_rate(monkeypatch, tenant):
    """DRF's SimpleRateThrottle kept every request's time of the last period and copied the
    list through the cache on each request (thousands at a high rate)."""
    from types import SimpleNamespace

    from django.core.cache import cache

    key, _ = TenantAPIKey.objects.create_key(tenant=tenant, name="state")
    request = SimpleNamespace(method="POST", auth=key)
    clock = _Clock()
    throttle = _ingest_throttle(clock, monkeypatch, "1000000/minute")
    for _ in range(5000):
        assert throttle.allow_request(request, None)
        clock.now += 0.001
    assert isinstance(cache.get(throttle.key), float)


def test_a_rate_of_zero_refuses_everything(monkeypatch, tenant):
    from types import SimpleNamespace

    key, _ = TenantAPIKey.objects.create_key(tenant=tenant, name="closed")
    throttle = _ingest_throttle(_Clock(), monkeypatch, "0/hour")
    assert throttle.allow_request(SimpleNamespace(method="POST", auth=key), None) is False
    assert throttle.wait() == 3600
