"""The tenant's catalogue in the admin: tags, clients, automations."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AutomationFactory, ClientFactory, TagFactory, TenantFactory
from tests.timelogging.admin_support import (
    admin_url,
    changeform_data,
    form_errors,
    messages_text,
)
from timelogging.models import Automation, Client, Tag

pytestmark = pytest.mark.django_db


def _queries(client, url):
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


# --- tags -----------------------------------------------------------------------------------
def test_tag_list_search_and_tenant_filter(admin_client):
    acme, other = TenantFactory(name="Acme"), TenantFactory(name="Other")
    TagFactory(tenant=acme, name="Ad-hoc")
    TagFactory(tenant=other, name="Time Logging")
    url = admin_url(Tag, "changelist")

    response = admin_client.get(url, {"q": "ad-h"})
    assert [t.name for t in response.context["cl"].result_list] == ["Ad-hoc"]
    response = admin_client.get(url, {"tenant__id__exact": other.pk})
    assert [t.name for t in response.context["cl"].result_list] == ["Time Logging"]


def test_tag_rename_to_a_name_the_tenant_uses_is_refused(admin_client):
    tenant = TenantFactory()
    TagFactory(tenant=tenant, name="Ad-hoc")
    tag = TagFactory(tenant=tenant, name="Adhoc")
    response = admin_client.get(admin_url(tag, "change"))
    assert "tenant" not in response.context["adminform"].form.fields  # fixed once created
    response = admin_client.post(admin_url(tag, "change"), changeform_data(response, name="AD-HOC"))
    assert form_errors(response) == {"name": [f"{tenant.name} already has a tag named “AD-HOC”."]}
    tag.refresh_from_db()
    assert tag.name == "Adhoc"


def test_tag_add_for_a_tenant(admin_client):
    tenant = TenantFactory()
    TagFactory(tenant=tenant, name="Ad-hoc")
    url = admin_url(Tag, "add")
    response = admin_client.post(url, {"tenant": tenant.pk, "name": "ad-hoc"})
    assert form_errors(response) == {"name": [f"{tenant.name} already has a tag named “ad-hoc”."]}
    response = admin_client.post(url, {"tenant": tenant.pk, "name": "Time Logging"})
    assert response.status_code == 302
    assert tenant.tag_set.filter(name="Time Logging").exists()


# --- clients --------------------------------------------------------------------------------
def test_client_list_shows_tags_without_a_query_per_row(admin_client):
    tenant = TenantFactory()
    tags = TagFactory.create_batch(3, tenant=tenant)
    url = admin_url(Client, "changelist")
    for _ in range(3):
        ClientFactory(tenant=tenant, tags=tags)
    few = _queries(admin_client, url)
    for _ in range(30):
        ClientFactory(tenant=TenantFactory(), tags=[TagFactory()])
    assert _queries(admin_client, url) == few

    response = admin_client.get(url, {"tenant__id__exact": tenant.pk})
    html = response.content.decode()
    assert ", ".join(t.name for t in sorted(tags, key=lambda t: t.name)) in html


def test_client_search_and_filters(admin_client):
    acme = TenantFactory(name="Acme")
    adhoc = TagFactory(tenant=acme, name="Ad-hoc")
    ClientFactory(tenant=acme, key="contoso", name="Contoso", tags=[adhoc])
    ClientFactory(tenant=acme, key="fabrikam", name="Fabrikam")
    ClientFactory(key="northwind", name="Northwind")
    url = admin_url(Client, "changelist")

    response = admin_client.get(url, {"q": "fabri"})
    assert [c.key for c in response.context["cl"].result_list] == ["fabrikam"]
    response = admin_client.get(url, {"tenant__id__exact": acme.pk})
    assert {c.key for c in response.context["cl"].result_list} == {"contoso", "fabrikam"}
    # The tag filter offers the chosen tenant's tags (names repeat across tenants).
    html = response.content.decode()
    assert f"tag={adhoc.pk}" in html
    response = admin_client.get(url, {"tenant__id__exact": acme.pk, "tag": adhoc.pk})
    assert [c.key for c in response.context["cl"].result_list] == ["contoso"]
    assert f"tag={adhoc.pk}" not in admin_client.get(url).content.decode()


def test_client_change_form_offers_only_its_tenants_tags(admin_client):
    tenant = TenantFactory()
    ours = TagFactory(tenant=tenant, name="Ad-hoc")
    theirs = TagFactory(name="Elsewhere")
    client = ClientFactory(tenant=tenant)
    response = admin_client.get(admin_url(client, "change"))
    form = response.context["adminform"].form
    assert list(form.fields["tags"].queryset) == [ours]
    assert "tenant" not in form.fields and "key" not in form.fields  # fixed once created

    response = admin_client.post(
        admin_url(client, "change"),
        changeform_data(response, tags=[str(ours.pk), str(theirs.pk)]),
    )
    assert form_errors(response) == {
        "tags": [f"Tag {theirs.pk} is not one of this tenant's tags; choose among the tags listed."]
    }
    response = admin_client.post(
        admin_url(client, "change"), changeform_data(response, tags=[str(ours.pk)])
    )
    assert response.status_code == 302
    assert list(client.tags.all()) == [ours]


def test_client_add_refuses_tags_of_another_tenant(admin_client):
    acme = TenantFactory(name="Acme")
    other = TenantFactory(name="Other")
    ours = TagFactory(tenant=acme, name="Ad-hoc")
    theirs = TagFactory(tenant=other, name="Time Logging")
    url = admin_url(Client, "add")
    form = admin_client.get(url).context["adminform"].form
    assert dict(form.fields["tags"].choices)  # every tenant's tags, named with their tenant
    assert "Other: Time Logging" in admin_client.get(url).content.decode()

    data = {"tenant": acme.pk, "key": "contoso", "name": "Contoso"}
    response = admin_client.post(url, {**data, "tags": [ours.pk, theirs.pk]})
    assert form_errors(response) == {
        "tags": [
            "These tags belong to another tenant, not to Acme: Time Logging. Remove them, or "
            "create them for Acme."
        ]
    }
    assert not Client.objects.exists()
    response = admin_client.post(url, {**data, "tags": [ours.pk]})
    assert response.status_code == 302
    assert list(Client.objects.get(key="contoso").tags.all()) == [ours]


def test_client_add_with_a_tenant_in_the_url_offers_its_tags(admin_client):
    acme = TenantFactory()
    ours = TagFactory(tenant=acme)
    TagFactory()
    form = admin_client.get(admin_url(Client, "add"), {"tenant": acme.pk}).context["adminform"].form
    assert list(form.fields["tags"].queryset) == [ours]


def test_client_key_is_unique_per_tenant(admin_client):
    tenant = TenantFactory()
    ClientFactory(tenant=tenant, key="contoso")
    response = admin_client.post(
        admin_url(Client, "add"), {"tenant": tenant.pk, "key": "contoso", "name": "Again"}
    )
    assert form_errors(response) == {
        "key": [f"{tenant.name} already has a client with key “contoso”."]
    }


def test_add_tag_action(admin_client):
    tenant = TenantFactory()
    adhoc = TagFactory(tenant=tenant, name="Ad-hoc")
    TagFactory(name="Elsewhere")
    first, second = ClientFactory(tenant=tenant), ClientFactory(tenant=tenant, tags=[adhoc])
    url = admin_url(Client, "changelist")
    selected = {"action": "add_tag", "_selected_action": [first.pk, second.pk]}

    response = admin_client.post(url, selected)
    assert response.status_code == 200
    assert list(response.context["form"].fields["tag"].queryset) == [adhoc]
    assert "Add tag to clients" in response.content.decode()

    response = admin_client.post(url, {**selected, "apply": "yes", "tag": adhoc.pk}, follow=True)
    assert "Tag “Ad-hoc” added to 1 client." in messages_text(response)
    assert list(first.tags.all()) == [adhoc]
    assert LogEntry.objects.filter(object_id=str(first.pk)).exists()


def test_add_tag_action_refuses_clients_of_several_tenants(admin_client):
    a, b = ClientFactory(), ClientFactory()
    response = admin_client.post(
        admin_url(Client, "changelist"),
        {"action": "add_tag", "_selected_action": [a.pk, b.pk]},
        follow=True,
    )
    assert "Select clients of one tenant: each tenant has its own tags." in messages_text(response)


def test_add_tag_action_refuses_another_tenants_tag(admin_client):
    client = ClientFactory()
    theirs = TagFactory()
    response = admin_client.post(
        admin_url(Client, "changelist"),
        {"action": "add_tag", "_selected_action": [client.pk], "apply": "yes", "tag": theirs.pk},
    )
    assert response.status_code == 200
    assert response.context["form"].errors["tag"]
    assert not client.tags.exists()


# --- automations ----------------------------------------------------------------------------
def test_automation_list_edits_time_per_automation(admin_client):
    tenant = TenantFactory()
    a = AutomationFactory(tenant=tenant, minutes=None)
    b = AutomationFactory(tenant=tenant, minutes=5)
    url = admin_url(Automation, "changelist")
    response = admin_client.get(url)
    formset = response.context["cl"].formset
    assert set(formset.forms[0].fields) >= {"log_time", "minutes"}
    index = {form.instance.pk: i for i, form in enumerate(formset.forms)}
    data = {
        "form-TOTAL_FORMS": "2",
        "form-INITIAL_FORMS": "2",
        f"form-{index[a.pk]}-id": str(a.pk),
        f"form-{index[a.pk]}-log_time": "on",
        f"form-{index[a.pk]}-minutes": "12",
        f"form-{index[b.pk]}-id": str(b.pk),
        f"form-{index[b.pk]}-minutes": "",
        "_save": "Save",
    }
    response = admin_client.post(url, data)
    assert response.status_code == 302
    a.refresh_from_db()
    b.refresh_from_db()
    assert (a.log_time, a.minutes) == (True, 12)
    assert (b.log_time, b.minutes) == (False, None)

    data[f"form-{index[a.pk]}-minutes"] = "2000"
    response = admin_client.post(url, data)
    assert response.status_code == 200
    assert response.context["cl"].formset.forms[index[a.pk]].errors["minutes"]
    a.refresh_from_db()
    assert a.minutes == 12


def test_automation_can_be_created_before_its_first_run(admin_client):
    tenant = TenantFactory()
    response = admin_client.post(
        admin_url(Automation, "add"),
        {"tenant": tenant.pk, "key": "reset-pw", "name": "Reset password", "minutes": "10"},
    )
    assert response.status_code == 302
    automation = Automation.objects.get(tenant=tenant, key="reset-pw")
    assert (automation.log_time, automation.minutes) == (False, 10)  # unchecked box: off


def test_automation_search_and_filter(admin_client):
    acme = TenantFactory()
    AutomationFactory(tenant=acme, key="reset-pw", name="Reset password")
    AutomationFactory(key="onboard", name="Onboard user", log_time=False)
    url = admin_url(Automation, "changelist")
    assert [a.key for a in admin_client.get(url, {"q": "reset"}).context["cl"].result_list] == [
        "reset-pw"
    ]
    response = admin_client.get(url, {"log_time__exact": "0"})
    assert [a.key for a in response.context["cl"].result_list] == ["onboard"]
    response = admin_client.get(url, {"tenant__id__exact": acme.pk})
    assert [a.key for a in response.context["cl"].result_list] == ["reset-pw"]
