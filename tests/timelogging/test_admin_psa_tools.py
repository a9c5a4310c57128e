"""Admin tools that talk to the tenant's PSA: "Test connection", the PSA user pickers (JSON
endpoints, page wiring, cache) and the check of a chosen PSA user before saving.

ConnectWise is mocked at the network edge with ``responses`` (tests/timelogging/psa_mocks.py);
the sandboxes of all three vendors are called over real HTTP on ``live_server``.
"""

from __future__ import annotations

import json

import pytest
import requests
from django.contrib.auth.models import Permission, User
from django.contrib.messages import ERROR, SUCCESS, WARNING
from django.test import Client as DjangoClient
from django.urls import reverse
from django.utils import timezone

from psa.connectwise import ConnectWiseBackend
from tests.factories import PSAConnectionFactory, TenantFactory
from tests.psa.conftest import FakeCache
from tests.timelogging.admin_support import (
    admin_url,
    changeform_data,
    messages_text,
)
from tests.timelogging.psa_mocks import API, SITE, calls_to, connectwise, member
from timelogging.management.sandbox import sandbox_connection_save
from timelogging.models import (
    PSAConnection,
    PSAUserMapping,
    RequestBudget,
    StaffProfile,
    Tenant,
)
from timelogging.services.connections import connection_save, connection_test
from timelogging.services.delivery import connection_pause
from timelogging.services.psa_users import psa_users_search

pytestmark = pytest.mark.django_db

PRIVATE_KEY = "Pr1vate-KEY-of-the-API-member-0042"
MEMBERS = (
    member("jdoe", "John", "Doe", "john.doe@msp.example", id=101),
    member("asmith", "Alice", "Smith", "alice.smith@msp.example", id=102),
    member("timelogging", "Time", "Logging", "timelogging@msp.example", id=103),
)
VENDORS = ["connectwise", "autotask", "halopsa"]
# What requests raises when nothing listens (psa.http: nothing was sent, retryable).
REFUSED = requests.ConnectionError("Failed to establish a new connection: Connection refused")


@pytest.fixture
def connection(tenant):
    return PSAConnectionFactory(tenant=tenant, secrets={"private_key": PRIVATE_KEY})


def staff(*codenames: str, tenant: Tenant) -> User:
    """A staff member of ``tenant`` with just these permissions."""
    user = User.objects.create_user("staffer", password="x", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames))
    StaffProfile.objects.create(user=user, tenant=tenant)
    return user


def button_url(connection: PSAConnection) -> str:
    return reverse("admin:timelogging_psaconnection_test", args=[connection.pk])


def tenant_users_url(tenant: Tenant) -> str:
    return reverse("admin:timelogging_tenant_psa_users", args=[tenant.pk])


def connection_users_url(connection: PSAConnection) -> str:
    return reverse("admin:timelogging_psaconnection_psa_users", args=[connection.pk])


# --- connection_test (the service) ------------------------------------------------------------
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("vendor", VENDORS)
def test_connection_test_reads_each_sandbox_over_http(live_server, vendor):
    tenant = TenantFactory()
    connection = sandbox_connection_save(tenant=tenant, vendor=vendor, base_url=live_server.url)

    result = connection_test(connection=connection)

    assert result.ok, result.message
    expected = {
        "connectwise": "Connected to ConnectWise PSA",
        "autotask": "Connected to Autotask (zone Sandbox)",
        "halopsa": "Connected to HaloPSA as",
    }[vendor]
    assert result.message.startswith(expected)
    # Admin look-ups count against the connection's request budget like the worker's.
    assert RequestBudget.objects.get(connection=connection).used >= 1


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(
    ("vendor", "secret", "said"),
    [
        ("connectwise", "private_key", "ConnectWise rejected the API keys (401)"),
        ("autotask", "secret", "Autotask rejected the API user's credentials (401)"),
        ("halopsa", "client_secret", "HaloPSA refused the API credentials (401)"),
    ],
)
def test_connection_test_gives_each_sandboxs_refusal_without_the_secret(
    live_server, vendor, secret, said
):
    tenant = TenantFactory()
    connection = sandbox_connection_save(tenant=tenant, vendor=vendor, base_url=live_server.url)
    wrong = "Wrong-Secret-Typed-By-Staff-123"
    connection_save(
        connection=connection,
        tenant=tenant,
        vendor=vendor,
        settings=connection.settings,
        secrets={secret: wrong},
    )

    result = connection_test(connection=connection)

    assert not result.ok
    assert said in result.message
    assert wrong not in result.message


def test_connection_test_masks_a_secret_the_psa_echoes(connection):
    with connectwise() as psa:
        psa.get(
            f"{API}system/info",
            status=400,
            json={"code": "InvalidObject", "message": f"bad key {PRIVATE_KEY}"},
        )
        result = connection_test(connection=connection)
    assert not result.ok
    assert result.message.startswith("ConnectWise refused the request")
    assert PRIVATE_KEY not in result.message
    assert "***" in result.message


def test_connection_test_of_an_unreachable_psa(connection):
    with connectwise() as psa:
        psa.replace("GET", f"{SITE}/login/companyinfo/acme", body=REFUSED)
        result = connection_test(connection=connection)
    assert not result.ok
    assert "Could not connect to the PSA" in result.message


def test_connection_test_with_undecryptable_secrets(connection):
    from cryptography.fernet import Fernet

    connection.secrets_encrypted = Fernet(Fernet.generate_key()).encrypt(b"{}").decode()
    connection.save()
    result = connection_test(connection=connection)
    assert not result.ok
    assert "cannot be decrypted" in result.message


def test_connection_test_when_the_request_budget_is_used_up(connection):
    connection.requests_per_hour = 60  # one request a minute
    connection.save()
    now = timezone.now()
    RequestBudget.objects.create(
        connection=connection, window_start=now.replace(second=0, microsecond=0), used=1
    )
    with connectwise() as psa:
        result = connection_test(connection=connection)
    assert not psa.calls
    assert not result.ok
    assert "request budget for this connection is used up" in result.message


def test_connection_test_survives_a_backend_bug(connection, monkeypatch):
    def broken(self):
        raise KeyError("oops")

    monkeypatch.setattr(ConnectWiseBackend, "check_connection", broken)
    result = connection_test(connection=connection)
    assert not result.ok
    assert "failed unexpectedly" in result.message


def test_connection_test_of_a_paused_connection_says_to_resume(connection):
    connection_pause(connection_id=connection.pk, reason="Paused by staff.")
    connection.refresh_from_db()
    with connectwise() as psa:
        psa.get(f"{API}system/info", json={"version": "v2025.1"})
        result = connection_test(connection=connection)
    assert result.ok
    assert result.message.startswith("Connected to ConnectWise PSA v2025.1 (company acme)")
    assert "still paused: resume it" in result.message


# --- "Test connection" in the admin -------------------------------------------------------------
def test_change_page_has_a_test_button_posting_with_csrf(admin_client, connection):
    page = admin_client.get(admin_url(connection, "change")).content.decode()
    assert f'formaction="{button_url(connection)}"' in page
    assert "Test connection" in page
    assert "csrfmiddlewaretoken" in page


def test_button_reports_success(admin_client, connection):
    with connectwise() as psa:
        psa.get(f"{API}system/info", json={"version": "v2025.1"})
        response = admin_client.post(button_url(connection))
    assert response.status_code == 302
    assert response.url == admin_url(connection, "change")
    page = admin_client.get(response.url)
    [message] = [m for m in page.context["messages"] if m.level == SUCCESS]
    assert "Connected to ConnectWise PSA v2025.1 (company acme)" in str(message)


def test_button_reports_the_psas_error(admin_client, connection):
    with connectwise() as psa:
        psa.get(f"{API}system/info", status=401, json={"message": "nope"})
        response = admin_client.post(button_url(connection), follow=True)
    assert response.status_code == 200
    [message] = [m for m in response.context["messages"] if m.level == ERROR]
    assert "failed: ConnectWise rejected the API keys (401)" in str(message)
    assert PRIVATE_KEY not in response.content.decode()


def test_button_is_post_only(admin_client, connection):
    with connectwise() as psa:
        assert admin_client.get(button_url(connection)).status_code == 405
    assert not psa.calls


def test_button_needs_a_csrf_token(connection):
    client = DjangoClient(enforce_csrf_checks=True)
    client.force_login(User.objects.create_superuser("root", password="x"))
    with connectwise() as psa:
        assert client.post(button_url(connection)).status_code == 403
    assert not psa.calls


def test_button_needs_change_permission(client, connection):
    client.force_login(staff("view_psaconnection", tenant=connection.tenant))
    page = client.get(admin_url(connection, "change")).content.decode()
    assert "Test connection" not in page
    with connectwise() as psa:
        assert client.post(button_url(connection)).status_code == 403
    assert not psa.calls


def test_button_for_an_unknown_connection(admin_client):
    url = reverse("admin:timelogging_psaconnection_test", args=[999999])
    response = admin_client.post(url, follow=True)
    assert response.status_code == 200
    assert any("doesn’t exist" in m for m in messages_text(response))


def test_action_tests_the_selected_connections(admin_client, connection):
    other = PSAConnectionFactory(is_active=False, tenant=connection.tenant, name="Old")
    with connectwise() as psa:
        psa.get(f"{API}system/info", json={"version": "v2025.1"})
        response = admin_client.post(
            admin_url(PSAConnection, "changelist"),
            {"action": "test_connections", "_selected_action": [connection.pk, other.pk]},
            follow=True,
        )
    texts = messages_text(response)
    assert sum("Connected to ConnectWise PSA" in t for t in texts) == 2
    assert any(t.startswith("“Old”: Connected") for t in texts)


def test_action_refuses_too_many_at_once(admin_client, tenant):
    ids = [PSAConnectionFactory(tenant=tenant, is_active=False).pk for _ in range(11)]
    with connectwise() as psa:
        response = admin_client.post(
            admin_url(PSAConnection, "changelist"),
            {"action": "test_connections", "_selected_action": ids},
            follow=True,
        )
    assert not psa.calls
    assert "Select at most 10 connections to test at once." in messages_text(response)


def test_paused_connection_page_says_why_and_what_to_do(admin_client, connection):
    connection_pause(connection_id=connection.pk, reason="Autotask refused: enable Proxy.")
    response = admin_client.get(admin_url(connection, "change"))
    [warning] = [m for m in response.context["messages"] if m.level == WARNING]
    assert "This connection is paused" in str(warning)
    assert "Autotask refused: enable Proxy." in str(warning)
    assert "Resume selected connections" in str(warning)


# --- the pickers' JSON ----------------------------------------------------------------------
def test_tenant_picker_lists_the_active_connections_users(admin_client, tenant, connection):
    with connectwise(*MEMBERS):
        response = admin_client.get(tenant_users_url(tenant))
    assert response.status_code == 200
    assert response.json() == [
        {"ref": "asmith", "name": "Alice Smith", "email": "alice.smith@msp.example"},
        {"ref": "jdoe", "name": "John Doe", "email": "john.doe@msp.example"},
        {"ref": "timelogging", "name": "Time Logging", "email": "timelogging@msp.example"},
    ]


@pytest.mark.parametrize(
    ("q", "refs"),
    [
        ("doe", ["jdoe"]),
        ("JOHN doe", ["jdoe"]),
        ("alice.smith@", ["asmith"]),
        ("timelog", ["timelogging"]),
        ("msp.example", ["asmith", "jdoe", "timelogging"]),
        ("nobody", []),
    ],
)
def test_tenant_picker_searches(admin_client, tenant, connection, q, refs):
    with connectwise(*MEMBERS):
        response = admin_client.get(tenant_users_url(tenant), {"q": q})
    assert [u["ref"] for u in response.json()] == refs


def test_picker_list_is_cached_per_connection_for_a_minute(
    admin_client, tenant, connection, monkeypatch
):
    cache = FakeCache()
    monkeypatch.setattr("timelogging.services.psa_users.cache", cache)
    with connectwise(*MEMBERS) as psa:
        for q in ("", "j", "jo", "john"):
            assert admin_client.get(tenant_users_url(tenant), {"q": q}).status_code == 200
        # The mapping pages' endpoint is keyed by the same connection: same cached list.
        admin_client.get(connection_users_url(connection), {"q": "alice"})
        assert len(calls_to(psa, "system/members")) == 1

        # New credentials or settings: a new list at once.
        connection.save()
        admin_client.get(tenant_users_url(tenant), {"q": "doe"})
        assert len(calls_to(psa, "system/members")) == 2

    assert len(cache.timeouts) == 2
    assert all(key.startswith(f"piadesk:psa-users:{connection.pk}:") for key in cache.timeouts)
    assert set(cache.timeouts.values()) == {60}


def test_picker_returns_the_psas_error_as_502_json(admin_client, tenant, connection):
    with connectwise() as psa:
        psa.replace("GET", f"{API}system/members", status=401, json={"message": PRIVATE_KEY})
        response = admin_client.get(tenant_users_url(tenant), {"q": "doe"})
    assert response.status_code == 502
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"].startswith("ConnectWise rejected the API keys (401)")
    assert PRIVATE_KEY not in response.content.decode()


def test_picker_errors_are_not_cached(admin_client, tenant, connection):
    with connectwise(*MEMBERS) as psa:
        psa.replace("GET", f"{SITE}/login/companyinfo/acme", body=REFUSED)
        first = admin_client.get(tenant_users_url(tenant))
        assert first.status_code == 502
        assert "Could not connect to the PSA" in first.json()["error"]
        psa.replace("GET", f"{SITE}/login/companyinfo/acme", json={"Codebase": "v2025_1/"})
        assert len(admin_client.get(tenant_users_url(tenant)).json()) == 3


def test_picker_without_an_active_connection(admin_client, tenant):
    PSAConnectionFactory(tenant=tenant, is_active=False)
    response = admin_client.get(tenant_users_url(tenant))
    assert response.status_code == 409
    assert "no active PSA connection" in response.json()["error"]


def test_picker_of_an_unknown_tenant_or_connection(admin_client):
    assert admin_client.get(reverse("admin:timelogging_tenant_psa_users", args=[0])).json() == {
        "error": "No such tenant."
    }
    url = reverse("admin:timelogging_psaconnection_psa_users", args=[0])
    assert admin_client.get(url).status_code == 404


def test_picker_is_get_only(admin_client, tenant, connection):
    with connectwise(*MEMBERS) as psa:
        assert admin_client.post(tenant_users_url(tenant)).status_code == 405
    assert not psa.calls


def test_tenant_picker_needs_change_permission_on_the_tenant(client, tenant, connection):
    client.force_login(staff("view_tenant", tenant=tenant))
    with connectwise(*MEMBERS) as psa:
        response = client.get(tenant_users_url(tenant))
    assert response.status_code == 403
    assert not psa.calls


def test_picker_needs_a_staff_login(client, tenant, connection):
    response = client.get(tenant_users_url(tenant))
    assert response.status_code == 302
    assert "/admin/login/" in response.url


def test_connection_picker_is_open_to_staff_who_edit_mappings(client, connection):
    client.force_login(staff("view_psaconnection", "add_psausermapping", tenant=connection.tenant))
    with connectwise(*MEMBERS):
        response = client.get(connection_users_url(connection), {"q": "alice"})
    assert response.status_code == 200
    assert [u["ref"] for u in response.json()] == ["asmith"]


def test_connection_picker_is_closed_to_viewers(client, connection):
    client.force_login(staff("view_psaconnection", "view_psausermapping", tenant=connection.tenant))
    with connectwise(*MEMBERS) as psa:
        assert client.get(connection_users_url(connection)).status_code == 403
    assert not psa.calls


def test_search_results_are_capped(connection):
    many = [member(f"user{i:03}", "User", f"{i:03}", id=i) for i in range(120)]
    with connectwise(*many):
        assert len(psa_users_search(connection=connection, search="user")) == 50
        assert len(psa_users_search(connection=connection, search="user", limit=5)) == 5


# --- the pickers on the pages -------------------------------------------------------------------
def test_settings_page_wires_the_picker(admin_client, tenant):
    response = admin_client.get(admin_url(tenant, "change"))
    page = response.content.decode()
    assert "timelogging/psa_user_picker.js" in page
    widget = response.context["adminform"].form.fields["specified_psa_user_ref"].widget
    assert widget.attrs["data-psa-users-url"] == tenant_users_url(tenant)
    assert widget.attrs["data-psa-user-name-field"] == "id_specified_psa_user_name"
    assert f'data-psa-users-url="{tenant_users_url(tenant)}"' in page


def test_add_tenant_page_has_no_picker(admin_client):
    response = admin_client.get(admin_url(Tenant, "add"))
    assert "data-psa-users-url" not in response.content.decode()


def test_mapping_pages_wire_the_picker(admin_client, connection):
    add = admin_client.get(admin_url(PSAUserMapping, "add")).content.decode()
    assert "timelogging/psa_user_picker.js" in add
    template = reverse("admin:timelogging_psaconnection_psa_users", args=["__connection__"])
    assert f'data-psa-users-url-template="{template}"' in add
    assert 'data-psa-connection-field="id_connection"' in add

    mapping = PSAUserMapping.objects.create(
        tenant=connection.tenant, connection=connection, email="a@msp.example", psa_user_ref="a"
    )
    change = admin_client.get(admin_url(mapping, "change")).content.decode()
    assert f'data-psa-users-url="{connection_users_url(connection)}"' in change


def test_mapping_list_shows_the_source(admin_client, connection):
    for email, source in (("a@msp.example", "resolved"), ("b@msp.example", "manual")):
        PSAUserMapping.objects.create(
            tenant=connection.tenant,
            connection=connection,
            email=email,
            psa_user_ref=email[0],
            source=source,
        )
    page = admin_client.get(admin_url(PSAUserMapping, "changelist")).content.decode()
    assert "Resolved by e-mail" in page and "Set by staff" in page


# --- checking the chosen user before saving -----------------------------------------------------
def post_settings(admin_client, tenant, **changes):
    page = admin_client.get(admin_url(tenant, "change"))
    data = changeform_data(page, **changes)
    return admin_client.post(admin_url(tenant, "change"), data, follow=True)


SPECIFIED = {"time_logging_enabled": "True", "apply_to": "all", "log_as": "specified"}


def test_specified_user_known_to_the_psa_is_saved_with_its_name(admin_client, tenant, connection):
    with connectwise(*MEMBERS) as psa:
        response = post_settings(
            admin_client,
            tenant,
            **SPECIFIED,
            specified_psa_user_ref="timelogging",
            specified_psa_user_name="",
        )
    assert response.status_code == 200 and not response.context.get("errors")
    assert len(calls_to(psa, "system/members")) == 1
    tenant.refresh_from_db()
    assert (tenant.specified_psa_user_ref, tenant.specified_psa_user_name) == (
        "timelogging",
        "Time Logging",  # filled from the PSA
    )
    assert not [m for m in response.context["messages"] if m.level == WARNING]


def test_specified_user_unknown_to_the_psa_is_saved_with_a_warning(
    admin_client, tenant, connection
):
    # Validation never asks the PSA (the picker offers only users it knows): a user typed by
    # hand is saved, and the PSA's answer, asked once the save has committed, is a warning.
    with connectwise(*MEMBERS) as psa:
        response = post_settings(admin_client, tenant, **SPECIFIED, specified_psa_user_ref="ghost")
        assert len(calls_to(psa, "system/members")) == 1
    assert response.redirect_chain  # saved: no form shown again
    tenant.refresh_from_db()
    assert (tenant.log_as, tenant.specified_psa_user_ref) == ("specified", "ghost")
    # One message for the save (tenant page), a warning: what changed, then the PSA's answer.
    [warning] = [(str(m), m.level) for m in response.context["messages"]]
    assert warning[1] == WARNING
    assert warning[0].startswith("Saved. Log time entries as:")
    assert (
        "Saved, but ConnectWise PSA has no user “ghost”: entries logged as this user will fail "
        "until you choose one of the ConnectWise PSA users (the picker lists them)."
    ) in warning[0]


def test_specified_user_is_saved_with_a_warning_when_the_psa_is_down(
    admin_client, tenant, connection
):
    with connectwise() as psa:
        psa.replace("GET", f"{API}system/members", status=503, json={"message": "maintenance"})
        response = post_settings(
            admin_client, tenant, **SPECIFIED, specified_psa_user_ref="timelogging"
        )
    tenant.refresh_from_db()
    assert (tenant.log_as, tenant.specified_psa_user_ref) == ("specified", "timelogging")
    [warning] = [(str(m), m.level) for m in response.context["messages"]]
    assert warning[1] == WARNING
    assert (
        "ConnectWise PSA could not be asked whether user “timelogging” exists, so it was saved "
        "without that check. ConnectWise is having trouble (503): maintenance"
    ) in warning[0]


def test_specified_user_is_checked_only_when_chosen(admin_client, tenant, connection):
    tenant.log_as = "specified"
    tenant.specified_psa_user_ref = "timelogging"
    tenant.save()
    with connectwise(*MEMBERS) as psa:
        response = post_settings(admin_client, tenant, name="Acme MSP (renamed)")
    assert response.status_code == 200
    tenant.refresh_from_db()
    assert tenant.name == "Acme MSP (renamed)"
    assert not psa.calls


def test_specified_user_without_a_connection_is_saved_unchecked(admin_client, tenant):
    response = post_settings(admin_client, tenant, **SPECIFIED, specified_psa_user_ref="anyone")
    tenant.refresh_from_db()
    assert tenant.specified_psa_user_ref == "anyone"
    assert any("No PSA connection is active yet" in m for m in messages_text(response))


def test_autotask_ref_that_is_no_resource_id_is_saved_with_a_warning(admin_client, tenant):
    PSAConnectionFactory(
        tenant=tenant,
        vendor="autotask",
        settings={"api_username": "api@msp.example"},
        secrets={"integration_code": "X" * 27, "secret": "s3cret"},
    )
    # No request at all: Autotask resource ids are numbers.
    with connectwise() as psa:
        response = post_settings(admin_client, tenant, **SPECIFIED, specified_psa_user_ref="jdoe")
    assert not psa.calls
    assert any("Saved, but Autotask has no user “jdoe”" in m for m in messages_text(response))


def add_mapping(admin_client, connection, **data):
    return admin_client.post(
        admin_url(PSAUserMapping, "add"),
        {"connection": connection.pk, "email": "j@msp.example", **data},
        follow=True,
    )


def test_mapping_to_an_unknown_psa_user_is_saved_with_a_warning(admin_client, connection):
    with connectwise(*MEMBERS):
        response = add_mapping(admin_client, connection, psa_user_ref="ghost")
    assert PSAUserMapping.objects.get().psa_user_ref == "ghost"
    assert any(
        "Saved, but ConnectWise PSA has no user “ghost”" in m for m in messages_text(response)
    )


def test_mapping_set_while_the_psa_is_down_is_a_manual_override_with_a_warning(
    admin_client, connection
):
    with connectwise() as psa:
        psa.replace("GET", f"{API}system/members", body=REFUSED)
        response = add_mapping(admin_client, connection, psa_user_ref="jdoe")
    mapping = PSAUserMapping.objects.get()
    assert (mapping.psa_user_ref, mapping.source) == ("jdoe", "manual")
    assert any("saved without that check" in m for m in messages_text(response))


def test_mapping_picked_from_the_psa_gets_the_psas_name(admin_client, connection):
    with connectwise(*MEMBERS):
        add_mapping(admin_client, connection, psa_user_ref="asmith", psa_user_name="")
    mapping = PSAUserMapping.objects.get()
    assert (mapping.psa_user_name, mapping.source) == ("Alice Smith", "manual")


def test_json_shape_is_plain(admin_client, tenant, connection):
    # What psa_user_picker.js reads: a bare list of {"ref", "name", "email"}.
    with connectwise(MEMBERS[0]):
        body = json.loads(admin_client.get(tenant_users_url(tenant)).content)
    assert body == [{"ref": "jdoe", "name": "John Doe", "email": "john.doe@msp.example"}]


# --- the look-up is made before the admin's transaction ---------------------------------------
@pytest.fixture
def lookups(monkeypatch):
    """Where the admin's PSA user look-ups run: the savepoint depth at each call (the admin's
    ``changeform_view`` opens one more while it validates and saves)."""
    from django.db import connection as db

    from timelogging.admin import psa_tools
    from timelogging.services import psa_users

    depths: list[int] = []

    def recorded(**kwargs):
        depths.append(len(db.savepoint_ids))
        return psa_users.psa_user_check(**kwargs)

    monkeypatch.setattr(psa_tools, "psa_user_check", recorded)
    return depths, len(db.savepoint_ids)


def test_settings_look_up_the_user_outside_the_admins_transaction(
    admin_client, tenant, connection, lookups
):
    depths, outside = lookups
    with connectwise(*MEMBERS) as psa:
        response = post_settings(admin_client, tenant, **SPECIFIED, specified_psa_user_ref="ghost")
        assert len(calls_to(psa, "system/members")) == 1
    assert depths == [outside]
    assert any("has no user “ghost”" in m for m in messages_text(response))


def test_mapping_looks_up_the_user_outside_the_admins_transaction(
    admin_client, connection, lookups
):
    depths, outside = lookups
    with connectwise(*MEMBERS):
        add_mapping(admin_client, connection, psa_user_ref="asmith", psa_user_name="")
    assert depths == [outside]
    assert PSAUserMapping.objects.get().psa_user_name == "Alice Smith"


def test_no_look_up_for_staff_who_may_not_save(client, tenant, connection, lookups):
    depths, _ = lookups
    client.force_login(staff("view_tenant", tenant=tenant))
    data = {"name": tenant.name, **SPECIFIED, "specified_psa_user_ref": "jdoe"}
    with connectwise(*MEMBERS) as psa:
        assert client.post(admin_url(tenant, "change"), data).status_code == 403
        assert not psa.calls
    assert depths == []
