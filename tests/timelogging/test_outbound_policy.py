"""The outbound policy seen by staff and by the worker (issue 9, finding 2): a refused address
is a form error when saving, a "not connected" on Test connection, and a configuration
problem (the connection paused, the reason shown) when posting."""

from __future__ import annotations

import pytest

from tests.factories import AutomationRunFactory, PSAConnectionFactory, TimeEntryFactory
from tests.timelogging.admin_support import admin_url, changeform_data, form_errors
from timelogging.models import PSAConnection
from timelogging.services.connections import connection_test
from timelogging.tasks import post_time_entry

pytestmark = pytest.mark.django_db

CW = {
    "vendor": "connectwise",
    "name": "Main PSA",
    "is_active": "on",
    "company_id": "acme",
    "public_key": "pub-123",
    "private_key": "Private-Key-0001",
    "max_concurrency": "3",
}


@pytest.fixture
def production_policy(settings):
    """No network allowed beyond the public internet (DEBUG off, no sandbox)."""
    settings.PIADESK_PSA_ALLOWED_NETWORKS = []


@pytest.mark.parametrize(
    ("site_url", "said"),
    [
        ("https://169.254.169.254", "cloud metadata"),
        ("https://10.0.0.1", "private address"),
        ("https://192.168.1.1", "private address"),
        ("https://[fd00::1]", "unique-local"),
        ("https://metadata.google.internal", "cloud metadata"),
        ("http://127.0.0.1:5432", "loopback"),
        ("https://[::ffff:127.0.0.1]", "loopback"),
    ],
)
def test_saving_a_refused_address_is_an_error_on_its_field(
    admin_client, tenant, production_policy, site_url, said
):
    response = admin_client.post(
        admin_url(PSAConnection, "add"), {**CW, "tenant": tenant.pk, "site_url": site_url}
    )
    assert response.status_code == 200
    [message] = form_errors(response)["site_url"]
    assert said in message and "PIADESK_PSA_ALLOWED_NETWORKS" in message
    assert not PSAConnection.objects.exists()


def test_localhost_is_refused_by_what_it_resolves_to(admin_client, tenant, production_policy):
    response = admin_client.post(
        admin_url(PSAConnection, "add"),
        {**CW, "tenant": tenant.pk, "site_url": "http://localhost:6379"},
    )
    assert "loopback" in form_errors(response)["site_url"][0]


def test_an_allowed_network_may_be_saved(admin_client, tenant, settings):
    settings.PIADESK_PSA_ALLOWED_NETWORKS = ["10.20.0.0/16"]
    response = admin_client.post(
        admin_url(PSAConnection, "add"),
        {**CW, "tenant": tenant.pk, "site_url": "https://10.20.0.5"},
    )
    assert response.status_code == 302, form_errors(response)


def test_every_address_field_of_every_vendor_is_checked(admin_client, tenant, production_policy):
    response = admin_client.get(admin_url(PSAConnection, "add") + "?vendor=halopsa")
    data = {
        "tenant": tenant.pk,
        "vendor": "halopsa",
        "name": "Halo",
        "is_active": "on",
        "auth_url": "https://10.1.1.1/auth",
        "resource_url": "https://[fe80::1]/api",
        "client_id": "cid",
        "client_secret": "secret-0001",
        "max_concurrency": "3",
    }
    response = admin_client.post(admin_url(PSAConnection, "add") + "?vendor=halopsa", data)
    errors = form_errors(response)
    assert "private address" in errors["auth_url"][0]
    assert "link-local" in errors["resource_url"][0]

    data = {
        "tenant": tenant.pk,
        "vendor": "autotask",
        "name": "AT",
        "is_active": "on",
        "api_username": "api@acme.example",
        "integration_code": "code-0001",
        "secret": "secret-0001",
        "discovery_url": "https://100.64.1.1/",
        "max_concurrency": "3",
    }
    response = admin_client.post(admin_url(PSAConnection, "add") + "?vendor=autotask", data)
    assert "carrier-grade NAT" in form_errors(response)["discovery_url"][0]


def test_the_change_page_refuses_a_move_to_a_refused_address(admin_client, production_policy):
    connection = PSAConnectionFactory()
    page = admin_client.get(admin_url(connection, "change"))
    response = admin_client.post(
        admin_url(connection, "change"),
        changeform_data(page, site_url="https://10.0.0.1", private_key="typed-again-01"),
    )
    assert "private address" in form_errors(response)["site_url"][0]


def test_test_connection_to_a_stored_refused_address_sends_nothing(production_policy):
    # Saved before the policy existed (or by hand in the database).
    connection = PSAConnectionFactory(
        settings={"site_url": "https://169.254.169.254", "company_id": "acme", "public_key": "p"}
    )
    result = connection_test(connection=connection)
    assert not result.ok
    assert "cloud metadata" in result.message


def test_posting_to_a_refused_address_pauses_the_connection(tenant, production_policy):
    connection = PSAConnectionFactory(
        tenant=tenant,
        settings={"site_url": "https://10.0.0.1", "company_id": "acme", "public_key": "p"},
    )
    tenant.log_as = "specified"
    tenant.save()
    run = AutomationRunFactory(tenant=tenant, ticket_id="1001")
    entry = TimeEntryFactory(run=run, log_as="specified", psa_user_ref="timelogging")

    post_time_entry(entry.pk)

    entry.refresh_from_db()
    assert (entry.status, entry.error_class) == ("held", "configuration")
    assert "does not connect to 10.0.0.1" in entry.error
    connection.refresh_from_db()
    assert connection.paused_at is not None
    assert "private address" in connection.pause_reason
    assert "PIADESK_PSA_ALLOWED_NETWORKS" in connection.pause_reason


# --- what Test connection shows of an unexpected server's answer ------------------------------
BANNER = "-ERR internal-banner redis_version:7.2.4 role:master"


@pytest.mark.parametrize("status", [400, 418, 422])
def test_test_connection_shows_no_body_of_an_unexpected_connectwise_answer(status):
    from tests.timelogging.psa_mocks import API, connectwise

    connection = PSAConnectionFactory()
    with connectwise() as psa:
        psa.get(f"{API}system/info", status=status, body=BANNER, content_type="text/plain")
        result = connection_test(connection=connection)
    assert not result.ok
    assert str(status) in result.message
    assert "internal-banner" not in result.message


@pytest.mark.parametrize("status", [400, 418])
@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ('{"role": "master", "banner": "internal-banner"}', "application/json"),
        ("<html><title>internal-banner</title></html>", "text/html"),
    ],
)
def test_test_connection_shows_no_body_of_an_unexpected_halopsa_answer(status, body, content_type):
    import responses

    connection = PSAConnectionFactory(
        vendor="halopsa",
        settings={
            "auth_url": "https://halo.example.com/auth",
            "resource_url": "https://halo.example.com/api",
            "client_id": "cid",
        },
        secrets={"client_secret": "Halo-Secret-0001"},
    )
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.post(
            "https://halo.example.com/auth/token",
            json={"access_token": "tok", "token_type": "Bearer", "expires_in": 3600},
        )
        mock.get(
            "https://halo.example.com/api/Agent/me",
            status=status,
            body=body,
            content_type=content_type,
        )
        result = connection_test(connection=connection)
    assert not result.ok
    assert str(status) in result.message
    assert "internal-banner" not in result.message


@pytest.fixture
def resolver(monkeypatch):
    """DNS answers by name, and for each lookup whether a database transaction was open."""
    import socket

    from django.db import connection

    from psa import outbound

    answers = {"psa.example.com": "93.184.215.14", "inside.example.com": "10.1.2.3"}
    looked_up = []  # (name, whether a transaction was open)

    def getaddrinfo(host, port, *args):
        looked_up.append((host, connection.in_atomic_block))
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (answers[host], port))]

    monkeypatch.setattr(outbound, "getaddrinfo", getaddrinfo)
    return looked_up


@pytest.mark.django_db(transaction=True)
def test_the_save_page_resolves_addresses_before_its_transaction(
    admin_client, tenant, production_policy, resolver
):
    # Django's admin validates and saves in one transaction: a resolver that takes seconds
    # must not hold it (and the connection row) open. Every lookup happens before it begins.
    response = admin_client.post(
        admin_url(PSAConnection, "add"),
        {**CW, "tenant": tenant.pk, "site_url": "https://psa.example.com"},
    )
    assert response.status_code == 302, form_errors(response)
    assert PSAConnection.objects.get().settings["site_url"] == "https://psa.example.com"
    assert resolver == [("psa.example.com", False)]

    # The same answers still refuse a name that resolves inside the network.
    url = admin_url(PSAConnection.objects.get(), "change")
    data = changeform_data(
        admin_client.get(url), site_url="https://inside.example.com", private_key="Private-Key-2"
    )
    response = admin_client.post(url, data)
    assert "it resolves to 10.1.2.3" in form_errors(response)["site_url"][0]
    assert resolver[1:] == [("inside.example.com", False)]
