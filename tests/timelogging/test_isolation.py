"""One tenant never sees or touches another tenant's data in the admin.

Parametrized over the admin site's registry: an admin registered later is covered (or fails
``test_every_admin_is_tenant_isolated_or_superuser_only``) without anyone remembering to add
it here. Staff of tenant A look at every page with tenant B's rows in the database; B's rows
carry ``B_MARK`` in every name, so a leak is a substring of the response.
"""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db.models import Model
from django.urls import URLPattern, reverse

from tests.factories import PSAConnectionFactory
from tests.timelogging.admin_support import admin_url
from tests.timelogging.psa_mocks import RecordingMock
from tests.timelogging.tenancy import (
    A_MARK,
    B_MARK,
    TenantWorld,
    build_world,
    make_member,
    text,
)
from timelogging.admin import admin_site
from timelogging.admin.base import SuperuserOnlyAdminMixin, TenantScopedModelAdmin, tenant_path
from timelogging.models import ConfigChange, PSAConnection, StaffProfile, Tag, Tenant, TimeEntry

pytestmark = pytest.mark.django_db

REGISTRY = sorted(admin_site._registry.items(), key=lambda item: item[0]._meta.label)
ISOLATED = [model for model, ma in REGISTRY if isinstance(ma, TenantScopedModelAdmin)]
SUPERUSER_ONLY = [model for model, ma in REGISTRY if isinstance(ma, SuperuserOnlyAdminMixin)]
AUTOCOMPLETE = [
    (model, field)
    for model, ma in REGISTRY
    if isinstance(ma, TenantScopedModelAdmin)
    for field in ma.autocomplete_fields
]


def label(value: Any) -> str:
    if isinstance(value, type) and issubclass(value, Model):
        return value._meta.label
    return str(value)


@pytest.fixture
def worlds() -> tuple[TenantWorld, TenantWorld]:
    return build_world(A_MARK), build_world(B_MARK)


@pytest.fixture
def a(worlds):
    return worlds[0]


@pytest.fixture
def b(worlds):
    return worlds[1]


@pytest.fixture
def staff(client, a):
    """A logged-in client of MSP staff of tenant A."""
    client.force_login(make_member(a.tenant, "staff"))
    return client


def object_urls(model: type[Model]) -> list[str]:
    """The names of every URL of ``model``'s admin that takes an object id: Django's change,
    history and delete, and each custom view (test connection, PSA user pickers, ...)."""
    names = []
    for pattern in admin_site.get_model_admin(model).get_urls():
        if isinstance(pattern, URLPattern) and pattern.name and "object_id" in str(pattern.pattern):
            names.append(pattern.name)
    return names


def without_echo(page: str, *terms: str) -> str:
    """The page without the places that repeat what was typed in the search box or a text
    filter (the input's value, the links that keep it, the "Searched ... for “term”" message):
    what is left is what the page found."""
    for term in terms:
        for echo in (f'value="{term}"', f"={term}", f"%3D{term}", f"“{term}”"):
            page = page.replace(echo, "")
    return page


def no_http() -> RecordingMock:
    """Any request to a PSA fails (and is recorded): isolation must stop before the PSA."""
    return RecordingMock(assert_all_requests_are_fired=False)


# --- every admin is covered --------------------------------------------------------------------
def test_every_admin_is_tenant_isolated_or_superuser_only():
    loose = [
        label(model)
        for model, ma in REGISTRY
        if not isinstance(ma, TenantScopedModelAdmin | SuperuserOnlyAdminMixin)
    ]
    assert loose == []
    # The pages this suite must see, whatever else gets registered.
    assert {Tenant, Tag, PSAConnection, TimeEntry, ConfigChange} <= set(ISOLATED)
    assert {"auth.User", "auth.Group", "django_q.Success", "django_q.Failure"} <= {
        label(m) for m in SUPERUSER_ONLY
    }


# --- changelists -------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ISOLATED, ids=label)
def test_changelist_lists_only_the_own_tenant(staff, a, b, model):
    response = staff.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    shown = {obj.pk for obj in response.context["cl"].result_list}
    assert a.object_of(model).pk in shown
    assert b.object_of(model).pk not in shown
    assert B_MARK not in text(response)


@pytest.mark.parametrize("model", ISOLATED, ids=label)
def test_changelist_asked_for_the_other_tenant_shows_nothing_of_it(staff, b, model):
    for params in (
        {"tenant__id__exact": b.tenant.pk},
        {"tenant__id__exact": b.tenant.pk, "client": b.client.pk, "tag": b.tag.pk},
        {"automation": b.automation.pk, "psa_user": f"{B_MARK}-member"},
        {"q": B_MARK},
        {"q": f"{B_MARK}-run"},
    ):
        response = staff.get(admin_url(model, "changelist"), params, follow=True)
        echoed = [v for v in params.values() if isinstance(v, str)]
        assert B_MARK not in without_echo(text(response), *echoed), params
        if "cl" in (response.context or {}):
            assert b.object_of(model).pk not in {o.pk for o in response.context["cl"].result_list}


# --- one object of the other tenant: change, history, delete, custom views ---------------------
@pytest.mark.parametrize("model", ISOLATED, ids=label)
def test_other_tenants_object_does_not_exist_for_staff(staff, b, model):
    obj = b.object_of(model)
    for name in object_urls(model):
        url = reverse(f"admin:{name}", args=[obj.pk])
        with no_http() as psa:
            got = staff.get(url)
            posted = staff.post(url, {"name": "hijacked", "tenant": b.tenant.pk})
        for response in (got, posted):
            assert response.status_code in (302, 403, 404, 405), (name, response.status_code)
            assert B_MARK not in text(response), name
        assert not psa.calls, name
    # Django's own views redirect with "... doesn't exist" instead of showing the object.
    response = staff.get(admin_url(obj, "change"), follow=True)
    assert B_MARK not in text(response)
    assert any("doesn’t exist" in str(m) for m in response.context["messages"])
    if any(f.name == "name" for f in obj._meta.fields):
        assert not type(obj)._default_manager.filter(pk=obj.pk, name="hijacked").exists()


# --- choices on the forms ----------------------------------------------------------------------
@pytest.mark.parametrize("model", ISOLATED, ids=label)
def test_form_choices_are_the_own_tenants(staff, a, model):
    response = staff.get(admin_url(model, "add"))
    if response.status_code == 403:  # staff add none of these (tenants, history)
        response = staff.get(admin_url(a.object_of(model), "change"))
    assert response.status_code == 200
    assert B_MARK not in text(response)
    form = response.context["adminform"].form
    for name, field in form.fields.items():
        queryset = getattr(field, "queryset", None)
        if queryset is None or tenant_path(queryset.model) is None:
            continue
        lookup = "pk" if queryset.model is Tenant else "tenant_id"
        tenants = set(queryset.values_list(lookup, flat=True))
        assert tenants <= {a.tenant.pk}, (name, tenants)


def test_posting_the_other_tenant_is_refused(staff, a, b):
    response = staff.post(admin_url(Tag, "add"), {"tenant": b.tenant.pk, "name": "mine now"})
    assert response.status_code == 200
    assert "tenant" in response.context["adminform"].form.errors
    client_add = staff.post(
        admin_url(type(a.client), "add"),
        {"tenant": a.tenant.pk, "key": "new", "name": "New", "tags": [b.tag.pk]},
    )
    assert "tags" in client_add.context["adminform"].form.errors
    assert not Tag.objects.filter(name="mine now").exists()


def test_staff_add_to_their_own_tenant_by_default(staff, a):
    response = staff.get(admin_url(Tag, "add"))
    assert response.context["adminform"].form.initial["tenant"] == a.tenant.pk
    staff.post(admin_url(Tag, "add"), {"tenant": a.tenant.pk, "name": "Ad-hoc"})
    assert Tag.objects.get(name="Ad-hoc").tenant == a.tenant


# --- autocomplete ------------------------------------------------------------------------------
@pytest.mark.parametrize(("model", "field"), AUTOCOMPLETE, ids=lambda v: label(v))
def test_autocomplete_offers_only_the_own_tenant(staff, b, model, field):
    for term in ("", B_MARK, "MSP"):
        response = staff.get(
            "/admin/autocomplete/",
            {
                "term": term,
                "app_label": model._meta.app_label,
                "model_name": model._meta.model_name,
                "field_name": field,
            },
        )
        assert response.status_code == 200
        assert B_MARK not in text(response)
        target = model._meta.get_field(field).remote_field.model
        ids = {r["id"] for r in response.json()["results"]}
        assert str(b.object_of(target).pk) not in ids


# --- the pages beside the changelists -----------------------------------------------------------
def test_admin_index_and_recent_actions(staff, admin_client, b):
    # A superuser edits tenant B's tag: it is in the superuser's recent actions, not A's.
    admin_client.post(
        admin_url(b.tag, "change"), {"tenant": b.tenant.pk, "name": f"{B_MARK} renamed"}
    )
    page = text(staff.get("/admin/"))
    assert B_MARK not in page
    assert "Task queue" not in page and "Authentication" not in page
    assert "Configuration history" in page
    assert f"{B_MARK} renamed" in text(admin_client.get("/admin/"))


def test_csv_export_holds_only_the_own_tenant(staff, a, b):
    for params in ({}, {"tenant__id__exact": b.tenant.pk}, {"client": b.client.pk}):
        response = staff.get(admin_url(TimeEntry, "export_csv"), params, follow=True)
        body = text(response)
        assert B_MARK not in body
    assert f"{A_MARK}-run" in text(staff.get(admin_url(TimeEntry, "export_csv")))


def test_reports_show_only_the_own_tenant(staff, a, b):
    url = reverse("admin:reports")
    assert B_MARK not in text(staff.get(url, {"tenant": b.tenant.pk}))
    page = staff.get(url)
    assert page.context["tenant"] == a.tenant
    assert B_MARK not in text(page)


def test_delivery_queue_shows_only_the_own_tenant(staff, a, b):
    response = staff.get(reverse("admin:delivery_queue"))
    page = text(response)
    assert B_MARK not in page
    assert f"{A_MARK} credentials were refused" in page
    counts = {s["value"]: s["count"] for s in response.context["statuses"]}
    assert counts[TimeEntry.Status.FAILED] == 1  # A's only; B has one too


def test_psa_tools_endpoints_of_the_other_tenant(staff, b):
    with no_http() as psa:
        tenant_users = staff.get(reverse("admin:timelogging_tenant_psa_users", args=[b.tenant.pk]))
        connection_users = staff.get(
            reverse("admin:timelogging_psaconnection_psa_users", args=[b.connection.pk])
        )
        test_button = staff.post(
            reverse("admin:timelogging_psaconnection_test", args=[b.connection.pk])
        )
    assert tenant_users.status_code == 404 and connection_users.status_code == 404
    assert test_button.status_code == 302
    assert not psa.calls


def test_actions_on_the_other_tenants_rows_do_nothing(staff, b):
    """Actions run on the changelist's queryset: ids of another tenant's rows are ignored."""
    staff.post(
        admin_url(PSAConnection, "changelist"),
        {"action": "resume_connections", "_selected_action": [b.connection.pk]},
    )
    staff.post(
        admin_url(TimeEntry, "changelist"),
        {"action": "retry_entries", "_selected_action": [b.entry.pk]},
    )
    b.connection.refresh_from_db()
    b.entry.refresh_from_db()
    assert b.connection.paused_at is not None
    assert b.entry.status == TimeEntry.Status.FAILED


# --- pages of no tenant: superusers only --------------------------------------------------------
@pytest.mark.parametrize("model", SUPERUSER_ONLY, ids=label)
def test_pages_of_no_tenant_are_for_superusers_only(client, admin_client, a, model):
    powerful = make_member(a.tenant, "staff", username="powerful")
    powerful.user_permissions.set(Permission.objects.all())  # even with every permission
    client.force_login(User.objects.get(pk=powerful.pk))
    assert client.get(admin_url(model, "changelist")).status_code == 403
    assert client.get(admin_url(model, "add")).status_code == 403
    assert admin_client.get(admin_url(model, "changelist")).status_code == 200
    index = text(client.get("/admin/"))
    assert str(model._meta.verbose_name_plural).capitalize() not in index


def test_task_queue_pages_hide_the_entry_ids_of_every_tenant(client, a, b):
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    async_task("timelogging.tasks.post_time_entry", b.entry.pk)
    assert OrmQ.objects.exists()
    client.force_login(make_member(a.tenant, "staff"))
    assert client.get(admin_url(OrmQ, "changelist")).status_code == 403


# --- no profile: nothing -----------------------------------------------------------------------
@pytest.mark.parametrize("model", ISOLATED, ids=label)
def test_staff_without_a_tenant_see_nothing(client, a, b, model):
    loner = User.objects.create_user("loner", password="pw", is_staff=True)
    loner.user_permissions.set(Permission.objects.filter(content_type__app_label="timelogging"))
    assert not StaffProfile.objects.filter(user=loner).exists()
    client.force_login(User.objects.get(pk=loner.pk))
    response = client.get(admin_url(model, "changelist"))
    assert response.status_code == 200
    assert list(response.context["cl"].result_list) == []
    assert client.get(admin_url(model, "add")).status_code == 403


def test_superusers_see_every_tenant(admin_client, a, b):
    response = admin_client.get(admin_url(Tag, "changelist"))
    shown = {t.pk for t in response.context["cl"].result_list}
    assert {a.tag.pk, b.tag.pk} <= shown
    assert admin_client.get(admin_url(b.connection, "change")).status_code == 200


def test_a_new_tenants_connection_is_not_offered_to_others(staff, a):
    other = PSAConnectionFactory(name=f"{B_MARK} late connection")
    response = staff.get(admin_url(type(a.mapping), "add"))
    choices = response.context["adminform"].form.fields["connection"].queryset
    assert other not in choices and a.connection in choices
