"""A connection's state says what its last test of the stored settings found (issue 11): after a
failed "Test connection" it is no longer "Healthy" until a later test passes or an entry is
posted; a test of values typed and not saved changes nothing. Tests are recorded in the
configuration/operations history.

ConnectWise is mocked at the network edge (tests/timelogging/psa_mocks.py).
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import formats, timezone

from tests.factories import PSAConnectionFactory, TimeEntryFactory
from tests.timelogging.admin_support import admin_url, changeform_data, messages_text
from tests.timelogging.psa_mocks import API, connectwise
from timelogging.models import ConfigChange, PSAConnection
from timelogging.services.connections import connection_test
from timelogging.services.delivery import connection_pause
from timelogging.services.posting import entry_post

pytestmark = pytest.mark.django_db

REFUSED_KEYS = {"message": "nope"}  # ConnectWise's 401: "rejected the API keys"


@pytest.fixture
def connection(tenant):
    return PSAConnectionFactory(tenant=tenant, name="Acme CW")


def when(moment) -> str:
    return formats.date_format(timezone.localtime(moment), "DATETIME_FORMAT")


def press_test(admin_client, connection, *, ok: bool):
    """The connection page's "Test connection" (a bare POST: the stored settings)."""
    with connectwise() as psa:
        if ok:
            psa.get(f"{API}system/info", json={"version": "v2025.1"})
        else:
            psa.get(f"{API}system/info", status=401, json=REFUSED_KEYS)
        admin_client.post(reverse("admin:timelogging_psaconnection_test", args=[connection.pk]))
    connection.refresh_from_db()


def test_a_failed_test_is_the_connections_state_until_a_later_test_passes(admin_client, connection):
    press_test(admin_client, connection, ok=False)
    assert connection.last_test_result == PSAConnection.TestResult.FAILED
    assert "ConnectWise rejected the API keys (401)" in connection.last_test_message
    failed = f"Last test failed {when(connection.last_test_at)}: ConnectWise rejected the API keys"
    page = admin_client.get(admin_url(connection, "change")).content.decode()
    assert failed in page
    listing = admin_client.get(admin_url(PSAConnection, "changelist")).content.decode()
    assert failed in listing
    assert ">Healthy<" not in listing

    press_test(admin_client, connection, ok=True)
    assert connection.last_test_result == PSAConnection.TestResult.PASSED
    page = admin_client.get(admin_url(connection, "change")).content.decode()
    assert f"Healthy (last test passed {when(connection.last_test_at)})" in page
    assert "Last test failed" not in page


def test_an_entry_posted_after_a_failed_test_makes_it_healthy_again(admin_client, connection):
    press_test(admin_client, connection, ok=False)
    failed_at = connection.last_test_at
    entry = TimeEntryFactory(tenant=connection.tenant, log_as="specified", psa_user_ref="jdoe")
    with connectwise() as psa:
        psa.post(f"{API}time/entries", json={"id": 9001}, status=201)
        assert entry_post(entry_id=entry.pk) == "posted"
    connection.refresh_from_db()
    assert connection.last_test_result == PSAConnection.TestResult.POSTED_SINCE
    page = admin_client.get(admin_url(connection, "change")).content.decode()
    assert f"Healthy (an entry was posted after the test that failed {when(failed_at)})" in page


def test_a_post_leaves_a_passed_test_alone(connection):
    PSAConnection.objects.filter(pk=connection.pk).update(
        last_test_result=PSAConnection.TestResult.PASSED, last_test_at=timezone.now()
    )
    entry = TimeEntryFactory(tenant=connection.tenant, log_as="specified", psa_user_ref="jdoe")
    with connectwise() as psa:
        psa.post(f"{API}time/entries", json={"id": 9002}, status=201)
        entry_post(entry_id=entry.pk)
    connection.refresh_from_db()
    assert connection.last_test_result == PSAConnection.TestResult.PASSED


def test_a_test_of_typed_values_says_so_and_changes_nothing(admin_client, connection):
    press_test(admin_client, connection, ok=False)
    before = (connection.last_test_at, connection.last_test_result, connection.last_test_message)
    page = admin_client.get(admin_url(connection, "change"))
    data = changeform_data(page, private_key="typed-private-key", _test_connection="1")
    with connectwise() as psa:
        psa.get(f"{API}system/info", json={"version": "v2025.1"})
        response = admin_client.post(
            reverse("admin:timelogging_psaconnection_test", args=[connection.pk]), data
        )
    [message] = [m for m in messages_text(response) if "Connected" in m]
    assert message.endswith(
        "(as typed, not saved: the connection's state still shows the last test of its saved "
        "settings)"
    )
    connection.refresh_from_db()
    assert (
        connection.last_test_at,
        connection.last_test_result,
        connection.last_test_message,
    ) == before
    assert ConfigChange.objects.filter(additional_data__operation="test").count() == 1


def test_each_test_of_the_stored_connection_is_in_the_history(admin_client, connection):
    press_test(admin_client, connection, ok=False)
    press_test(admin_client, connection, ok=True)
    rows = list(
        ConfigChange.objects.filter(
            object_pk=str(connection.pk), additional_data__operation="test"
        ).order_by("timestamp")
    )
    assert len(rows) == 2
    assert rows[0].actor.username == "admin"
    assert rows[0].changes["last_test_result"] == ["", "failed"]
    assert rows[1].changes["last_test_result"] == ["failed", "passed"]
    assert "ConnectWise rejected the API keys" in rows[0].changes["last_test_message"][1]
    history = admin_client.get(admin_url(ConfigChange, "changelist")).content.decode()
    assert "Tested" in history


def test_the_service_records_only_when_asked_for_the_stored_connection(connection):
    with connectwise() as psa:
        psa.get(f"{API}system/info", json={"version": "v2025.1"})
        connection_test(connection=connection, settings=dict(connection.settings), secrets={})
    connection.refresh_from_db()
    assert connection.last_test_at is None and connection.last_test_result == ""
    with connectwise() as psa:
        psa.get(f"{API}system/info", json={"version": "v2025.1"})
        connection_test(connection=connection)
    connection.refresh_from_db()
    assert connection.last_test_result == PSAConnection.TestResult.PASSED
    # A test changes no configuration: the backends' caches keyed on it stay valid.
    assert not ConfigChange.objects.filter(
        object_pk=str(connection.pk), changes__has_key="updated_at"
    ).exists()


def test_a_paused_connection_says_both(admin_client, connection):
    connection_pause(connection_id=connection.pk, reason="Autotask refused: enable Proxy.")
    press_test(admin_client, connection, ok=False)
    connection.refresh_from_db()
    listing = admin_client.get(admin_url(PSAConnection, "changelist")).content.decode()
    assert f"Paused since {when(connection.paused_at)}" in listing
    page = admin_client.get(admin_url(connection, "change")).content.decode()
    assert (
        f"Paused since {when(connection.paused_at)}: Autotask refused: enable Proxy. "
        f"Last test failed {when(connection.last_test_at)}: ConnectWise rejected"
    ) in page


def test_the_list_action_records_each_test(admin_client, connection):
    with connectwise() as psa:
        psa.get(f"{API}system/info", status=401, json=REFUSED_KEYS)
        admin_client.post(
            admin_url(PSAConnection, "changelist"),
            {"action": "test_connections", "_selected_action": [connection.pk]},
        )
    connection.refresh_from_db()
    assert connection.last_test_result == PSAConnection.TestResult.FAILED


def test_the_tenant_pages_panel_shows_the_failed_test(admin_client, connection):
    tenant = connection.tenant
    with connectwise() as psa:
        psa.get(f"{API}system/info", status=401, json=REFUSED_KEYS)
        answer = admin_client.post(
            reverse("admin:tenant_test_connection", args=[tenant.pk]),
            HTTP_ACCEPT="application/json",
        ).json()
    assert answer["ok"] is False
    connection.refresh_from_db()
    assert connection.last_test_result == PSAConnection.TestResult.FAILED
    page = admin_client.get(admin_url(tenant, "change")).content.decode()
    assert 'class="psa-connection-state failed"' in page
    assert f"Last test failed {when(connection.last_test_at)}" in page
    assert ">Healthy<" not in page
