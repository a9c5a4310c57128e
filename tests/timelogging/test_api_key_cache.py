"""A verified API key is trusted by the process for PIADESK_API_CACHE_SECONDS
(timelogging/api/auth.py): a revoked key is refused within that time, never later."""

from __future__ import annotations

import hashlib
import json

import pytest

from timelogging.api import auth
from timelogging.models import TenantAPIKey

pytestmark = pytest.mark.django_db
URL = "/api/v1/automation-runs/"


@pytest.fixture
def clock(monkeypatch):
    """The clock auth.py reads, moved by the test instead of sleeping."""

    class Clock:
        now = 1000.0

        def advance(self, seconds: float) -> None:
            self.now += seconds

    c = Clock()
    monkeypatch.setattr(auth, "_monotonic", lambda: c.now)
    return c


@pytest.fixture
def report(api, run_payload):
    count = iter(range(1000))

    def post():
        payload = json.dumps(run_payload(run_id=f"run-{next(count)}"))
        return api.generic("POST", URL, payload, content_type="application/json").status_code

    return post


def test_a_revoked_key_is_refused_once_the_window_has_passed(report, clock, settings):
    settings.PIADESK_API_CACHE_SECONDS = 5
    assert report() == 201
    TenantAPIKey.objects.update(revoked=True)
    clock.advance(4.9)
    assert report() == 201  # trusted for the window: what the README promises, no more
    clock.advance(0.2)
    assert report() == 401
    assert report() == 401  # a refused key is never kept


def test_with_no_window_a_revoked_key_is_refused_at_once(report, clock, settings):
    settings.PIADESK_API_CACHE_SECONDS = 0
    assert report() == 201
    TenantAPIKey.objects.update(revoked=True)
    assert report() == 401


def test_the_key_is_kept_under_its_hash_never_itself(report, api_key, clock):
    assert report() == 201
    assert list(auth._verified) == [hashlib.sha256(api_key.encode()).hexdigest()]
    assert not any(api_key in repr(kept) for kept in auth._verified.items())


def test_a_wrong_secret_is_not_let_in_by_a_kept_prefix(report, api_key, run_payload, clock):
    from rest_framework.test import APIClient

    assert report() == 201
    prefix = api_key.split(".")[0]
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {prefix}.not-the-secret")
    payload = json.dumps(run_payload(run_id="other"))
    response = other.generic("POST", URL, payload, content_type="application/json")
    assert response.status_code == 401


def test_an_expiry_date_is_checked_on_every_request(report, clock):
    from django.utils import timezone

    assert report() == 201
    kept = next(iter(auth._verified.values()))[1]
    kept.expiry_date = timezone.now()  # as if it had been set and passed within the window
    assert report() == 401
