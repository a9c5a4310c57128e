"""Tenant API keys in the admin: shown once on creation, revocable."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry

from tests.factories import TenantFactory
from tests.timelogging.admin_support import admin_url, messages_text
from timelogging.models import TenantAPIKey

pytestmark = pytest.mark.django_db


def _create_key(admin_client, tenant, name="automation service"):
    response = admin_client.post(
        admin_url(TenantAPIKey, "add"), {"tenant": tenant.pk, "name": name}
    )
    assert response.status_code == 200
    return TenantAPIKey.objects.get(name=name), response.context["key"], response


def test_key_is_shown_once_after_creation(admin_client):
    tenant = TenantFactory()
    api_key, key, response = _create_key(admin_client, tenant)

    assert api_key.tenant == tenant
    assert TenantAPIKey.objects.is_valid(key)
    assert key.startswith(api_key.prefix + ".")
    assert key not in api_key.hashed_key  # stored hashed

    for url in (
        admin_url(api_key, "change"),
        admin_url(TenantAPIKey, "changelist"),
        admin_url(api_key, "history"),
    ):
        html = admin_client.get(url).content.decode()
        assert key not in html
    # The message was consumed: reloading the list does not show it again.
    assert not [m for m in messages_text(admin_client.get(admin_url(TenantAPIKey, "changelist")))]
    assert key not in str(list(LogEntry.objects.values()))


def test_change_page_fixes_the_tenant(admin_client):
    api_key, _ = TenantAPIKey.objects.create_key(name="svc", tenant=TenantFactory())
    form = admin_client.get(admin_url(api_key, "change")).context["adminform"].form
    assert set(form.fields) == {"name", "read_only", "expiry_date", "revoked"}


def test_list_columns(admin_client):
    tenant = TenantFactory(name="Acme")
    api_key, _ = TenantAPIKey.objects.create_key(name="svc", tenant=tenant)
    response = admin_client.get(admin_url(TenantAPIKey, "changelist"))
    html = response.content.decode()
    assert "Acme" in html and api_key.prefix in html
    assert list(response.context["cl"].list_display)[1:] == [
        "tenant",
        "name",
        "prefix",
        "read_only",
        "created",
        "expiry_date",
        "_has_expired",
        "revoked",
    ]


def test_revoke_selected_keys(admin_client):
    tenant = TenantFactory()
    first, first_key = TenantAPIKey.objects.create_key(name="a", tenant=tenant)
    second, _ = TenantAPIKey.objects.create_key(name="b", tenant=tenant)
    kept, kept_key = TenantAPIKey.objects.create_key(name="c", tenant=tenant)
    response = admin_client.post(
        admin_url(TenantAPIKey, "changelist"),
        {"action": "revoke_keys", "_selected_action": [first.pk, second.pk]},
        follow=True,
    )
    assert "Revoked 2 API keys" in " ".join(messages_text(response))
    first.refresh_from_db()
    kept.refresh_from_db()
    assert first.revoked and not kept.revoked
    assert LogEntry.objects.filter(object_id=str(first.pk)).exists()


def test_a_read_only_key_made_in_the_admin_reads_but_cannot_report(admin_client, run_payload):
    from rest_framework.test import APIClient

    tenant = TenantFactory()
    response = admin_client.post(
        admin_url(TenantAPIKey, "add"),
        {"tenant": tenant.pk, "name": "auditor tool", "read_only": "on"},
    )
    key = response.context["key"]
    assert TenantAPIKey.objects.get(name="auditor tool").read_only
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert client.get("/api/v1/time-entries/").status_code == 200
    assert client.post("/api/v1/automation-runs/", run_payload(), format="json").status_code == 403
