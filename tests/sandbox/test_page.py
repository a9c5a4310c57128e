"""The human page, the entries.json convenience, and the PIADESK_SANDBOX switch."""

from __future__ import annotations

import importlib

import pytest
from django.test import override_settings
from django.urls import clear_url_caches

from tests.sandbox.conftest import entry_body

pytestmark = pytest.mark.django_db


def test_the_page_lists_a_posted_entry_under_its_ticket(client, cw):
    body = entry_body(
        chargeToId=1002, member={"identifier": "asmith"}, notes="line one\nline <two>"
    )
    entry_id = cw.post("time/entries", body).json()["id"]

    response = client.get("/sandbox/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "<title>PSA sandbox</title>" in html
    ticket_1002 = html.index("Ticket #1002")
    ticket_1003 = html.index("Ticket #1003")
    notes = html.index("line one<br>line &lt;two&gt;")
    assert ticket_1002 < notes < ticket_1003
    assert f'<td class="num">{entry_id}</td>' in html
    assert body["timeStart"].replace("T", " ").rstrip("Z") in html
    assert "Alice Smith (asmith)" in html
    assert "gone@demo-msp.example" in html  # the members list
    assert "http://testserver/sandbox/connectwise" in html


def test_the_page_shows_newest_entries_first(client, cw):
    for run in ("older-run", "newer-run"):
        assert cw.post("time/entries", entry_body(notes=run)).status_code == 201

    html = client.get("/sandbox/").content.decode()

    assert html.index("newer-run") < html.index("older-run")


def test_the_page_without_accounts(client, db):
    response = client.get("/sandbox/")

    assert response.status_code == 200
    assert "seed_connectwise" in response.content.decode()


def test_entries_json(client, cw):
    body = entry_body()
    entry_id = cw.post("time/entries", body).json()["id"]

    response = client.get("/sandbox/connectwise/entries.json")

    assert response.status_code == 200
    assert response.json() == [
        {
            "id": entry_id,
            "company": "demo",
            "ticket": 1001,
            "member": "jdoe",
            "timeStart": body["timeStart"],
            "timeEnd": body["timeEnd"],
            "notes": body["notes"],
        }
    ]


@pytest.fixture
def sandbox_off():
    """piadesk's URLs as built with PIADESK_SANDBOX off; rebuilt as they were afterwards."""
    import piadesk.urls

    try:
        with override_settings(PIADESK_SANDBOX=False):
            importlib.reload(piadesk.urls)
            clear_url_caches()
            yield
    finally:
        importlib.reload(piadesk.urls)
        clear_url_caches()


def test_sandbox_urls_are_404_when_the_setting_is_off(client, account, sandbox_off):
    assert client.get("/sandbox/").status_code == 404
    assert client.get("/sandbox/connectwise/login/companyinfo/demo").status_code == 404
    assert client.get("/sandbox/connectwise/entries.json").status_code == 404


def test_sandbox_urls_are_back_after_the_switch_test(client, account):
    # Guards the fixture above: the reload must not leak into other tests.
    assert client.get("/sandbox/connectwise/login/companyinfo/demo").status_code == 200
