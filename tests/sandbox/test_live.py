"""Over real HTTP: piadesk's own outgoing session against the sandbox on a live server."""

from __future__ import annotations

import pytest

from psa.http import PSASession
from psa.sandbox.models import SandboxTimeEntry
from psa.sandbox.seed import seed_connectwise
from tests.sandbox.conftest import auth_headers, entry_body


@pytest.mark.django_db(transaction=True)
def test_piadesk_session_posts_an_entry_over_http(live_server):
    seed_connectwise()
    site = f"{live_server.url}/sandbox/connectwise"
    session = PSASession(connect_timeout=5, read_timeout=10)

    info = session.request("GET", f"{site}/login/companyinfo/demo").json()
    created = session.request(
        "POST",
        f"{site}/{info['Codebase']}apis/3.0/time/entries",
        headers=auth_headers(),
        json_body=entry_body(),
    )
    listed = session.request(
        "GET",
        f"{site}/{info['Codebase']}apis/3.0/time/entries",
        headers=auth_headers(),
        params={"conditions": "chargeToId=1001", "pageSize": 1},
    )

    assert created.status == 201, created.text
    assert SandboxTimeEntry.objects.get().pk == created.json()["id"]
    assert [e["id"] for e in listed.json()] == [created.json()["id"]]
    assert "Link" not in listed.headers
