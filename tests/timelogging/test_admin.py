"""The admin site as a whole: its title, what is registered, every page loads."""

from __future__ import annotations

import pytest
from rest_framework_api_key.models import APIKey

from tests.factories import PSAConnectionFactory, TimeEntryFactory
from tests.timelogging.admin_support import admin_url
from timelogging import models
from timelogging.admin import admin_site

pytestmark = pytest.mark.django_db

REGISTERED = {
    models.Tenant: "TenantAdmin",
    models.Tag: "TagAdmin",
    models.Client: "ClientAdmin",
    models.Automation: "AutomationAdmin",
    models.PSAConnection: "PSAConnectionAdmin",
    models.PSAUserMapping: "PSAUserMappingAdmin",
    models.TenantAPIKey: "TenantAPIKeyAdmin",
    models.AutomationRun: "AutomationRunAdmin",
    models.TimeEntry: "TimeEntryAdmin",
    models.ConfigChange: "ConfigChangeAdmin",
}
READ_ONLY = (models.AutomationRun, models.TimeEntry, models.ConfigChange)


def test_site_title(admin_client):
    assert admin_site.site_header == "piadesk administration"
    response = admin_client.get("/admin/")
    assert "piadesk administration" in response.content.decode()


def test_models_are_registered_with_their_admins():
    for model, name in REGISTERED.items():
        assert type(admin_site.get_model_admin(model)).__name__ == name
    # The library's tenant-less key model authenticates nothing here.
    assert not admin_site.is_registered(APIKey)


@pytest.mark.parametrize("model", list(REGISTERED), ids=lambda m: m.__name__)
def test_every_page_loads(admin_client, model):
    entry = TimeEntryFactory()
    PSAConnectionFactory(tenant=entry.tenant)
    models.PSAUserMapping.objects.create(
        tenant=entry.tenant,
        connection=entry.tenant.psaconnection_set.get(),
        email="a@msp.example",
        psa_user_ref="a",
    )
    models.TenantAPIKey.objects.create_key(name="svc", tenant=entry.tenant)
    entry.run.client.tags.add(models.Tag.objects.create(tenant=entry.tenant, name="Ad-hoc"))

    assert admin_client.get(admin_url(model, "changelist")).status_code == 200
    obj = model.objects.first()
    assert admin_client.get(admin_url(obj, "change")).status_code == 200
    expected_add = 403 if model in READ_ONLY else 200
    assert admin_client.get(admin_url(model, "add")).status_code == expected_add


def test_autocomplete_of_tenants(admin_client):
    connection = PSAConnectionFactory()
    response = admin_client.get(
        "/admin/autocomplete/",
        {
            "term": connection.tenant.name,
            "app_label": "timelogging",
            "model_name": "psaconnection",
            "field_name": "tenant",
        },
    )
    assert response.status_code == 200
    assert response.json()["results"][0]["text"] == connection.tenant.name
