"""The auditors' history: every run reported, every entry posted and each try. Read-only."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from timelogging.admin import entry_operations
from timelogging.admin.base import ReadOnlyInline, admin_link
from timelogging.admin.display import (
    decision_badge,
    duration_text,
    entry_status_badge,
    error_class_label,
    one_line,
)
from timelogging.admin.exchanges import exchanges_html
from timelogging.admin.exports import export_csv_view
from timelogging.admin.filters import (
    AutomationFilter,
    ClientFilter,
    CreatedFilter,
    ErrorClassFilter,
    PSAUserFilter,
    ReceivedFilter,
    TenantFilter,
)
from timelogging.admin.search import HistorySearchModelAdmin
from timelogging.admin.site import admin_site
from timelogging.audit import Operation
from timelogging.exports import admin_zone, time_entries_csv_response
from timelogging.models import AutomationRun, PostAttempt, TimeEntry


@admin.register(AutomationRun, site=admin_site)
class AutomationRunAdmin(HistorySearchModelAdmin):
    # Fits 1366 px (HistoryModelAdmin): names and the starter cut to one line, the decision a
    # badge and why a run was skipped in words beside it. The run id (long) is on the run's
    # page and found by the search.
    list_display = (
        "received_at",
        "tenant_name",
        "ticket_id",
        "client_name",
        "automation_name",
        "started_by_line",
        "decision_badge",
        "entry_status",
    )
    list_display_links = ("received_at",)
    list_select_related = ("tenant", "client", "automation", "entry")
    list_only = (
        "received_at",
        "run_id",
        "ticket_id",
        "started_by",
        "decision",
        "skip_reason",
        "tenant__name",
        "client__name",
        "client__key",
        "automation__name",
        "automation__key",
        "entry__id",
        "entry__status",
    )
    # No filter here lists its choices from the runs table (see admin/filters.py).
    list_filter = (
        ReceivedFilter,
        "decision",
        "skip_reason",
        TenantFilter,
        ClientFilter,
        AutomationFilter,
    )
    indexed_sort_fields = ("received_at",)
    search_fields = ("run_id", "ticket_id")
    exact_label = "exact run ids and ticket numbers"
    search_help_text = (
        "Exact run id or ticket number, the starter's e-mail, or part of a client's or an "
        "automation's name."
    )
    fieldsets = [
        (None, {"fields": ["run_id", "reference_text", "tenant", "client", "automation"]}),
        (
            "Run",
            {
                "fields": [
                    "ticket_id",
                    "started_by",
                    "started_at",
                    "completed_at",
                    "duration",
                    "outcome",
                    "summary",
                    "received_at",
                ]
            },
        ),
        ("Decision", {"fields": ["decision", "reason", "entry_link"]}),
    ]
    readonly_fields = ("reference_text", "received_at", "duration", "reason", "entry_link")

    def get_queryset(self, request: HttpRequest) -> QuerySet[AutomationRun]:
        return (
            super().get_queryset(request).select_related("tenant", "client", "automation", "entry")
        )

    @admin.display(description="Reason")
    def reason(self, obj: AutomationRun) -> str:
        return obj.reason

    @admin.display(description="Duration")
    def duration(self, obj: AutomationRun) -> str:
        return duration_text((obj.completed_at - obj.started_at).total_seconds())

    # -- the list's columns --------------------------------------------------------------------
    @admin.display(description="Client")
    def client_name(self, obj: AutomationRun) -> Any:
        return one_line(str(obj.client))

    @admin.display(description="Automation")
    def automation_name(self, obj: AutomationRun) -> Any:
        return one_line(str(obj.automation))

    @admin.display(description="Started by")
    def started_by_line(self, obj: AutomationRun) -> Any:
        return one_line(obj.started_by)

    @admin.display(description="Decision", ordering="decision")
    def decision_badge(self, obj: AutomationRun) -> Any:
        # "Skipped" followed by why, on one line.
        if obj.decision == AutomationRun.Decision.LOG:
            return decision_badge(obj)
        return format_html(
            '<span class="piadesk-badge-and-line">{}{}</span>',
            decision_badge(obj),
            one_line(obj.get_skip_reason_display()),
        )

    @admin.display(description="Time entry")
    def entry_status(self, obj: AutomationRun) -> Any:
        entry = getattr(obj, "entry", None)
        return admin_link(entry, entry_status_badge(entry.status)) if entry else "-"

    @admin.display(description="Reference")
    def reference_text(self, obj: AutomationRun) -> str:
        return obj.reference_text

    @admin.display(description="Time entry")
    def entry_link(self, obj: AutomationRun) -> str:
        entry = getattr(obj, "entry", None)
        return admin_link(entry, entry.get_status_display() if entry else None)


class PostAttemptInline(ReadOnlyInline):
    model = PostAttempt
    fields = (
        "number",
        "started_at",
        "duration",
        "outcome",
        "http_status",
        "error",
        "exchanges_text",
    )
    readonly_fields = ("duration", "exchanges_text")
    ordering = ("number",)
    verbose_name_plural = "Posting attempts"

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # The attempts are part of an entry's history: whoever may view the entry sees them.
        return request.user.has_perm("timelogging.view_timeentry") or super().has_view_permission(
            request, obj
        )

    @admin.display(description="Duration")
    def duration(self, obj: PostAttempt) -> str:
        return duration_text(obj.duration_ms / 1000)

    @admin.display(description="HTTP exchanges")
    def exchanges_text(self, obj: PostAttempt) -> str:
        return exchanges_html(obj.exchanges)


@admin.register(TimeEntry, site=admin_site)
class TimeEntryAdmin(HistorySearchModelAdmin):
    # Fits 1366 px (HistoryModelAdmin): the ticket links the run, the status a badge, the
    # error one line (the whole of it on hover and on the entry's page).
    list_display = (
        "created_at",
        "tenant_name",
        "ticket_link",
        "client_name",
        "automation_name",
        "psa_user_line",
        "minutes",
        "status_badge",
        "error_line",
    )
    list_display_links = ("created_at",)
    list_select_related = ("run", "tenant", "run__client", "run__automation")
    list_only = (
        "created_at",
        "status",
        "minutes",
        "attempts",
        "psa_user_ref",
        "psa_user_name",
        "psa_entry_id",
        "error",
        "error_class",
        "tenant__name",
        "run__id",
        "run__ticket_id",
        "run__client__name",
        "run__client__key",
        "run__automation__name",
        "run__automation__key",
    )
    # No filter here lists its choices from the entries table (see admin/filters.py).
    list_filter = (
        CreatedFilter,
        "status",
        ErrorClassFilter,
        PSAUserFilter,
        TenantFilter,
        ClientFilter,
        AutomationFilter,
    )
    indexed_sort_fields = ("created_at",)
    search_fields = ("run__run_id", "run__ticket_id", "psa_entry_id")
    exact_label = "exact run ids, ticket numbers and PSA entry ids"
    run_path = "run__"
    search_help_text = (
        "Exact run id, ticket number or PSA entry id, the starter's e-mail, or part of a "
        "client's or an automation's name."
    )
    inlines = [PostAttemptInline]
    actions = ["retry_entries", "redecide_entries", "discard_entries"]
    change_list_template = "admin/timelogging/timeentry/change_list.html"
    change_form_template = "admin/timelogging/timeentry/change_form.html"
    fieldsets = [
        (None, {"fields": ["run_link", "tenant", "status", "connection"]}),
        (
            "Entry",
            {
                "fields": [
                    "log_as",
                    "psa_user",
                    "minutes",
                    "start",
                    "end",
                    "notes",
                    "psa_entry_id",
                    "psa_ticket",
                ]
            },
        ),
        (
            "Posting",
            {
                "fields": [
                    "attempts",
                    "next_attempt_at",
                    "wait",
                    "needs_lookup",
                    "error_class",
                    "error",
                    "created_at",
                    "posted_at",
                ]
            },
        ),
    ]
    readonly_fields = ("run_link", "psa_user", "psa_ticket", "wait", "created_at", "posted_at")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TimeEntry]:
        return (
            super()
            .get_queryset(request)
            .select_related("run", "tenant", "connection", "connection__tenant")
        )

    @admin.display(description="Run", ordering="run__run_id")
    def run_link(self, obj: TimeEntry) -> str:
        return admin_link(obj.run, f"{obj.run.run_id} (ticket {obj.run.ticket_id})")

    @admin.display(description="PSA user", ordering="psa_user_name")
    def psa_user(self, obj: TimeEntry) -> str:
        if obj.psa_user_name and obj.psa_user_ref:
            return f"{obj.psa_user_name} ({obj.psa_user_ref})"
        return obj.psa_user_name or obj.psa_user_ref or "-"

    @admin.display(description="In the PSA")
    def psa_ticket(self, obj: TimeEntry) -> str:
        ticket = f"ticket {obj.run.ticket_id}"
        if not obj.psa_ticket_url:
            return ticket
        vendor = obj.connection.vendor_label if obj.connection else "the PSA"
        return format_html(
            '<a href="{}" target="_blank" rel="noopener noreferrer">Open {} in {}</a>',
            obj.psa_ticket_url,
            ticket,
            vendor,
        )

    @admin.display(description="Waiting")
    def wait(self, obj: TimeEntry) -> str:
        return obj.wait_text or "-"

    # -- the list's columns --------------------------------------------------------------------
    @admin.display(description="Ticket")
    def ticket_link(self, obj: TimeEntry) -> str:
        return admin_link(obj.run, obj.run.ticket_id)

    @admin.display(description="Client")
    def client_name(self, obj: TimeEntry) -> Any:
        return one_line(str(obj.run.client))

    @admin.display(description="Automation")
    def automation_name(self, obj: TimeEntry) -> Any:
        return one_line(str(obj.run.automation))

    @admin.display(description="PSA user", ordering="psa_user_name")
    def psa_user_line(self, obj: TimeEntry) -> Any:
        # The name; the PSA's identifier too on hover (and on the entry's page).
        return one_line(obj.psa_user_name or obj.psa_user_ref, title=self.psa_user(obj))

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: TimeEntry) -> Any:
        # A posted entry: its id in the PSA beside the badge (searchable, exact).
        if obj.psa_entry_id:
            return format_html(
                '{} <span class="piadesk-psa-id" title="Entry id in the PSA">#{}</span>',
                entry_status_badge(obj.status),
                obj.psa_entry_id,
            )
        return entry_status_badge(obj.status)

    @admin.display(description="Error")
    def error_line(self, obj: TimeEntry) -> Any:
        # What the PSA said; on hover also whose problem it is (the error class, in words) and
        # how many attempts were made. The class has its own filter.
        label = error_class_label(obj.error_class)
        text = obj.error or label
        if not text:
            return ""
        plural = "s" if obj.attempts != 1 else ""
        title = " · ".join(
            part for part in (label, obj.error, f"{obj.attempts} attempt{plural}") if part
        )
        return one_line(text, title=title)

    # -- operations (staff who may operate entries; auditors only look) ------------------------
    # The work is in services/operations.py, the page parts in admin/entry_operations.py.
    def has_retry_permission(self, request: HttpRequest) -> bool:
        return entry_operations.may_operate(request)

    def _operate(self, request: HttpRequest, queryset: QuerySet[TimeEntry], operation: str) -> None:
        try:
            result = entry_operations.operation_run(
                request,
                operation=operation,
                entry_ids=list(queryset.values_list("pk", flat=True)),
                reason=request.POST.get("reason", ""),
            )
        except entry_operations.OperationRefused as refused:
            self.message_user(request, str(refused), messages.ERROR)
            return
        self.message_user(request, *entry_operations.result_message(operation, result))

    @admin.action(description="Retry selected entries", permissions=["retry"])
    def retry_entries(self, request: HttpRequest, queryset: QuerySet[TimeEntry]) -> None:
        self._operate(request, queryset, Operation.RETRY)

    @admin.action(
        description="Re-decide selected entries with the current settings", permissions=["retry"]
    )
    def redecide_entries(self, request: HttpRequest, queryset: QuerySet[TimeEntry]) -> None:
        self._operate(request, queryset, Operation.REDECIDE)

    @admin.action(description="Discard selected entries (never post them)…", permissions=["retry"])
    def discard_entries(
        self, request: HttpRequest, queryset: QuerySet[TimeEntry]
    ) -> HttpResponse | None:
        if request.POST.get("confirm") == "yes":
            self._operate(request, queryset, Operation.DISCARD)
            return None
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Discard entries",
            "entries": queryset.select_related("run"),
            "cancel_url": reverse("admin:timelogging_timeentry_changelist"),
        }
        return TemplateResponse(
            request, "admin/timelogging/timeentry/discard_confirmation.html", context
        )

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        entry = self.get_object(request, object_id)
        context = {**entry_operations.change_page_context(request, entry), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, context)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view
        return [
            path(
                "export.csv",
                view(
                    lambda request: export_csv_view(
                        self,
                        request,
                        lambda rows: time_entries_csv_response(
                            rows, excel_bom=True, zone=admin_zone()
                        ),
                    )
                ),
                name="timelogging_timeentry_export_csv",
            ),
            path(
                "<path:object_id>/operate/",
                view(
                    lambda request, object_id: entry_operations.operate_view(
                        self, request, object_id
                    )
                ),
                name="timelogging_timeentry_operate",
            ),
            *super().get_urls(),
        ]
