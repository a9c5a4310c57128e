"""The delivery queue (a site view, ``PiadeskAdminSite``): what waits, since when, what failed
and why, which connections are paused, for the tenants the user may see."""

from __future__ import annotations

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from timelogging.admin.display import entry_status_badge, error_class_label, one_line
from timelogging.models import PSAConnection, TimeEntry
from timelogging.selectors import scope_to_tenants, visible_tenant_ids
from timelogging.services.delivery import queue_stats

REFRESH_SECONDS = 60
# Paused connections listed, oldest pause first (a page, not a scan of every tenant's).
MAX_PAUSED_SHOWN = 200


def delivery_queue_page(site: admin.AdminSite, request: HttpRequest) -> HttpResponse:
    # Whoever may see the time entries (staff and auditors) sees their queue.
    if not site.get_model_admin(TimeEntry).has_view_permission(request):
        raise PermissionDenied
    tenant_ids = visible_tenant_ids(request.user)
    stats = queue_stats(tenant_ids=tenant_ids)
    # Codes in words (display.py): statuses as the list's badges, error classes by their
    # labels (whose problem it is), a pause's reason on one line.
    statuses = [
        {
            "value": value,
            "label": label,
            "badge": entry_status_badge(value),
            "count": stats.by_status.get(value, 0),
        }
        for value, label in TimeEntry.Status.choices
        if value != TimeEntry.Status.POSTED
    ]
    failures = [
        {
            "value": value,
            "label": error_class_label(value) or "No error recorded (held behind a pause)",
            "count": count,
        }
        for value, count in sorted(stats.failures_by_class.items(), key=lambda kv: -kv[1])
    ]
    changelist = reverse("admin:timelogging_timeentry_changelist", current_app=site.name)
    connections = scope_to_tenants(
        PSAConnection.objects.filter(paused_at__isnull=False).select_related("tenant"),
        tenant_ids,
    ).order_by("paused_at")[:MAX_PAUSED_SHOWN]
    paused = [{"connection": c, "why": one_line(c.pause_reason, empty="-")} for c in connections]
    context = {
        **site.each_context(request),
        "opts": TimeEntry._meta,
        "title": "Delivery queue",
        "statuses": statuses,
        "oldest_waiting": stats.oldest_waiting,
        "failures": failures,
        "paused": paused,
        "several_tenants": tenant_ids is None or len(tenant_ids) > 1,
        "refresh_seconds": REFRESH_SECONDS,
        "changelist": changelist,
    }
    return TemplateResponse(request, "admin/timelogging/timeentry/queue.html", context)
