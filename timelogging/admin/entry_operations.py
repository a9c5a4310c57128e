"""Operator control on the time entry pages: retry, re-decide with the current settings,
discard (``services/operations.py`` does the work and records who and why).

The change page's buttons live in one self-contained partial
(``admin/timelogging/timeentry/operator_actions.html``), included after the read-only form,
with this entry's operations listed under it. Only staff with the "operate time entries"
permission (``retry_timeentry``) see or use them; auditors only read.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.urls import reverse

from timelogging.admin.config_history import SYSTEM_LABEL
from timelogging.audit import Operation, change_lines
from timelogging.models import ConfigChange, TimeEntry
from timelogging.services.operations import (
    OPERABLE_STATUSES,
    OperationRefused,
    OperationResult,
    entries_discard,
    entries_redecide,
    entries_retry,
)

PERMISSION = "timelogging.retry_timeentry"
REASON_MAX_CHARS = 500
DONE = {
    Operation.RETRY: "queued for another try",
    Operation.REDECIDE: "decided again with the current settings and queued (or discarded "
    "when no longer logged)",
    Operation.DISCARD: "discarded: never posted",
}


def may_operate(request: HttpRequest) -> bool:
    return request.user.has_perm(PERMISSION)


def operation_run(
    request: HttpRequest, *, operation: str, entry_ids: list[int], reason: str
) -> OperationResult:
    """Run ``operation`` for the user; ``OperationRefused`` for a bad request."""
    reason = reason.strip()[:REASON_MAX_CHARS]
    if operation == Operation.RETRY:
        return entries_retry(entry_ids=entry_ids, actor=request.user, reason=reason)
    if operation == Operation.REDECIDE:
        return entries_redecide(entry_ids=entry_ids, actor=request.user, reason=reason)
    if operation == Operation.DISCARD:
        return entries_discard(entry_ids=entry_ids, actor=request.user, reason=reason)
    raise OperationRefused(f"Unknown operation {operation!r}.")


def result_message(operation: str, result: OperationResult) -> tuple[str, int]:
    noun = "entry" if result.done == 1 else "entries"
    text = f"{result.done} {noun} {DONE[Operation(operation)]}."
    if result.skipped:
        text += f" {result.skipped} posted, discarded or being posted: left as they were."
    return text, messages.SUCCESS if result.done else messages.WARNING


def operate_view(model_admin: Any, request: HttpRequest, object_id: str) -> HttpResponse:
    """The change page's buttons (POST: CSRF-protected), one entry, back to its page."""
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    entry = model_admin.get_object(request, object_id)  # tenant-scoped queryset
    if entry is None:
        return model_admin._get_obj_does_not_exist_redirect(request, model_admin.opts, object_id)
    if not may_operate(request):
        raise PermissionDenied
    operation = request.POST.get("operation", "")
    try:
        result = operation_run(
            request,
            operation=operation,
            entry_ids=[entry.pk],
            reason=request.POST.get("reason", ""),
        )
    except OperationRefused as refused:
        model_admin.message_user(request, str(refused), messages.ERROR)
    else:
        model_admin.message_user(request, *result_message(operation, result))
    return HttpResponseRedirect(
        reverse("admin:timelogging_timeentry_change", args=[entry.pk], current_app="admin")
    )


def change_page_context(request: HttpRequest, entry: TimeEntry | None) -> dict[str, Any]:
    """What the partial needs: the buttons (when allowed) and this entry's operations."""
    if entry is None:
        return {}
    actions = None
    if may_operate(request) and entry.status in OPERABLE_STATUSES:
        actions = {"url": reverse("admin:timelogging_timeentry_operate", args=[entry.pk])}
    rows = (
        ConfigChange.objects.filter(
            content_type=ContentType.objects.get_for_model(TimeEntry), object_id=entry.pk
        )
        .select_related("actor", "content_type")
        .order_by("timestamp", "pk")
    )
    operations = []
    for row in rows:
        lines = change_lines(row)
        data = row.additional_data if isinstance(row.additional_data, dict) else {}
        operations.append(
            {
                "timestamp": row.timestamp,
                "who": row.actor.get_username() if row.actor else SYSTEM_LABEL,
                "operation": next((x.new for x in lines if x.field == "operation"), ""),
                "reason": data.get("reason", ""),
                "lines": [x for x in lines if x.kind != "operation"],
            }
        )
    return {"operator_actions": actions, "entry_operations": operations}
