"""PSA connections in the admin: vendor-driven fields, encrypted secrets, validation."""

from __future__ import annotations

from typing import ClassVar

import pytest
from django.contrib.admin.models import LogEntry

from psa import registry
from psa.base import ConfigField, PSABackend
from tests.factories import PSAConnectionFactory, TenantFactory
from tests.timelogging.admin_support import (
    admin_url,
    changeform_data,
    form_errors,
    messages_text,
)
from tests.timelogging.psa_mocks import connectwise, member
from timelogging.crypto import decrypt_secrets
from timelogging.forms import SECRET_KEEP_HELP, SECRET_UNREADABLE
from timelogging.models import PSAConnection, PSAUserMapping

pytestmark = pytest.mark.django_db

PRIVATE_KEY = "s3cr3t-Pr1vate-KEY-0f-the-API-member"
CW = {
    "vendor": "connectwise",
    "name": "Main PSA",
    "is_active": "on",
    "site_url": "https://api-na.myconnectwise.net",
    "company_id": "acme",
    "public_key": "pub-123",
    "max_concurrency": "3",
}


def _add(admin_client, **data):
    return admin_client.post(admin_url(PSAConnection, "add"), data)


def test_add_page_has_one_field_per_config_field(admin_client):
    response = admin_client.get(admin_url(PSAConnection, "add"))
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.fields)[-2:] == ["requests_per_hour", "max_concurrency"]  # the limits
    assert list(form.fields)[:-2] == [
        "tenant",
        "vendor",
        "name",
        "is_active",
        "site_url",
        "company_id",
        "public_key",
        "private_key",
    ]
    assert [fs.name for fs in response.context["adminform"]] == [
        None,
        "ConnectWise PSA settings",
        "Limits",
    ]
    assert form.fields["private_key"].required
    assert 'type="password" name="private_key"' in response.content.decode()


def test_create_stores_secrets_encrypted_and_settings_in_clear(admin_client):
    tenant = TenantFactory()
    response = _add(admin_client, tenant=tenant.pk, private_key=PRIVATE_KEY, **CW)
    assert response.status_code == 302, form_errors(response)

    connection = PSAConnection.objects.get(tenant=tenant)
    assert connection.vendor == "connectwise" and connection.is_active
    assert connection.settings == {
        "site_url": "https://api-na.myconnectwise.net",
        "company_id": "acme",
        "public_key": "pub-123",
    }
    assert PRIVATE_KEY not in connection.secrets_encrypted
    assert decrypt_secrets(connection.secrets_encrypted) == {"private_key": PRIVATE_KEY}
    # Nor in the admin's history of the object.
    assert PRIVATE_KEY not in str(list(LogEntry.objects.values()))


def test_secret_is_required_on_create(admin_client):
    tenant = TenantFactory()
    response = _add(admin_client, tenant=tenant.pk, private_key="", **CW)
    assert form_errors(response) == {"private_key": ["This field is required."]}
    assert not PSAConnection.objects.exists()


def test_required_settings_are_reported_on_their_fields(admin_client):
    tenant = TenantFactory()
    response = _add(
        admin_client,
        tenant=tenant.pk,
        private_key=PRIVATE_KEY,
        **{**CW, "company_id": "", "site_url": ""},
    )
    assert set(form_errors(response)) == {"company_id", "site_url"}


def test_vendor_validation_errors_appear_on_the_field(admin_client):
    """The backend's validate_config: plain http only for loopback (the local sandbox)."""
    tenant = TenantFactory()
    response = _add(
        admin_client,
        tenant=tenant.pk,
        private_key=PRIVATE_KEY,
        **{**CW, "site_url": "http://api-na.myconnectwise.net"},
    )
    assert response.status_code == 200
    assert list(form_errors(response)) == ["site_url"]
    assert "https" in form_errors(response)["site_url"][0]
    assert not PSAConnection.objects.exists()
    # What was typed is kept, except the secret, which is never rendered back.
    html = response.content.decode()
    assert 'value="pub-123"' in html
    assert PRIVATE_KEY not in html


def test_change_page_never_shows_the_secret(admin_client):
    connection = PSAConnectionFactory(secrets={"private_key": PRIVATE_KEY})
    for url in (
        admin_url(connection, "change"),
        admin_url(PSAConnection, "changelist"),
        admin_url(connection, "history"),
    ):
        response = admin_client.get(url)
        assert response.status_code == 200
        assert PRIVATE_KEY not in response.content.decode()

    response = admin_client.get(admin_url(connection, "change"))
    form = response.context["adminform"].form
    assert not form.fields["private_key"].required
    assert form.fields["private_key"].help_text.startswith(SECRET_KEEP_HELP)
    assert SECRET_KEEP_HELP in response.content.decode()
    assert form["site_url"].value() == "https://cw.example.com"
    # Tenant and vendor are fixed once created.
    assert "tenant" not in form.fields and "vendor" not in form.fields


def test_blank_secret_on_change_keeps_the_stored_one(admin_client):
    connection = PSAConnectionFactory(secrets={"private_key": PRIVATE_KEY})
    response = admin_client.get(admin_url(connection, "change"))
    response = admin_client.post(
        admin_url(connection, "change"),
        changeform_data(response, public_key="pub-new", private_key=""),
    )
    assert response.status_code == 302, form_errors(response)
    connection.refresh_from_db()
    assert connection.settings["public_key"] == "pub-new"
    assert decrypt_secrets(connection.secrets_encrypted) == {"private_key": PRIVATE_KEY}
    change = LogEntry.objects.get(object_id=str(connection.pk))
    assert "Public key" in change.get_change_message()
    assert "Private key" not in change.get_change_message()


def test_typed_secret_on_change_replaces_the_stored_one(admin_client):
    connection = PSAConnectionFactory(secrets={"private_key": "old"})
    response = admin_client.get(admin_url(connection, "change"))
    response = admin_client.post(
        admin_url(connection, "change"), changeform_data(response, private_key=PRIVATE_KEY)
    )
    assert response.status_code == 302
    connection.refresh_from_db()
    assert decrypt_secrets(connection.secrets_encrypted) == {"private_key": PRIVATE_KEY}


def test_invalid_change_is_refused_and_keeps_the_stored_values(admin_client):
    connection = PSAConnectionFactory(secrets={"private_key": PRIVATE_KEY})
    response = admin_client.get(admin_url(connection, "change"))
    response = admin_client.post(
        admin_url(connection, "change"),
        changeform_data(response, site_url="http://cw.example.com", private_key="new"),
    )
    assert list(form_errors(response)) == ["site_url"]
    connection.refresh_from_db()
    assert connection.settings["site_url"] == "https://cw.example.com"
    assert decrypt_secrets(connection.secrets_encrypted) == {"private_key": PRIVATE_KEY}


def test_unreadable_secrets_must_be_entered_again(admin_client):
    connection = PSAConnectionFactory()
    PSAConnection.objects.filter(pk=connection.pk).update(secrets_encrypted="not-a-fernet-token")
    response = admin_client.get(admin_url(connection, "change"))
    assert response.status_code == 200
    data = changeform_data(response)
    response = admin_client.post(admin_url(connection, "change"), data)
    assert form_errors(response) == {"private_key": [SECRET_UNREADABLE]}

    response = admin_client.post(admin_url(connection, "change"), {**data, "private_key": "new"})
    assert response.status_code == 302, form_errors(response)
    connection.refresh_from_db()
    assert decrypt_secrets(connection.secrets_encrypted) == {"private_key": "new"}


def test_activating_a_new_connection_retires_the_old_one(admin_client):
    old = PSAConnectionFactory(name="Old")
    response = _add(admin_client, tenant=old.tenant.pk, private_key=PRIVATE_KEY, **CW)
    assert response.status_code == 302, form_errors(response)
    old.refresh_from_db()
    assert not old.is_active
    assert PSAConnection.objects.get(tenant=old.tenant, is_active=True).name == "Main PSA"
    response = admin_client.get(response.url)
    assert any("“Old” was deactivated" in m for m in messages_text(response))


def test_list_shows_tenant_vendor_name_active_and_site(admin_client):
    PSAConnectionFactory(name="Main", tenant=TenantFactory(name="Acme"))
    response = admin_client.get(admin_url(PSAConnection, "changelist"))
    [row] = response.context["cl"].result_list
    html = response.content.decode()
    # The site's host (the full address is on the connection's page).
    assert "Acme" in html and "ConnectWise PSA" in html and ">cw.example.com<" in html
    assert row.name == "Main"


class _FakeBackend(PSABackend):
    vendor: ClassVar[str] = "fakepsa"
    label: ClassVar[str] = "Fake PSA"
    config_fields: ClassVar[tuple[ConfigField, ...]] = (
        ConfigField("zone_url", "Zone", kind="url"),
        ConfigField("username", "API user"),
        ConfigField("tracking_id", "Tracking id", secret=True),
        ConfigField("impersonate", "Impersonate", kind="bool", required=False),
    )


def test_fields_follow_the_vendor_chosen(admin_client, monkeypatch):
    """Vendors added to the registry later get their own fields without admin changes."""
    monkeypatch.setitem(registry.BACKENDS, _FakeBackend.vendor, _FakeBackend)
    response = admin_client.get(admin_url(PSAConnection, "add"), {"vendor": "fakepsa"})
    form = response.context["adminform"].form
    assert list(form.fields)[4:-2] == ["zone_url", "username", "tracking_id", "impersonate"]
    assert ("fakepsa", "Fake PSA") in form.fields["vendor"].choices
    assert form["vendor"].value() == "fakepsa"
    assert [fs.name for fs in response.context["adminform"]][1] == "Fake PSA settings"
    assert 'src="/static/timelogging/psa_connection.js"' in response.content.decode()

    # An unknown vendor in the URL falls back to the default one.
    response = admin_client.get(admin_url(PSAConnection, "add"), {"vendor": "nope"})
    assert "site_url" in response.context["adminform"].form.fields


def test_posting_another_vendor_validates_that_vendors_fields(admin_client, monkeypatch):
    monkeypatch.setitem(registry.BACKENDS, _FakeBackend.vendor, _FakeBackend)
    tenant = TenantFactory()
    response = _add(admin_client, tenant=tenant.pk, vendor="fakepsa", name="Fake")
    assert set(form_errors(response)) >= {"zone_url", "username", "tracking_id"}


# --- user mappings --------------------------------------------------------------------------
def test_user_mapping_saved_by_staff_is_an_override(admin_client):
    connection = PSAConnectionFactory()
    # The PSA user is checked against the PSA (tests/timelogging/test_admin_psa_tools.py).
    with connectwise(member("jdoe", "John", "Doe"), member("jdoe2", "John", "Doe II")):
        _mapping_saved_by_staff(admin_client, connection)


def _mapping_saved_by_staff(admin_client, connection):
    response = admin_client.post(
        admin_url(PSAUserMapping, "add"),
        {
            "connection": connection.pk,
            "email": " JDoe@MSP.example ",
            "psa_user_ref": "jdoe",
            "psa_user_name": "John Doe",
        },
    )
    assert response.status_code == 302, form_errors(response)
    mapping = PSAUserMapping.objects.get()
    assert mapping.email == "jdoe@msp.example"
    assert mapping.tenant_id == connection.tenant_id
    assert mapping.source == PSAUserMapping.Source.MANUAL

    mapping.source = PSAUserMapping.Source.RESOLVED
    mapping.save()
    response = admin_client.get(admin_url(mapping, "change"))
    response = admin_client.post(
        admin_url(mapping, "change"), changeform_data(response, psa_user_ref="jdoe2")
    )
    assert response.status_code == 302
    mapping.refresh_from_db()
    assert (mapping.psa_user_ref, mapping.source) == ("jdoe2", PSAUserMapping.Source.MANUAL)


def test_user_mapping_email_is_unique_per_connection(admin_client):
    connection = PSAConnectionFactory()
    PSAUserMapping.objects.create(
        tenant=connection.tenant, connection=connection, email="a@msp.example", psa_user_ref="a"
    )
    mapping = PSAUserMapping.objects.create(
        tenant=connection.tenant, connection=connection, email="b@msp.example", psa_user_ref="b"
    )
    response = admin_client.get(admin_url(mapping, "change"))
    response = admin_client.post(
        admin_url(mapping, "change"), changeform_data(response, email="A@msp.example")
    )
    assert response.status_code == 200
    assert form_errors(response)  # refused, not an IntegrityError
    mapping.refresh_from_db()
    assert mapping.email == "b@msp.example"


def test_user_mapping_list(admin_client):
    connection = PSAConnectionFactory(secrets={"private_key": PRIVATE_KEY})
    PSAUserMapping.objects.create(
        tenant=connection.tenant, connection=connection, email="a@msp.example", psa_user_ref="a"
    )
    response = admin_client.get(admin_url(PSAUserMapping, "changelist"), {"q": "a@msp.example"})
    assert len(response.context["cl"].result_list) == 1
    assert PRIVATE_KEY not in response.content.decode()


# --- choosing the vendor ----------------------------------------------------------------------
def test_vendor_is_a_select_of_every_vendor(admin_client):
    """Regression: choices set on a plain CharField rendered a free-text input, so the page's
    script (which swaps the fields when the select changes) found nothing to listen to."""
    response = admin_client.get(admin_url(PSAConnection, "add"))
    html = response.content.decode()
    assert '<select name="vendor"' in html
    for vendor, label in registry.vendor_choices():
        assert f'<option value="{vendor}"' in html and label in html
    assert '<input type="hidden" name="_fields_for" value="connectwise">' in html


def test_vendor_step_without_javascript_shows_the_chosen_vendors_fields(admin_client):
    """Without JavaScript, choosing Autotask and pressing Save shows Autotask's fields,
    keeping the tenant and name, saving nothing and putting no secret in the address."""
    tenant = TenantFactory()
    response = _add(
        admin_client,
        _fields_for="connectwise",
        tenant=tenant.pk,
        vendor="autotask",
        name="Main PSA",
        private_key=PRIVATE_KEY,
    )
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(admin_url(PSAConnection, "add") + "?")
    assert PRIVATE_KEY not in location
    assert not PSAConnection.objects.exists()

    page = admin_client.get(location)
    form = page.context["adminform"].form
    assert form["vendor"].value() == "autotask"
    assert str(form["tenant"].value()) == str(tenant.pk)
    assert form["name"].value() == "Main PSA"
    assert "api_username" in form.fields and "site_url" not in form.fields
    assert "Enter the Autotask settings, then save." in messages_text(page)


def test_saving_with_the_shown_vendor_is_no_vendor_step(admin_client):
    tenant = TenantFactory()
    response = _add(
        admin_client, _fields_for="connectwise", tenant=tenant.pk, private_key=PRIVATE_KEY, **CW
    )
    assert response.status_code == 302, form_errors(response)
    assert PSAConnection.objects.get(tenant=tenant).vendor == "connectwise"
