"""Operator control over entries that are not posted: retry, re-decide, discard.

Every entry that is not posted can be moved on by a person, from the admin's actions or the
buttons on the entry's page, and each operation is recorded with who and why in the one
configuration/operations history (``ConfigChange``, via ``audit.operation_record``):

- **Retry**: back to the queue now, its attempt count afresh (the cap counts again).
- **Re-decide with the current settings**: the run goes through the decision again (scope,
  log-as, the specified user, minutes), as if it were reported now. The entry's fields change
  and the old values stay in the history row. A run no longer in scope is discarded.
- **Discard**: never posted; a reason is required; auditors see it (status "discarded", the
  reason on the entry and in the history).

An entry being posted right now (``posting`` with a live lease) is left alone: its outcome
is on the way. Every operation locks the entry rows (``SELECT … FOR UPDATE``), as the
worker's claim does, so an operation and a claim never interleave.

Exactly once is kept: an entry whose last attempt may have reached the PSA
(``needs_lookup``) keeps that flag through a retry or a re-decision, so its next attempt
still looks on the ticket before posting.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from timelogging.audit import Operation, operation_record
from timelogging.models import AutomationRun, Tenant, TimeEntry
from timelogging.services.ingest import entry_decided_fields, run_decision, sweep_enqueue

Status = TimeEntry.Status
# What a person may move on: everything that is neither posted, discarded nor in flight.
OPERABLE_STATUSES = (Status.PENDING, Status.RETRY_WAIT, Status.FAILED, Status.HELD)


class OperationRefused(ValueError):
    """The operation cannot be done as asked (e.g. a discard without a reason)."""


@dataclass(frozen=True)
class OperationResult:
    done: int
    skipped: int  # selected but posted, discarded or being posted


def _operable(entry_ids: list[int]) -> QuerySet[TimeEntry]:
    return (
        TimeEntry.objects.select_for_update(of=("self",))
        .select_related("run__client", "run__automation")
        .filter(pk__in=entry_ids, status__in=OPERABLE_STATUSES)
        .order_by("pk")
    )


def _release(entry: TimeEntry) -> None:
    """Back to the queue now, its attempt count afresh (``needs_lookup`` is kept)."""
    entry.status = Status.PENDING
    entry.counted_attempts = 0
    entry.next_attempt_at = timezone.now()
    entry.enqueued_at = None
    entry.lease_expires_at = None
    entry.waiting_for = ""


def _discard(entry: TimeEntry, *, error: str) -> None:
    """Never to be posted: out of the queue, ``error`` saying why."""
    entry.status = Status.DISCARDED
    entry.next_attempt_at = entry.enqueued_at = entry.lease_expires_at = None
    entry.waiting_for = ""
    entry.error = error


def _operate(
    entry_ids: list[int], operate: Callable[[TimeEntry], None], *, requeue: bool
) -> OperationResult:
    """``operate`` each operable entry of ``entry_ids`` (row-locked, in one transaction);
    ``requeue``: queue a sweep after the commit, so that released entries go out now."""
    done = 0
    with transaction.atomic():
        for entry in _operable(entry_ids):
            operate(entry)
            done += 1
        if done and requeue:
            transaction.on_commit(sweep_enqueue)
    return OperationResult(done=done, skipped=len(set(entry_ids)) - done)


def _record_status(
    entry: TimeEntry, *, before: str, actor: Any, operation: Operation, reason: str
) -> None:
    entry.save()
    operation_record(
        instance=entry,
        actor=actor,
        operation=operation,
        reason=reason,
        changes={"status": [before, entry.status]},
    )


def entries_retry(*, entry_ids: list[int], actor: Any = None, reason: str = "") -> OperationResult:
    """Queue the entries for another try now. Recorded per entry."""

    def retry(entry: TimeEntry) -> None:
        before = entry.status
        _release(entry)
        _record_status(entry, before=before, actor=actor, operation=Operation.RETRY, reason=reason)

    return _operate(entry_ids, retry, requeue=True)


def entries_redecide(
    *, entry_ids: list[int], actor: Any = None, reason: str = ""
) -> OperationResult:
    """Decide the entries' runs again with the settings in force now, and queue them."""

    def redecide(entry: TimeEntry) -> None:
        entry_redecide(entry=entry, actor=actor, reason=reason, always_record=True)

    return _operate(entry_ids, redecide, requeue=True)


def entries_discard(*, entry_ids: list[int], actor: Any = None, reason: str) -> OperationResult:
    """Never post the entries. ``reason`` is required: auditors read it."""
    reason = (reason or "").strip()
    if not reason:
        raise OperationRefused("Say why the entries are discarded: auditors read the reason.")
    who = getattr(actor, "get_username", lambda: "piadesk")()

    def discard(entry: TimeEntry) -> None:
        before = entry.status
        note = f"Discarded by {who}: {reason}"
        if entry.needs_lookup:
            # Its last attempt may have reached the PSA: say where to look.
            note += (
                f" (Its last attempt may have reached the PSA: look for "
                f"{entry.run.reference_text} on ticket {entry.run.ticket_id}.)"
            )
        _discard(entry, error=note)
        _record_status(
            entry, before=before, actor=actor, operation=Operation.DISCARD, reason=reason
        )

    return _operate(entry_ids, discard, requeue=False)


# --- re-deciding --------------------------------------------------------------------------
def entry_redecide(
    *,
    entry: TimeEntry,
    tenant: Tenant | None = None,
    actor: Any = None,
    reason: str = "",
    always_record: bool = False,
) -> bool:
    """Decide ``entry``'s run again with the settings in force now and release the entry
    (the caller holds its row lock). Returns whether the decision changed. The old decision
    stays in the history row written for it (always when ``always_record``: a person asked).
    A run no longer logged (status off, out of scope, ...) is skipped and its entry
    discarded, with the reason."""
    tenant = tenant or Tenant.objects.get(pk=entry.tenant_id)
    run = entry.run
    before_status = entry.status
    decision = run_decision(
        tenant=tenant,
        client=run.client,
        automation=run.automation,
        outcome=run.outcome,
        started_at=run.started_at,
        completed_at=run.completed_at,
    )
    changes: dict[str, list[Any]] = {}
    if decision.log:
        for name, value in entry_decided_fields(tenant=tenant, run=run, decision=decision).items():
            if getattr(entry, name) != value:
                changes[name] = [_plain(getattr(entry, name)), _plain(value)]
                setattr(entry, name, value)
        if run.decision != AutomationRun.Decision.LOG:
            changes["decision"] = [run.decision, AutomationRun.Decision.LOG]
            run.decision, run.skip_reason = AutomationRun.Decision.LOG, ""
            run.save(update_fields=["decision", "skip_reason"])
        _release(entry)
        entry.error_class = ""
        entry.error = ""
    else:
        changes["decision"] = [run.decision, AutomationRun.Decision.SKIP]
        changes["skip_reason"] = [run.skip_reason, decision.skip_reason]
        run.decision, run.skip_reason = AutomationRun.Decision.SKIP, decision.skip_reason
        run.save(update_fields=["decision", "skip_reason"])
        _discard(
            entry,
            error="Decided again with the current settings: not logged ("
            f"{AutomationRun.SkipReason(decision.skip_reason).label}).",
        )
    changed = bool(changes)
    entry.save()
    if changed or always_record:
        changes["status"] = [before_status, entry.status]
        operation_record(
            instance=entry,
            actor=actor,
            operation=Operation.REDECIDE,
            reason=reason,
            changes=changes,
        )
    return changed


def held_entries_redecide(*, tenant_id: int, actor: Any = None, reason: str) -> tuple[int, int]:
    """Release a tenant's held entries (a connection resumed), each decided again: those
    whose decision changed since they were held (the settings were fixed meanwhile) carry
    their new decision, recorded. Returns (released, re-decided)."""
    tenant = Tenant.objects.get(pk=tenant_id)
    held = (
        TimeEntry.objects.select_for_update(of=("self",))
        .select_related("run__client", "run__automation")
        .filter(tenant_id=tenant_id, status=Status.HELD)
        .order_by("pk")
    )
    released = changed = 0
    for entry in held:
        changed += entry_redecide(entry=entry, tenant=tenant, actor=actor, reason=reason)
        released += 1
    return released, changed


def _plain(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value
