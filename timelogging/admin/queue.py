"""The delivery queue (a site view, ``PiadeskAdminSite``): what waits, since when, what failed
and why, which connections are paused, for the tenants the user may see."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from timelogging.models import PSAConnection, TimeEntry
from timelogging.selectors import scope_to_tenants, visible_tenant_ids
from timelogging.services.delivery import queue_stats


def delivery_queue_page(site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    # Whoever may see the time entries (staff and auditors) sees their queue.
    if not site.get_model_admin(TimeEntry).has_view_permission(request):
        raise PermissionDenied
    tenant_ids = visible_tenant_ids(request.user)
    stats = queue_stats(tenant_ids=tenant_ids)
    statuses = [
        (label, value, stats.by_status.get(value, 0))
        for value, label in TimeEntry.Status.choices
        if value != TimeEntry.Status.POSTED
    ]
    changelist = reverse("admin:timelogging_timeentry_changelist", current_app=site.name)
    paused = scope_to_tenants(
        PSAConnection.objects.filter(paused_at__isnull=False).select_related("tenant"),
        tenant_ids,
    )
    context = {
        **site.each_context(request),
        "opts": TimeEntry._meta,
        "title": "Delivery queue",
        "statuses": statuses,
        "oldest_waiting": stats.oldest_waiting,
        "failures": sorted(stats.failures_by_class.items(), key=lambda kv: -kv[1]),
        "paused": paused,
        "changelist": changelist,
    }
    return TemplateResponse(request, "admin/timelogging/timeentry/queue.html", context)
