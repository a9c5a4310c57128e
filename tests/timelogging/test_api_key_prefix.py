"""API keys are named by their public prefix, and a new key is shown once on the page that
answers its creation, not in the messages cookie (issue 9, finding 4)."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.admin.models import LogEntry

from tests.factories import TenantFactory
from tests.timelogging.admin_support import admin_url
from timelogging.models import ConfigChange, TenantAPIKey

pytestmark = pytest.mark.django_db


def test_a_new_key_is_shown_on_the_page_that_answers_and_not_in_a_cookie(admin_client):
    tenant = TenantFactory()
    response = admin_client.post(
        admin_url(TenantAPIKey, "add"), {"tenant": tenant.pk, "name": "svc"}
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = response.context["key"]
    assert TenantAPIKey.objects.is_valid(key)
    assert key in response.content.decode()
    assert key not in str(response.cookies)
    assert "messages" not in response.cookies or key not in response.cookies["messages"].value
    # And never again.
    api_key = TenantAPIKey.objects.get()
    for url in (admin_url(api_key, "change"), admin_url(TenantAPIKey, "changelist")):
        assert key not in admin_client.get(url).content.decode()


def test_urls_and_histories_name_a_key_by_its_prefix(admin_client):
    tenant = TenantFactory()
    admin_client.post(admin_url(TenantAPIKey, "add"), {"tenant": tenant.pk, "name": "svc"})
    api_key = TenantAPIKey.objects.get()
    assert api_key.pk == api_key.prefix
    change_url = admin_url(api_key, "change")
    assert change_url.endswith(f"/{api_key.prefix}/change/")
    listed = admin_client.get(admin_url(TenantAPIKey, "changelist")).content.decode()
    assert change_url in listed and api_key.hashed_key not in listed
    page = admin_client.post(
        change_url, {"name": "renamed", "expiry_date_0": "", "expiry_date_1": ""}
    )
    assert page.status_code == 302
    assert set(
        ConfigChange.objects.filter(object_repr__contains="svc").values_list("object_pk", flat=True)
    ) | set(
        ConfigChange.objects.filter(object_repr__contains="renamed").values_list(
            "object_pk", flat=True
        )
    ) == {api_key.prefix}
    assert set(LogEntry.objects.values_list("object_id", flat=True)) == {api_key.prefix}
    history = admin_client.get(admin_url(api_key, "history")).content.decode()
    assert api_key.hashed_key not in history


def test_the_migration_renames_existing_keys_and_their_history():
    tenant = TenantFactory()
    api_key, key = TenantAPIKey.objects.create_key(tenant=tenant, name="old")
    old_id = f"{api_key.prefix}.{api_key.hashed_key}"
    TenantAPIKey.objects.filter(pk=api_key.pk).update(id=old_id)
    ConfigChange.objects.filter(object_pk=api_key.prefix).update(object_pk=old_id)
    assert ConfigChange.objects.filter(object_pk=old_id).exists()

    migration = importlib.import_module("timelogging.migrations.0009_api_key_ids_are_prefixes")
    migration.ids_to_prefixes(apps, None)

    assert TenantAPIKey.objects.get().pk == api_key.prefix
    assert not ConfigChange.objects.filter(object_pk=old_id).exists()
    assert TenantAPIKey.objects.is_valid(key)
