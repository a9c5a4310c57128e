"""Delivery state of time entries: piadesk, not the task queue, decides what happens next.

django-q2's ORM broker is at-least-once: a task whose worker died runs again after ``retry``
seconds, and a worker's death never counts as an attempt. So each entry carries its own state,
and every task is safe to run twice::

    pending ──claim──> posting ──> posted
       ^                  │
       │                  ├─ retryable / unknown outcome ──> retry_wait ──(due)──> posting
       │                  ├─ permanent, unresolved, cap reached ──> failed   (needs a person)
       │                  └─ configuration ──> held, connection paused       (needs a person)
       └──── staff: retry failed entries / resume the connection ─────────────┘

- Attempts are counted when an entry is claimed (a crash mid-post still counts); throttling
  (429, piadesk's own request budget, the connection's concurrency) does not use them up.
- After an unknown outcome (timeout after sending, dropped connection, 5xx after send, a worker
  killed mid-post) ``needs_lookup`` is set: the next attempt first looks on the ticket for the
  run's reference and adopts an entry it finds instead of posting again.
- The sweep (a django-q2 schedule, every ``PIADESK_SWEEP_MINUTES``) enqueues entries that are
  due and not queued, and rescues entries left "posting" past their lease by a dead worker.
"""

from __future__ import annotations

import datetime as dt
import logging
import random
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Min, Q
from django.utils import timezone

from psa.base import PSAError
from psa.registry import backend_class
from timelogging.models import PSAConnection, TimeEntry
from timelogging.services import operations
from timelogging.services.ingest import entry_enqueue, sweep_enqueue
from timelogging.services.operations import held_entries_redecide

logger = logging.getLogger(__name__)
Status = TimeEntry.Status


def backoff_delay(
    attempt: int,
    *,
    base: float,
    cap: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential with "equal jitter".

    ``base · 2^(attempt-1)``, capped, of which a random half is jitter, so that entries that
    failed together (a PSA outage) do not come back together. A PSA's ``Retry-After`` is a
    floor: never sooner than it asked.
    """
    uniform = rng.uniform if rng is not None else random.uniform
    ceiling = min(cap, base * 2.0 ** max(0, attempt - 1))
    delay = ceiling / 2 + uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


# The fields an outcome of an attempt changes: saves write these only (``update_fields``), not
# the entry's notes, window and references, which the worker read but did not change.
DELIVERY_FIELDS = (
    "status",
    "attempts",
    "counted_attempts",
    "next_attempt_at",
    "enqueued_at",
    "lease_expires_at",
    "needs_lookup",
    "waiting_for",
    "error_class",
    "error",
    "connection",
    "updated_at",
)


def lease_seconds() -> int:
    return settings.PIADESK_POSTING_LEASE_SECONDS


# --- outcomes of an attempt -------------------------------------------------------------------
def entry_schedule_retry(
    *, entry: TimeEntry, error: PSAError, unknown_outcome: bool = False
) -> None:
    """Back to ``retry_wait``, or ``failed`` when the attempts or the age cap is reached."""
    now = timezone.now()
    if unknown_outcome:
        entry.needs_lookup = True
    age = now - entry.created_at
    too_old = age > dt.timedelta(hours=settings.PIADESK_MAX_ENTRY_AGE_HOURS)
    if entry.counted_attempts >= settings.PIADESK_MAX_ATTEMPTS or too_old:
        why = (
            f"after {entry.counted_attempts} attempts"
            if not too_old
            else f"after {age.total_seconds() / 3600:.0f} hours"
        )
        entry_fail(entry=entry, error_class=error.kind, error=f"Gave up {why}: {error.message}")
        return
    delay = backoff_delay(
        entry.counted_attempts or 1,
        base=settings.PIADESK_RETRY_BASE_SECONDS,
        cap=settings.PIADESK_RETRY_MAX_SECONDS,
        retry_after=error.retry_after,
    )
    if entry.needs_lookup and entry.connection is not None:
        # The look-up must not run before the PSA shows what it stored (HaloPSA lags).
        lag = backend_class(entry.connection.vendor).read_after_write_seconds
        delay = max(delay, lag * 2)
    entry.status = Status.RETRY_WAIT
    entry.next_attempt_at = now + dt.timedelta(seconds=delay)
    entry.enqueued_at = None
    entry.lease_expires_at = None
    entry.error_class = error.kind
    entry.error = error.message
    entry.save(update_fields=DELIVERY_FIELDS)


def entry_wait(*, entry: TimeEntry, reason: str, seconds: float, attempt_claimed: bool) -> None:
    """Back to ``retry_wait`` without an attempt: the request budget, the connection's
    concurrency or a PSA's Retry-After. Nothing of this entry reached the PSA (or the PSA
    refused to look at it), so the try is given back and the entry shows what it waits for;
    its last error stays as it was."""
    if attempt_claimed:
        entry.attempts = max(0, entry.attempts - 1)
        entry.counted_attempts = max(0, entry.counted_attempts - 1)
    entry.status = Status.RETRY_WAIT
    entry.waiting_for = reason
    entry.next_attempt_at = timezone.now() + dt.timedelta(seconds=seconds)
    entry.enqueued_at = None
    entry.lease_expires_at = None
    entry.save(update_fields=DELIVERY_FIELDS)


def entry_fail(*, entry: TimeEntry, error_class: str, error: str) -> None:
    entry.status = Status.FAILED
    entry.next_attempt_at = None
    entry.enqueued_at = None
    entry.lease_expires_at = None
    entry.error_class = error_class
    entry.error = error
    entry.save(update_fields=DELIVERY_FIELDS)


def entry_hold(*, entry: TimeEntry, error: PSAError, pause_connection: bool = True) -> None:
    """A configuration failure: pause the connection and hold its waiting entries.

    ``pause_connection=False``: the connection is already paused; only this entry is held.
    """
    entry.status = Status.HELD
    entry.next_attempt_at = None
    entry.enqueued_at = None
    entry.lease_expires_at = None
    entry.error_class = error.kind
    entry.error = error.message
    entry.save(update_fields=DELIVERY_FIELDS)
    if pause_connection and entry.connection_id:
        connection_pause(connection_id=entry.connection_id, reason=error.message)


# --- connections ------------------------------------------------------------------------------
def connection_pause(*, connection_id: int, reason: str) -> int:
    """Pause a connection and hold its tenant's waiting entries. Returns how many were held."""
    now = timezone.now()
    with transaction.atomic():
        connection = PSAConnection.objects.select_for_update().get(pk=connection_id)
        if connection.paused_at is None:
            # Only the first cause is recorded (and written to the history): entries that
            # were in flight when it paused may meet the same problem again.
            connection.paused_at = now
            connection.pause_reason = reason
            connection.save(update_fields=["paused_at", "pause_reason", "updated_at"])
        held = TimeEntry.objects.filter(
            tenant_id=connection.tenant_id, status__in=TimeEntry.OPEN_STATUSES
        ).update(status=Status.HELD, next_attempt_at=None, enqueued_at=None, updated_at=now)
    logger.warning("connection %s paused (%s); %s entries held", connection_id, reason, held)
    return held


def connection_resume(*, connection_id: int, actor: Any = None) -> int:
    """Resume a paused connection and release its tenant's held entries. Returns how many.

    Each held entry is decided again with the settings in force now (``operations``): one
    held with settings since fixed (e.g. a specified PSA user from before a vendor switch)
    is not retried as it was, which would only pause the connection again. What still fails
    pauses again only if it is the connection's problem (see posting.py).
    """
    with transaction.atomic():
        connection = PSAConnection.objects.select_for_update().get(pk=connection_id)
        connection.paused_at = None
        connection.pause_reason = ""
        connection.save(update_fields=["paused_at", "pause_reason", "updated_at"])
        released, redecided = held_entries_redecide(
            tenant_id=connection.tenant_id,
            actor=actor,
            reason="The connection was resumed: held entries are decided again with the "
            "current settings.",
        )
        transaction.on_commit(sweep_enqueue)
    logger.info(
        "connection %s resumed; %s entries released (%s decided differently)",
        connection_id,
        released,
        redecided,
    )
    return released


def entries_retry(*, entry_ids: list[int], actor: Any = None, reason: str = "") -> int:
    """Staff asked to try entries again (``operations.entries_retry``). Returns how many."""
    return operations.entries_retry(entry_ids=entry_ids, actor=actor, reason=reason).done


# --- the sweep --------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepResult:
    rescued: int
    enqueued: int


def entries_sweep(*, limit: int = 2000, now: dt.datetime | None = None) -> SweepResult:
    """Rescue abandoned entries and enqueue due ones. Safe to run concurrently and often."""
    now = now or timezone.now()
    # Abandoned: a worker claimed it and died. It may have posted: look before posting again.
    rescued = TimeEntry.objects.filter(status=Status.POSTING, lease_expires_at__lt=now).update(
        status=Status.RETRY_WAIT,
        needs_lookup=True,
        next_attempt_at=now,
        enqueued_at=None,
        lease_expires_at=None,
        error_class="unknown_outcome",
        error="The worker posting this entry stopped; checking the PSA before posting again.",
        updated_at=now,
    )
    # Due and not queued (or queued so long ago that the task must have been lost).
    requeue_before = now - dt.timedelta(seconds=settings.Q_CLUSTER["retry"])
    enqueued = 0
    with transaction.atomic():
        due = (
            TimeEntry.objects.select_for_update(skip_locked=True)
            .filter(status__in=TimeEntry.OPEN_STATUSES, next_attempt_at__lte=now)
            .filter(Q(enqueued_at__isnull=True) | Q(enqueued_at__lt=requeue_before))
            .order_by("next_attempt_at")
            .values_list("pk", flat=True)[:limit]
        )
        ids = list(due)
        if ids:
            TimeEntry.objects.filter(pk__in=ids).update(enqueued_at=now)
            for entry_id in ids:
                entry_enqueue(entry_id=entry_id)
            enqueued = len(ids)
    if rescued or enqueued:
        logger.info("sweep: %s rescued, %s enqueued", rescued, enqueued)
    return SweepResult(rescued=rescued, enqueued=enqueued)


# --- the sweep's schedule ---------------------------------------------------------------------
# The django-q2 schedule migration 0003 creates (migrations keep their own copy of the name).
SWEEP_SCHEDULE = "piadesk sweep"
SWEEP_TASK = "timelogging.tasks.sweep_entries"


def sweep_schedule_sync(**_signal: Any) -> bool:
    """Make the sweep's schedule run every ``PIADESK_SWEEP_MINUTES`` (and exist: delivery
    needs it). Returns whether it wrote anything.

    Called after ``migrate`` and when a qcluster worker starts (``timelogging.apps``): the
    worker's environment is the one the setting is read from, so a changed setting takes
    effect with the restarted worker. A shorter interval also brings the next run forward,
    instead of waiting out the old one. Idempotent and cheap (one read when in line).
    """
    from django_q.models import Schedule

    minutes = settings.PIADESK_SWEEP_MINUTES
    now = timezone.now()
    with transaction.atomic():
        schedule = Schedule.objects.select_for_update().filter(name=SWEEP_SCHEDULE).first()
        if schedule is None:
            Schedule.objects.create(
                name=SWEEP_SCHEDULE,
                func=SWEEP_TASK,
                schedule_type=Schedule.MINUTES,
                minutes=minutes,
                repeats=-1,
                next_run=now,
            )
            logger.warning("the sweep's schedule was missing: created, every %s min", minutes)
            return True
        if schedule.minutes == minutes and schedule.schedule_type == Schedule.MINUTES:
            return False
        schedule.schedule_type = Schedule.MINUTES
        schedule.minutes = minutes
        soonest = now + dt.timedelta(minutes=minutes)
        if schedule.next_run is None or schedule.next_run > soonest:
            schedule.next_run = soonest
        schedule.save(update_fields=["schedule_type", "minutes", "next_run"])
    logger.info("the sweep now runs every %s min (PIADESK_SWEEP_MINUTES)", minutes)
    return True


# --- the queue, for staff ---------------------------------------------------------------------
@dataclass(frozen=True)
class QueueStats:
    by_status: dict[str, int]
    oldest_waiting: dt.datetime | None
    failures_by_class: dict[str, int]


def queue_stats(*, tenant_ids: list[int] | None = None) -> QueueStats:
    """How many entries wait, since when, and why entries failed (three aggregate queries)."""
    entries = TimeEntry.objects.all()
    if tenant_ids is not None:
        entries = entries.filter(tenant_id__in=tenant_ids)
    open_like = [Status.PENDING, Status.POSTING, Status.RETRY_WAIT, Status.HELD, Status.FAILED]
    by_status = dict(
        entries.filter(status__in=open_like)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    oldest = entries.filter(
        status__in=[Status.PENDING, Status.RETRY_WAIT, Status.POSTING, Status.HELD]
    ).aggregate(oldest=Min("created_at"))["oldest"]
    failures = dict(
        entries.filter(status__in=[Status.FAILED, Status.HELD])
        .values_list("error_class")
        .annotate(n=Count("pk"))
        .values_list("error_class", "n")
    )
    return QueueStats(by_status=by_status, oldest_waiting=oldest, failures_by_class=failures)
