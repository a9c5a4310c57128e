"""A stored secret is only ever sent where it was typed for (issue 9, finding 1).

Changing a field that decides where the secrets go (an address, the ConnectWise company, the
Autotask API user, the Halo tenant) needs every secret typed again in the same save; "Test
connection" on an edited, unsaved form uses what is typed and refuses a new address with the
stored secrets.
"""

from __future__ import annotations

import base64

import pytest
from django.core.exceptions import ValidationError

from tests.factories import PSAConnectionFactory
from tests.timelogging.admin_support import admin_url, changeform_data, form_errors, messages_text
from tests.timelogging.psa_mocks import API, connectwise
from timelogging.crypto import decrypt_secrets
from timelogging.models import ConfigChange, PSAConnection
from timelogging.services.connections import connection_save, connection_validate

pytestmark = pytest.mark.django_db

PRIVATE_KEY = "s3cr3t-Pr1vate-KEY-0f-the-API-member"
ATTACKER = "https://attacker.example"

# vendor, its settings, its secrets, and the fields that decide where the secrets go
VENDORS = {
    "connectwise": (
        {"site_url": "https://cw.example.com", "company_id": "acme", "public_key": "pub"},
        {"private_key": PRIVATE_KEY},
        {"site_url": ATTACKER, "company_id": "other"},
    ),
    "autotask": (
        {"api_username": "api@acme.example", "discovery_url": "https://at.example.com/"},
        {"integration_code": "CODE-123456", "secret": "AT-Secret-987654"},
        {"discovery_url": ATTACKER + "/", "api_username": "evil@attacker.example"},
    ),
    "halopsa": (
        {
            "auth_url": "https://acme.halopsa.example/auth",
            "resource_url": "https://acme.halopsa.example/api",
            "halo_tenant": "acme",
            "client_id": "cid",
        },
        {"client_secret": "Halo-Client-Secret-555"},
        {
            "auth_url": ATTACKER + "/auth",
            "resource_url": ATTACKER + "/api",
            "halo_tenant": "evil",
        },
    ),
}
CASES = [
    (vendor, field, value)
    for vendor, (_, _, moves) in VENDORS.items()
    for field, value in moves.items()
]


def _connection(vendor: str) -> PSAConnection:
    settings, secrets, _ = VENDORS[vendor]
    connection = PSAConnectionFactory(vendor=vendor, settings=dict(settings), secrets=dict(secrets))
    assert isinstance(connection, PSAConnection)
    return connection


@pytest.mark.parametrize(("vendor", "field", "value"), CASES)
def test_a_new_destination_with_the_stored_secrets_is_refused(vendor, field, value):
    connection = _connection(vendor)
    settings, secrets, _ = VENDORS[vendor]
    moved = {**settings, field: value}

    errors = connection_validate(connection=connection, vendor=vendor, settings=moved, secrets={})

    assert set(errors) == set(secrets), errors
    for message in errors.values():
        assert "again" in message
    with pytest.raises(ValidationError):
        connection_save(
            connection=connection,
            tenant=connection.tenant,
            vendor=vendor,
            settings=moved,
            secrets={},
        )
    connection.refresh_from_db()
    assert connection.settings == settings


@pytest.mark.parametrize(("vendor", "field", "value"), CASES)
def test_one_secret_typed_is_not_enough(vendor, field, value):
    connection = _connection(vendor)
    settings, secrets, _ = VENDORS[vendor]
    first = next(iter(secrets))
    errors = connection_validate(
        connection=connection,
        vendor=vendor,
        settings={**settings, field: value},
        secrets={first: "typed-again-0001"},
    )
    assert set(errors) == set(secrets) - {first}


@pytest.mark.parametrize("vendor", list(VENDORS))
def test_a_new_destination_with_every_secret_typed_again_is_saved(vendor):
    connection = _connection(vendor)
    settings, secrets, moves = VENDORS[vendor]
    moved = {**settings, **moves}
    connection_save(
        connection=connection,
        tenant=connection.tenant,
        vendor=vendor,
        settings=moved,
        secrets={name: f"new-{name}-000" for name in secrets},
    )
    connection.refresh_from_db()
    assert decrypt_secrets(connection.secrets_encrypted) == {
        name: f"new-{name}-000" for name in secrets
    }


def test_an_unrelated_change_still_keeps_the_stored_secret():
    connection = _connection("connectwise")
    settings, secrets, _ = VENDORS["connectwise"]
    assert not connection_validate(
        connection=connection,
        vendor="connectwise",
        settings={**settings, "public_key": "other-pub"},
        secrets={},
    )


# --- the admin page -----------------------------------------------------------------------
def test_the_form_says_next_to_the_secret_why_it_is_needed(admin_client):
    connection = _connection("connectwise")
    page = admin_client.get(admin_url(connection, "change"))
    # Said before saving, too: the help text of the secret.
    assert "type it again" in page.content.decode()

    response = admin_client.post(
        admin_url(connection, "change"), changeform_data(page, site_url=ATTACKER)
    )

    assert response.status_code == 200
    [message] = form_errors(response)["private_key"]
    assert "Site address" in message and "again" in message
    connection.refresh_from_db()
    assert connection.settings["site_url"] == "https://cw.example.com"


def test_retyped_secrets_with_a_new_address_are_recorded_as_credentials_changed(admin_client):
    connection = _connection("connectwise")
    page = admin_client.get(admin_url(connection, "change"))
    # The same secret typed again: it is now bound to another address, so the history says so.
    response = admin_client.post(
        admin_url(connection, "change"),
        changeform_data(page, site_url="https://cw2.example.com", private_key=PRIVATE_KEY),
    )
    assert response.status_code == 302, form_errors(response)
    change = ConfigChange.objects.filter(object_pk=str(connection.pk)).latest("timestamp")
    assert "secrets_encrypted" in change.changes
    history = admin_client.get(admin_url(ConfigChange, "changelist")).content.decode()
    assert "credentials changed" in history


# --- "Test connection" on an edited, unsaved form ---------------------------------------------
def _test_url(connection: PSAConnection) -> str:
    from django.urls import reverse

    return reverse("admin:timelogging_psaconnection_test", args=[connection.pk])


def test_testing_a_new_address_with_the_stored_secret_is_refused(admin_client):
    connection = _connection("connectwise")
    page = admin_client.get(admin_url(connection, "change"))
    data = changeform_data(page, site_url=ATTACKER, _test_connection="1")
    with connectwise() as psa:
        response = admin_client.post(_test_url(connection), data)
    assert not psa.calls  # nothing left for the new address
    assert response.status_code == 200
    assert "again" in form_errors(response)["private_key"][0]
    connection.refresh_from_db()
    assert connection.settings["site_url"] == "https://cw.example.com"


def test_testing_an_edited_form_uses_what_is_typed_and_saves_nothing(admin_client):
    connection = _connection("connectwise")
    page = admin_client.get(admin_url(connection, "change"))
    data = changeform_data(
        page, public_key="typed-pub", private_key="typed-private-key", _test_connection="1"
    )
    with connectwise() as psa:
        psa.get(f"{API}system/info", json={"version": "v2025.1"})
        response = admin_client.post(_test_url(connection), data)
    assert response.status_code == 200
    assert any("Connected to ConnectWise PSA" in m for m in messages_text(response))
    [info] = [c for c in psa.calls if c.request.url.endswith("system/info")]
    sent = base64.b64decode(info.request.headers["Authorization"].split()[1]).decode()
    assert sent == "acme+typed-pub:typed-private-key"
    # The page is shown again with what was typed, and nothing was saved.
    assert response.context["adminform"].form["public_key"].value() == "typed-pub"
    connection.refresh_from_db()
    assert connection.settings["public_key"] == "pub"
    assert decrypt_secrets(connection.secrets_encrypted) == {"private_key": PRIVATE_KEY}


def test_the_test_button_submits_the_change_form(admin_client):
    connection = _connection("connectwise")
    page = admin_client.get(admin_url(connection, "change")).content.decode()
    assert 'form="psaconnection_form"' in page
    assert f'formaction="{_test_url(connection)}"' in page
