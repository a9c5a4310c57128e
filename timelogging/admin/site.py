"""piadesk's admin site: the one ``AdminSite`` the project serves at /admin/ (``piadesk/urls.py``).

It owns
- the index, with the product pages (Reports, the Delivery queue) above the models;
- the product pages that are not a list of one model, as site views (``get_urls``): reports,
  the delivery queue, and the tenant page's preview and "Test connection";
- every registration: the product's pages (``timelogging/admin/<concern>.py``, each a
  ``TenantScopedModelAdmin``, registered with ``@admin.register(Model, site=admin_site)``) and,
  explicitly here, the other apps' pages of rows that belong to no tenant, for superusers
  only (users and groups, django-q2's task queue, django-axes' login lockouts).

Django's admin is installed without autodiscovery (``SimpleAdminConfig``): other apps' admin
modules register their pages on Django's default ``admin.site``, which is not served, so
nothing reaches staff unless it is registered here.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import update_wrapper
from typing import Any, TypeVar, cast

from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse, HttpResponseBase
from django.template.response import SimpleTemplateResponse
from django.urls import URLPattern, URLResolver, path, reverse
from django.utils import timezone

from timelogging.admin.base import superuser_only
from timelogging.admin.queue import delivery_queue_page
from timelogging.admin.reports import reports_page
from timelogging.admin.tenant_page import settings_preview_page, test_connection_page
from timelogging.selectors import viewing_time_zone

_View = TypeVar("_View", bound=Callable[..., HttpResponseBase])


class PiadeskAdminSite(admin.AdminSite):
    site_header = "piadesk administration"
    site_title = "piadesk administration"
    index_title = "Automated time logging"
    index_template = "admin/piadesk_index.html"
    # No navigation sidebar: it takes a fifth of a 1366 px screen from every page, and the
    # history lists need the width (the index, one click away in the breadcrumbs, lists the
    # same pages).
    enable_nav_sidebar = False

    def get_urls(self) -> list[URLResolver | URLPattern]:
        # Before Django's own: its last pattern is a catch-all for unknown pages. The addresses
        # are those the pages had beside the models they read (bookmarks and the links in the
        # notices already sent keep working).
        view = self.admin_view
        return [
            path("timelogging/timeentry/reports/", view(self.reports_view), name="reports"),
            path(
                "timelogging/timeentry/reports/report.csv",
                view(self.reports_csv_view),
                name="reports_csv",
            ),
            path(
                "timelogging/timeentry/queue/",
                view(self.delivery_queue_view),
                name="delivery_queue",
            ),
            path(
                "timelogging/tenant/<path:object_id>/preview/",
                view(self.tenant_preview_view),
                name="tenant_preview",
            ),
            path(
                "timelogging/tenant/<path:object_id>/test-connection/",
                view(self.tenant_test_connection_view),
                name="tenant_test_connection",
            ),
            *super().get_urls(),
        ]

    def admin_view(self, view: _View, cacheable: bool = False) -> _View:
        """Every page of the site shows times in the zone of the tenant it is about
        (``request_time_zone``), rendered in that zone, labelled by ``DATETIME_FORMAT``."""

        def in_zone(request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
            with timezone.override(request_time_zone(request)):
                response = view(request, *args, **kwargs)
                # Rendered here, in the zone (Django would render once the view has returned).
                if isinstance(response, SimpleTemplateResponse) and not response.is_rendered:
                    response.render()
                return response

        return super().admin_view(cast(_View, update_wrapper(in_zone, view)), cacheable)

    def index(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> Any:
        context = {"product_pages": self.product_pages(request), **(extra_context or {})}
        return super().index(request, context)

    def product_pages(self, request: HttpRequest) -> list[dict[str, str]]:
        """The index's links to the pages that are not a model's list, for whoever may see
        them (the history's viewers: staff and auditors)."""
        if not request.user.has_perm("timelogging.view_timeentry"):
            return []
        return [
            {
                "title": "Reports",
                "url": reverse("admin:reports", current_app=self.name),
                "description": "Time logged per client, automation and PSA user; runs "
                "logged and skipped, and why.",
            },
            {
                "title": "Delivery queue",
                "url": reverse("admin:delivery_queue", current_app=self.name),
                "description": "Entries on their way to the PSA: what waits, what failed "
                "and why, which connections are paused.",
            },
        ]

    # -- the product pages (the work is in their modules) --------------------------------------
    def reports_view(self, request: HttpRequest) -> HttpResponse:
        return reports_page(self, request)

    def reports_csv_view(self, request: HttpRequest) -> HttpResponse:
        return reports_page(self, request, as_csv=True)

    def delivery_queue_view(self, request: HttpRequest) -> HttpResponse:
        return delivery_queue_page(self, request)

    def tenant_preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return settings_preview_page(self, request, object_id)

    def tenant_test_connection_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        return test_connection_page(self, request, object_id)


admin_site = PiadeskAdminSite(name="admin")

# The parameters that name the tenant a page is about: the history lists' tenant filter, the
# reports' tenant choice.
TENANT_PARAMS = ("tenant__id__exact", "tenant")


def request_time_zone(request: HttpRequest) -> str:
    """The zone of the tenant a page is about: staff and auditors always see their tenant's;
    superusers the tenant they chose in a filter or form (a change page narrows it to its
    object's tenant, ``TenantScopedModelAdmin``), else the site's."""
    tenant_id = None
    for name in TENANT_PARAMS:
        raw = request.GET.get(name, "")
        if raw.isdigit() and len(raw) < 19:  # a bigint, not a number past 64 bits
            tenant_id = int(raw)
            break
    return viewing_time_zone(request.user, tenant_id=tenant_id)


def register_superuser_only_pages(site: admin.AdminSite) -> None:
    """Other apps' pages of rows that belong to no tenant, for superusers only: users and
    groups (a staff member who could edit users could make themselves a superuser or join
    another tenant's group), the task queue (every task's arguments are entry ids of any
    tenant, and "resubmit" would run them again), login lockouts (they name users and
    addresses of every tenant). Each keeps the app's own admin class."""
    from django.contrib.auth.admin import GroupAdmin, UserAdmin
    from django.contrib.auth.models import Group, User
    from django_q import admin as q_admin
    from django_q.conf import Conf
    from django_q.models import Failure, OrmQ, Schedule, Success

    site.register(User, superuser_only(UserAdmin))
    site.register(Group, superuser_only(GroupAdmin))
    site.register(Schedule, superuser_only(q_admin.ScheduleAdmin))
    site.register(Success, superuser_only(q_admin.TaskAdmin))
    site.register(Failure, superuser_only(q_admin.FailAdmin))
    if Conf.ORM or Conf.TESTING:  # the broker's queue is a table with the ORM broker only
        site.register(OrmQ, superuser_only(q_admin.QueueAdmin))
    if getattr(settings, "AXES_ENABLE_ADMIN", True):
        from axes import admin as axes_admin
        from axes.models import AccessAttempt, AccessFailureLog, AccessLog

        site.register(AccessAttempt, superuser_only(axes_admin.AccessAttemptAdmin))
        site.register(AccessLog, superuser_only(axes_admin.AccessLogAdmin))
        site.register(AccessFailureLog, superuser_only(axes_admin.AccessFailureLogAdmin))
