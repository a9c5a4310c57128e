"""Fixtures for the sandbox tests: a seeded ConnectWise account and an authenticated caller."""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

import pytest
from django.utils import timezone

from psa.sandbox.seed import DEMO_PRIVATE_KEY, DEMO_PUBLIC_KEY, seed_connectwise

SITE = "/sandbox/connectwise"
API = f"{SITE}/v2025_1/apis/3.0/"


def auth_headers(
    company: str = "demo",
    public_key: str = DEMO_PUBLIC_KEY,
    private_key: str = DEMO_PRIVATE_KEY,
    client_id: str | None = "11111111-2222-3333-4444-555555555555",
) -> dict[str, str]:
    token = base64.b64encode(f"{company}+{public_key}:{private_key}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}
    if client_id is not None:
        headers["clientId"] = client_id
    return headers


def entry_body(**overrides: Any) -> dict[str, Any]:
    """A valid ConnectWise time entry: 20 minutes on ticket 1001, ending ten minutes ago."""
    end = timezone.now().replace(microsecond=0) - dt.timedelta(minutes=10)
    body = {
        "chargeToId": 1001,
        "chargeToType": "ServiceTicket",
        "member": {"identifier": "jdoe"},
        "timeStart": (end - dt.timedelta(minutes=20)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "timeEnd": end.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "notes": "Reset the password.\nAutomation: Password reset\npiadesk-run: run-abc",
        "addToInternalAnalysisFlag": True,
        "emailResourceFlag": False,
        "emailContactFlag": False,
        "emailCcFlag": False,
    }
    body.update(overrides)
    return body


class ConnectWiseCaller:
    """The Django test client, speaking to the sandbox's API with valid credentials."""

    def __init__(self, client, headers: dict[str, str]) -> None:
        self.client = client
        self.headers = headers

    def get(self, path: str, params: dict[str, Any] | None = None, **kwargs: Any):
        return self.client.get(API + path, params or {}, headers=self.headers, **kwargs)

    def post(self, path: str, body: Any):
        data = body if isinstance(body, str | bytes) else json.dumps(body)
        return self.client.post(
            API + path, data=data, content_type="application/json", headers=self.headers
        )


@pytest.fixture
def account(db):
    return seed_connectwise()


@pytest.fixture
def cw(client, account) -> ConnectWiseCaller:
    return ConnectWiseCaller(client, auth_headers())
