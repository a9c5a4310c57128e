"""Configuration history: who changed what, when, from what to what; secrets never recorded
(nor anywhere else in the database in plain text)."""

from __future__ import annotations

import json
import logging

import pytest
from django.contrib.admin.models import LogEntry
from django.db import connection as db
from django.urls import reverse
from django_q.models import OrmQ

from tests.timelogging.admin_support import admin_url, changeform_data
from tests.timelogging.tenancy import A_MARK, B_MARK, build_world, make_member, text
from timelogging.audit import change_lines
from timelogging.models import (
    ConfigChange,
    PSAConnection,
    Tag,
    Tenant,
    TenantAPIKey,
)
from timelogging.services.connections import connection_save

pytestmark = pytest.mark.django_db

HISTORY = reverse("admin:timelogging_configchange_changelist")
SECRET = "zz-Plain-Private-Key-9d1e"
CW = {
    "vendor": "connectwise",
    "name": "Main PSA",
    "is_active": "on",
    "site_url": "https://api-na.myconnectwise.net",
    "company_id": "acme",
    "public_key": "pub-123",
    "max_concurrency": "3",
}


@pytest.fixture
def a():
    return build_world(A_MARK)


@pytest.fixture
def staff_user(a):
    return make_member(a.tenant, "staff", username="sam.staff")


@pytest.fixture
def staff(client, staff_user):
    client.force_login(staff_user)
    return client


def changes_of(obj, **filters):
    return ConfigChange.objects.filter(
        content_type__model=obj._meta.model_name, object_pk=str(obj.pk), **filters
    )


def lines(entry) -> dict[str, tuple[str, str]]:
    return {line.field: (line.old, line.new) for line in change_lines(entry)}


# --- who, what, from -> to -----------------------------------------------------------------------
def test_a_settings_change_records_who_and_from_to(staff, staff_user, a):
    page = staff.get(admin_url(a.tenant, "change"))
    data = changeform_data(page, time_logging_enabled="False", apply_to="tags")
    data["apply_tags"] = [str(a.tag.pk)]
    response = staff.post(admin_url(a.tenant, "change"), data)
    assert response.status_code == 302

    entries = list(changes_of(a.tenant, action=ConfigChange.Action.UPDATE).order_by("id"))
    field_change = next(e for e in entries if "time_logging_enabled" in (e.changes or {}))
    assert field_change.actor == staff_user
    assert field_change.tenant == a.tenant
    assert field_change.action == ConfigChange.Action.UPDATE
    assert lines(field_change)["status"] == ("Yes", "No")
    assert lines(field_change)["apply to"] == ("All Clients", "Based on Tag")
    tags_change = next(e for e in entries if "apply_tags" in (e.changes or {}))
    assert lines(tags_change)["tags"] == ("", f"added: {A_MARK} tag")

    history = text(staff.get(HISTORY))
    assert "sam.staff" in history
    assert "Yes → No" in history
    assert "All Clients → Based on Tag" in history


def test_time_rules_tags_mappings_and_keys_are_recorded(staff, staff_user, a):
    # Time per automation, from the list.
    staff.post(
        admin_url(type(a.automation), "changelist"),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": a.automation.pk,
            "form-0-name": a.automation.name,
            "form-0-log_time": "on",
            "form-0-minutes": "30",
            "_save": "Save",
        },
    )
    minutes = changes_of(a.automation, action=ConfigChange.Action.UPDATE).get()
    assert lines(minutes) == {"minutes": ("20", "30")}
    assert minutes.actor == staff_user

    # A tag added to clients from the client list (the tag's side of the relation): recorded
    # as a change of each client, not of the tag.
    new_tag = Tag.objects.create(tenant=a.tenant, name="Ad-hoc")
    staff.post(
        admin_url(type(a.client), "changelist"),
        {"action": "add_tag", "_selected_action": [a.client.pk], "apply": "1", "tag": new_tag.pk},
    )
    assert a.client.tags.filter(pk=new_tag.pk).exists()
    tagged = changes_of(a.client).latest("id")
    assert lines(tagged) == {"tags": ("", "added: Ad-hoc")}
    assert (tagged.actor, tagged.tenant) == (staff_user, a.tenant)
    assert not changes_of(new_tag, action=ConfigChange.Action.UPDATE).exists()

    # An API key revoked.
    staff.post(
        admin_url(TenantAPIKey, "changelist"),
        {"action": "revoke_keys", "_selected_action": [a.api_key.pk]},
    )
    revoked = changes_of(a.api_key, action=ConfigChange.Action.UPDATE).get()
    assert lines(revoked) == {"revoked": ("No", "Yes")}

    # A mapping removed by staff is... not possible (no delete): changed instead.
    mapping_page = staff.get(admin_url(a.mapping, "change"))
    staff.post(
        admin_url(a.mapping, "change"),
        changeform_data(mapping_page, psa_user_name=f"{A_MARK} renamed member"),
    )
    renamed = changes_of(a.mapping, action=ConfigChange.Action.UPDATE).get()
    assert lines(renamed)["psa user name"] == (f"{A_MARK} member", f"{A_MARK} renamed member")


def test_credentials_are_recorded_as_changed_never_as_a_value(staff, a):
    staff.post(
        admin_url(PSAConnection, "add"),
        {**CW, "tenant": a.tenant.pk, "private_key": SECRET},
    )
    connection = PSAConnection.objects.get(name="Main PSA")
    created = changes_of(connection, action=ConfigChange.Action.CREATE).get()
    assert lines(created)["credentials"] == ("", "credentials set")

    # Saved again without typing the secret: the credentials did not change.
    page = staff.get(admin_url(connection, "change"))
    staff.post(admin_url(connection, "change"), changeform_data(page, name="Renamed PSA"))
    renamed = changes_of(connection, action=ConfigChange.Action.UPDATE).get()
    assert lines(renamed) == {"name": ("Main PSA", "Renamed PSA")}

    # A new secret typed in.
    staff.post(
        admin_url(connection, "change"),
        changeform_data(page, name="Renamed PSA", private_key=SECRET + "-rotated"),
    )
    changed = changes_of(connection, action=ConfigChange.Action.UPDATE).latest("id")
    assert lines(changed) == {"credentials": ("", "credentials changed")}

    connection.refresh_from_db()
    stored = json.dumps(list(ConfigChange.objects.values_list("changes", flat=True)))
    assert SECRET not in stored
    assert connection.secrets_encrypted not in stored
    page = text(staff.get(HISTORY))
    assert "credentials changed" in page and "credentials set" in page
    assert SECRET not in page and connection.secrets_encrypted not in page


def test_changes_without_a_user_are_the_systems(a):
    connection_save(
        connection=a.connection,
        tenant=a.tenant,
        vendor="connectwise",
        settings={**a.connection.settings, "public_key": "other"},
        secrets={},
        is_active=True,
        name=a.connection.name,
    )
    change = changes_of(a.connection, action=ConfigChange.Action.UPDATE).latest("id")
    assert change.actor is None
    assert "Public key: other" in lines(change)["settings"][1]  # by its label, not its key
    assert "credentials" not in lines(change)  # the secret was kept, not re-encrypted


def test_history_page_filters_by_model_and_user(admin_client, staff, staff_user, a):
    staff.post(admin_url(Tag, "add"), {"tenant": a.tenant.pk, "name": "Filtered"})
    by_model = staff.get(HISTORY, {"model": "tag"})
    assert {e.content_type.model for e in by_model.context["cl"].result_list} == {"tag"}
    by_user = staff.get(HISTORY, {"user": str(staff_user.pk)})
    assert [e.object_repr for e in by_user.context["cl"].result_list] == ["Filtered"]
    system = staff.get(HISTORY, {"user": "system"})
    assert all(e.actor_id is None for e in system.context["cl"].result_list)
    assert "piadesk (system)" in text(system)
    # Superusers see every tenant's, with the tenant shown.
    world_b = build_world(B_MARK)
    everything = admin_client.get(HISTORY)
    assert {e.tenant_id for e in everything.context["cl"].result_list} >= {
        a.tenant.pk,
        world_b.tenant.pk,
    }
    assert B_MARK not in text(staff.get(HISTORY))


def test_history_is_read_only(staff, a):
    change = ConfigChange.objects.filter(tenant=a.tenant).first()
    assert staff.get(admin_url(change, "change")).status_code == 200
    assert staff.post(admin_url(change, "change"), {}).status_code == 403
    assert staff.get(admin_url(ConfigChange, "add")).status_code == 403
    assert staff.post(admin_url(change, "delete"), {"post": "yes"}).status_code == 403


# --- no secret in plain text anywhere in the database --------------------------------------------
def dump_database() -> str:
    """Every row of every table, as text (what a database dump would hold)."""
    chunks = []
    with db.cursor() as cursor:
        for table in db.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {db.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, memoryview):
                        value = value.tobytes()
                    if isinstance(value, bytes):
                        value = value.decode("utf-8", "replace")
                    chunks.append(str(value))
    return "\n".join(chunks)


def test_a_database_dump_holds_no_api_key_or_psa_secret(
    client, api, api_key, tenant, run_payload, caplog
):
    caplog.set_level(logging.DEBUG)
    client.force_login(make_member(tenant, "staff"))
    # A key made in the admin (shown once, on the page answering), besides the fixture's.
    response = client.post(admin_url(TenantAPIKey, "add"), {"tenant": tenant.pk, "name": "svc"})
    admin_key = response.context["key"]
    # Credentials typed in the admin, then changed through the service.
    client.post(admin_url(PSAConnection, "add"), {**CW, "tenant": tenant.pk, "private_key": SECRET})
    saved = PSAConnection.objects.get(name="Main PSA")
    connection_save(
        connection=saved,
        tenant=tenant,
        vendor="connectwise",
        settings=saved.settings,
        secrets={"private_key": SECRET + "-2"},
        name="Main PSA",
    )
    # A run reported with the key (its task queued in django-q's table).
    assert api.post("/api/v1/automation-runs/", run_payload(), format="json").status_code == 201

    dump = dump_database()
    for plain in (api_key, admin_key, SECRET, SECRET + "-2"):
        assert len(plain) > 10
        assert plain not in dump, plain
        assert plain not in caplog.text, plain  # nor in the logs
    # The places that were written to: the history, the admin's log, the task queue.
    assert ConfigChange.objects.filter(content_type__model="psaconnection").count() >= 2
    assert ConfigChange.objects.filter(content_type__model="tenantapikey").count() >= 2
    assert LogEntry.objects.filter(object_repr="svc").exists()
    assert OrmQ.objects.exists()


def test_a_new_tenant_is_recorded_with_its_creator(admin_client, admin_user):
    page = admin_client.get(admin_url(Tenant, "add"))
    response = admin_client.post(
        admin_url(Tenant, "add"), changeform_data(page, name="Brand new MSP")
    )
    assert response.status_code == 302
    tenant = Tenant.objects.get(name="Brand new MSP")
    created = changes_of(tenant, action=ConfigChange.Action.CREATE).get()
    assert (created.actor, created.tenant) == (admin_user, tenant)
    assert lines(created)["name"] == ("(empty)", "Brand new MSP")
