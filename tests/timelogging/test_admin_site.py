"""The admin site as one piece (issue 12): PiadeskAdminSite owns the index, the product pages
(site views), every registration, and the one rule of who sees which tenant."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import AnonymousUser, Group, User
from django.urls import resolve, reverse
from rest_framework_api_key.models import APIKey

from tests.factories import TenantFactory
from tests.timelogging.tenancy import make_member
from timelogging.admin import admin_site
from timelogging.admin.site import PiadeskAdminSite
from timelogging.models import ConfigChange, TenantAPIKey
from timelogging.selectors import visible_tenant_ids

pytestmark = pytest.mark.django_db


def test_the_served_admin_is_piadesks_site():
    assert isinstance(admin_site, PiadeskAdminSite)
    match = resolve("/admin/")
    assert match.func.admin_site is admin_site
    for name in ("reports", "delivery_queue"):
        assert resolve(reverse(f"admin:{name}")).namespace == "admin"


def test_only_what_is_registered_explicitly_is_there():
    # Other apps' own registrations (the library's tenant-less API keys, auditlog's page of
    # the configuration history) land on Django's default site, which is not served.
    assert not admin_site.is_registered(APIKey)
    assert type(admin_site.get_model_admin(ConfigChange)).__name__ == "ConfigChangeAdmin"
    assert admin_site is not admin.site
    assert not isinstance(admin.site, PiadeskAdminSite)


def test_index_links_to_the_product_pages(admin_client):
    page = admin_client.get(reverse("admin:index")).content.decode()
    assert f'href="{reverse("admin:reports")}"' in page
    assert f'href="{reverse("admin:delivery_queue")}"' in page


@pytest.mark.parametrize("role", ["staff", "auditor"])
def test_staff_and_auditors_see_the_product_pages_on_the_index(client, role):
    client.force_login(make_member(TenantFactory(), role))
    page = client.get(reverse("admin:index")).content.decode()
    assert "Reports" in page and "Delivery queue" in page
    assert client.get(reverse("admin:reports")).status_code == 200
    assert client.get(reverse("admin:delivery_queue")).status_code == 200


def test_a_user_without_the_history_permission_gets_no_product_pages(client):
    user = User.objects.create_user("plain", password="pw", is_staff=True)
    client.force_login(user)
    page = client.get(reverse("admin:index")).content.decode()
    assert reverse("admin:reports") not in page
    assert client.get(reverse("admin:reports")).status_code == 403
    assert client.get(reverse("admin:delivery_queue")).status_code == 403


@pytest.mark.parametrize("model", [User, Group])
def test_users_and_groups_are_superuser_only(client, model):
    client.force_login(make_member(TenantFactory(), "staff"))
    opts = model._meta
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
    assert client.get(url).status_code == 403


# --- visible_tenant_ids: the one rule --------------------------------------------------------
def test_visible_tenant_ids_for_each_kind_of_caller():
    own, other = TenantFactory(), TenantFactory()
    superuser = User.objects.create_superuser("root", password="pw")
    member = make_member(own, "staff")
    stranger = User.objects.create_user("stranger", password="pw", is_staff=True)
    key, _ = TenantAPIKey.objects.create_key(name="svc", tenant=own)
    assert visible_tenant_ids(superuser) is None
    assert visible_tenant_ids(member) == [own.pk]
    assert visible_tenant_ids(stranger) == []
    assert visible_tenant_ids(AnonymousUser()) == []
    assert visible_tenant_ids(key) == [own.pk]
    superuser.is_active = False
    assert visible_tenant_ids(superuser) == []
    assert other.pk not in (visible_tenant_ids(member) or [])


def test_visible_tenant_ids_asks_the_database_once_per_user_object(
    django_assert_num_queries,
):
    member = make_member(TenantFactory(), "auditor")
    with django_assert_num_queries(1):
        for _ in range(5):
            visible_tenant_ids(member)
