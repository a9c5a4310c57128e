from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _clear_cache():
    # The ingest's per-process catalogs and verified API keys too: a rolled-back test's tenant
    # id may come again (SQLite reuses ids), with rows that no longer exist.
    from timelogging.api.auth import clear_verified_keys
    from timelogging.services import ingest_cache

    cache.clear()
    ingest_cache.clear()
    clear_verified_keys()
    yield
    cache.clear()
    ingest_cache.clear()
    clear_verified_keys()


@pytest.fixture(autouse=True)
def _no_dns(monkeypatch):
    """The tests have no DNS: names other than localhost fail at once, as they would after a
    resolver timeout (the outbound policy resolves PSA addresses when a connection is saved).
    Tests of the policy fake the answers they need (tests/psa/test_outbound.py)."""
    import ipaddress
    import socket

    from psa import outbound

    real = outbound.getaddrinfo

    def resolve(host, *args):
        try:
            ipaddress.ip_address(str(host).split("%", 1)[0])
        except ValueError:
            if host != "localhost":
                raise socket.gaierror(socket.EAI_NONAME, "Name or service not known") from None
        return real(host, *args)

    monkeypatch.setattr(outbound, "getaddrinfo", resolve)


@pytest.fixture
def tenant(db):
    from tests.factories import TenantFactory

    return TenantFactory(name="Acme MSP")


@pytest.fixture
def api_key(tenant):
    from timelogging.models import TenantAPIKey

    _, key = TenantAPIKey.objects.create_key(tenant=tenant, name="automation service")
    return key


@pytest.fixture
def api(api_key):
    """A DRF test client authenticated with the tenant's API key."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key}")
    return client


@pytest.fixture
def run_payload():
    """A valid run report; tests change what they need."""
    import datetime as dt

    from django.utils import timezone

    started = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=30)

    def make(**overrides):
        payload = {
            "run_id": "run-0001",
            "automation": {"key": "reset-password", "name": "Reset password"},
            "client": {"key": "contoso", "name": "Contoso Ltd"},
            "ticket_id": "1001",
            "started_by": "john.doe@demo-msp.example",
            "started_at": started.isoformat().replace("+00:00", "Z"),
            "completed_at": (started + dt.timedelta(minutes=6, seconds=5))
            .isoformat()
            .replace("+00:00", "Z"),
            "outcome": "completed",
            "summary": "Reset the password of jane@contoso.example and e-mailed the ticket.",
        }
        payload.update(overrides)
        return payload

    return make
