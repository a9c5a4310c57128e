"""Roles: "MSP staff" configure their tenant; "Auditor" reads everything of theirs and can
change nothing. ``grant_role`` gives a user a role and a tenant."""

from __future__ import annotations

import importlib

import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import RequestFactory
from django.urls import URLPattern, reverse

from tests.timelogging.admin_support import admin_url
from tests.timelogging.psa_mocks import RecordingMock
from tests.timelogging.tenancy import A_MARK, build_world, make_member, text
from tests.timelogging.test_isolation import ISOLATED, label
from timelogging.admin import admin_site
from timelogging.models import (
    Automation,
    PSAConnection,
    StaffProfile,
    Tag,
    Tenant,
    TenantAPIKey,
    TimeEntry,
)
from timelogging.services.roles import GROUP_NAMES, ROLE_PERMISSIONS, RoleError, role_grant

pytestmark = pytest.mark.django_db


@pytest.fixture
def a():
    return build_world(A_MARK)


@pytest.fixture
def auditor(client, a):
    client.force_login(make_member(a.tenant, "auditor"))
    return client


@pytest.fixture
def staff(client, a):
    client.force_login(make_member(a.tenant, "staff"))
    return client


# --- the groups --------------------------------------------------------------------------------
def test_the_migration_creates_the_groups_with_the_roles_permissions():
    # Run the data migration itself (a test database may have been flushed since migrating).
    migration = importlib.import_module("timelogging.migrations.0007_roles")
    notices = importlib.import_module("timelogging.migrations.0008_staff_notices")
    Group.objects.filter(name__in=GROUP_NAMES.values()).delete()
    migration.create_roles(apps, None)
    migration.create_roles(apps, None)  # idempotent
    notices.grant(apps, None)  # the permissions on the models added since
    notices.grant(apps, None)
    for role, name in GROUP_NAMES.items():
        codenames = set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))
        assert codenames == ROLE_PERMISSIONS[role], role
    # Run on the real registry, the migrations leave its app config as it was: with
    # models_module None, every later flush (transactional tests) recreated no permission.
    assert apps.get_app_config("timelogging").models_module is not None


def test_auditors_may_only_view():
    assert all(c.startswith("view_") for c in ROLE_PERMISSIONS["auditor"])
    assert "view_configchange" in ROLE_PERMISSIONS["auditor"]
    assert not any(c.startswith("delete_") for c in ROLE_PERMISSIONS["staff"])
    assert {"retry_timeentry", "view_configchange", "change_tenant"} <= ROLE_PERMISSIONS["staff"]
    assert "add_tenant" not in ROLE_PERMISSIONS["staff"]


# --- grant_role ----------------------------------------------------------------------------------
def test_grant_role_command(a):
    user = User.objects.create_user("jane")
    call_command("grant_role", "jane", "--tenant", a.tenant.name, "--role", "auditor")
    user.refresh_from_db()
    assert user.is_staff
    assert user.piadesk_profile.tenant == a.tenant
    assert [g.name for g in user.groups.all()] == ["Auditor"]
    # Another role replaces the first; the tenant stays.
    call_command("grant_role", "jane", "--tenant", a.tenant.name, "--role", "staff")
    assert [g.name for g in user.groups.all()] == ["MSP staff"]
    assert StaffProfile.objects.filter(user=user).count() == 1


def test_grant_role_creates_the_user_when_asked(a, capsys):
    call_command(
        "grant_role", "new.auditor", "--tenant", a.tenant.name, "--role", "auditor", "--create"
    )
    user = User.objects.get(username="new.auditor")
    assert not user.has_usable_password()
    assert "changepassword new.auditor" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nobody", "--tenant", "alpha-qx MSP", "--role", "staff"], "No user 'nobody'"),
        (["jane", "--tenant", "No such MSP", "--role", "staff"], "No tenant named"),
    ],
)
def test_grant_role_says_what_is_wrong(a, args, message):
    User.objects.create_user("jane")
    with pytest.raises(CommandError, match=message):
        call_command("grant_role", *args)


def test_a_member_is_not_moved_to_another_tenant_silently(a):
    user = make_member(a.tenant, "staff")
    other = Tenant.objects.create(name="Other MSP")
    with pytest.raises(RoleError, match="already belongs to"):
        role_grant(user=user, tenant=other, role="staff")
    superuser = User.objects.create_superuser("root", password="pw")
    with pytest.raises(RoleError, match="superuser"):
        role_grant(user=superuser, tenant=a.tenant, role="auditor")


# --- auditors: view everything of theirs, change nothing -----------------------------------------
@pytest.mark.parametrize("model", ISOLATED, ids=label)
def test_auditor_views_but_cannot_change(auditor, a, model):
    obj = a.object_of(model)
    assert auditor.get(admin_url(model, "changelist")).status_code == 200
    page = auditor.get(admin_url(obj, "change"))
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert 'name="_save"' not in text(page)
    assert auditor.get(admin_url(obj, "history")).status_code == 200
    assert auditor.get(admin_url(model, "add")).status_code == 403
    assert auditor.post(admin_url(model, "add"), {"tenant": a.tenant.pk}).status_code == 403
    assert auditor.post(admin_url(obj, "change"), {"name": "changed"}).status_code == 403
    assert auditor.get(admin_url(obj, "delete")).status_code == 403
    assert auditor.post(admin_url(obj, "delete"), {"post": "yes"}).status_code == 403
    assert type(obj)._default_manager.filter(pk=obj.pk).exists()


@pytest.mark.parametrize("model", ISOLATED, ids=label)
def test_auditor_is_offered_no_action(a, model):
    request = RequestFactory().get("/")
    request.user = make_member(a.tenant, "auditor")
    assert admin_site.get_model_admin(model).get_actions(request) == {}


@pytest.mark.parametrize("model", ISOLATED, ids=label)
def test_auditor_cannot_use_the_custom_views_that_change_or_call_the_psa(auditor, a, model):
    obj = a.object_of(model)
    django_views = {"change", "history", "delete"}
    for pattern in admin_site.get_model_admin(model).get_urls():
        name = pattern.name if isinstance(pattern, URLPattern) else None
        if not name or "object_id" not in str(pattern.pattern):
            continue
        if name.rsplit("_", 1)[-1] in django_views:
            continue
        url = reverse(f"admin:{name}", args=[obj.pk])
        with RecordingMock(assert_all_requests_are_fired=False) as psa:
            response = auditor.post(url, {})
        assert response.status_code in (403, 405), name
        assert not psa.calls, name


def test_auditor_cannot_edit_in_the_list_nor_run_actions(auditor, a):
    auditor.post(
        admin_url(Automation, "changelist"),
        {
            "form-TOTAL_FORMS": "1",
            "form-INITIAL_FORMS": "1",
            "form-0-id": a.automation.pk,
            "form-0-minutes": "99",
            "form-0-log_time": "on",
            "_save": "Save",
        },
    )
    for model, action, pk in (
        (TenantAPIKey, "revoke_keys", a.api_key.pk),
        (PSAConnection, "resume_connections", a.connection.pk),
        (TimeEntry, "retry_entries", a.entry.pk),
        (type(a.client), "add_tag", a.client.pk),
    ):
        auditor.post(admin_url(model, "changelist"), {"action": action, "_selected_action": [pk]})
    a.automation.refresh_from_db()
    a.api_key.refresh_from_db()
    a.connection.refresh_from_db()
    a.entry.refresh_from_db()
    assert a.automation.minutes == 20
    assert not a.api_key.revoked
    assert a.connection.paused_at is not None
    assert a.entry.status == TimeEntry.Status.FAILED


def test_auditor_sees_the_history_and_configuration_history(auditor, a):
    for url in (
        admin_url(TimeEntry, "changelist"),
        reverse("admin:reports"),
        reverse("admin:delivery_queue"),
        admin_url(TimeEntry, "export_csv"),
        reverse("admin:timelogging_configchange_changelist"),
    ):
        assert auditor.get(url).status_code == 200, url
    page = text(auditor.get(admin_url(a.connection, "change")))
    assert a.connection.secrets_encrypted not in page
    assert "privkey456" not in page


# --- staff: configure their tenant -------------------------------------------------------------
def test_staff_change_their_settings_but_add_or_delete_no_tenant(staff, a):
    page = staff.get(admin_url(a.tenant, "change"))
    assert page.status_code == 200 and page.context["has_change_permission"]
    assert staff.get(admin_url(Tenant, "add")).status_code == 403
    assert staff.get(admin_url(a.tenant, "delete")).status_code == 403
    assert staff.get(admin_url(a.tag, "delete")).status_code == 403


def test_staff_manage_the_catalogue_connections_and_keys(staff, a):
    staff.post(admin_url(Tag, "add"), {"tenant": a.tenant.pk, "name": "Ad-hoc"})
    assert Tag.objects.get(name="Ad-hoc").tenant == a.tenant
    staff.post(admin_url(TenantAPIKey, "add"), {"tenant": a.tenant.pk, "name": "service"})
    assert TenantAPIKey.objects.get(name="service").tenant == a.tenant
    staff.post(
        admin_url(TenantAPIKey, "changelist"),
        {"action": "revoke_keys", "_selected_action": [a.api_key.pk]},
    )
    a.api_key.refresh_from_db()
    assert a.api_key.revoked


def test_staff_retry_failed_entries_with_the_retry_permission(staff, a):
    page = text(staff.get(admin_url(TimeEntry, "changelist")))
    assert "retry_entries" in page
    staff.post(
        admin_url(TimeEntry, "changelist"),
        {"action": "retry_entries", "_selected_action": [a.entry.pk]},
    )
    a.entry.refresh_from_db()
    assert a.entry.status == TimeEntry.Status.PENDING
    # The history stays read-only for staff too.
    assert staff.post(admin_url(a.entry, "change"), {}).status_code == 403
