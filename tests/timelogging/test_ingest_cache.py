"""The ingest's per-process catalog (services/ingest_cache.py): the next ingest after any change
to what it decides with uses the change, in this process and in every other one."""

from __future__ import annotations

import json
import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import AutomationFactory, ClientFactory, TagFactory
from timelogging.models import Client, Tenant
from timelogging.services import ingest_cache

pytestmark = pytest.mark.django_db
URL = "/api/v1/automation-runs/"


@pytest.fixture
def report(api, run_payload):
    """Post a run (a new run_id each time) and answer the run's decision and reason code."""
    count = iter(range(1000))

    def post(**overrides):
        payload = run_payload(run_id=f"run-{next(count)}", **overrides)
        response = api.generic("POST", URL, json.dumps(payload), content_type="application/json")
        assert response.status_code == 201, response.content
        body = response.json()
        return body["decision"], body["reason_code"]

    return post


@pytest.fixture
def tagged(tenant):
    """Logged for clients tagged "Time Logging"; client "contoso" carries the tag."""
    tag = TagFactory(tenant=tenant, name="Time Logging")
    tenant.time_logging_enabled = True
    tenant.apply_to = Tenant.ApplyTo.TAGS
    tenant.save()
    tenant.apply_tags.set([tag])
    client = ClientFactory(tenant=tenant, key="contoso", name="Contoso Ltd", tags=[tag])
    AutomationFactory(tenant=tenant, key="reset-password", name="Reset password")
    return tag, client


def warm(report):
    """Two ingests: the first reads (and keeps) the client and the automation, the second
    decides from what is kept."""
    assert report() == ("log", "")
    with CaptureQueriesContext(connection) as ctx:
        assert report() == ("log", "")
    sql = " ".join(q["sql"] for q in ctx.captured_queries)
    assert "timelogging_client" not in sql.split("INSERT")[0]  # kept: not read again


def test_tenant_settings_saved_are_used_by_the_next_ingest(tenant, tagged, report):
    warm(report)
    tenant.time_logging_enabled = False
    tenant.save()
    assert report() == ("skip", "status_off")
    tenant.time_logging_enabled = True
    tenant.apply_to = Tenant.ApplyTo.NONE
    tenant.save()
    assert report() == ("skip", "apply_to_none")


def test_apply_tags_changed_are_used_by_the_next_ingest(tenant, tagged, report):
    warm(report)
    tenant.apply_tags.set([TagFactory(tenant=tenant)])
    assert report() == ("skip", "client_not_in_scope")


@pytest.mark.parametrize("side", ["client", "tag"])
def test_client_tags_changed_from_either_side_are_used(tagged, report, side):
    tag, client = tagged
    warm(report)
    if side == "client":
        client.tags.remove(tag)
    else:
        tag.clients.remove(client)
    assert report() == ("skip", "client_not_in_scope")
    tag.clients.add(client)  # the admin's "Add tag…" action adds from the tag's side
    assert report() == ("log", "")


def test_a_deleted_tag_is_no_longer_in_scope(tenant, tagged, report):
    tag, _ = tagged
    other = TagFactory(tenant=tenant)
    tenant.apply_tags.add(other)
    warm(report)
    tag.delete()  # its client links go with it, without m2m signals
    assert report() == ("skip", "client_not_in_scope")


def test_automation_changed_is_used_by_the_next_ingest(tenant, tagged, report):
    warm(report)
    automation = tenant.automation_set.get(key="reset-password")
    automation.log_time = False
    automation.save()
    assert report() == ("skip", "automation_off")


def test_a_name_changed_by_staff_is_set_back_by_the_service(tenant, tagged, report):
    _, client = tagged
    warm(report)
    client.name = "Renamed by staff"
    client.save()
    report(client={"key": "contoso", "name": "Contoso Ltd"})
    assert Client.objects.get(pk=client.pk).name == "Contoso Ltd"


def test_a_change_made_by_another_process_is_seen(tenant, tagged, report):
    # Another web process (or host) saves the settings: this process sees none of its
    # signals, only the database, where the change replaced config_version.
    warm(report)
    Tenant.objects.filter(pk=tenant.pk).update(
        time_logging_enabled=False, config_version=uuid.uuid4()
    )
    assert report() == ("skip", "status_off")


def test_writes_that_bypass_signals_must_say_so(tenant, tagged, report):
    # QuerySet.update sends no signal: until tenant_config_changed is called the process
    # decides with what it keeps (why the module docstring asks for the call).
    warm(report)
    Tenant.objects.filter(pk=tenant.pk).update(time_logging_enabled=False)
    assert report() == ("log", "")
    ingest_cache.tenant_config_changed(tenant_id=tenant.pk)
    assert report() == ("skip", "status_off")


def test_a_saved_tenant_does_not_write_back_an_old_version(tenant):
    tenant.save()
    first = Tenant.objects.get(pk=tenant.pk).config_version
    assert tenant.config_version == first
    tenant.save()
    assert Tenant.objects.get(pk=tenant.pk).config_version not in (first, None)


def test_a_process_keeps_a_bounded_number_of_keys(tenant, tagged, report, monkeypatch):
    monkeypatch.setattr(ingest_cache, "MAX_KEYS_PER_TENANT", 3)
    for i in range(5):
        ClientFactory(tenant=tenant, key=f"k{i}")
        report(client={"key": f"k{i}"})
        report(client={"key": f"k{i}"})
    catalog = ingest_cache.tenant_catalog(tenant_id=tenant.pk)
    assert 1 <= len(catalog.clients) <= 3
