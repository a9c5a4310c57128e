"""Posting an entry to the PSA: the worker's job (``timelogging.tasks.post_time_entry``).

The task may run twice for one entry (django-q2's ORM broker re-delivers a task whose worker
died), so the claim is a conditional state change under the connection's row lock: only an
entry that is due (``pending`` or ``retry_wait`` past its time) or abandoned (``posting`` past
its lease) is taken, and only while the connection has a free slot (``_claim``). The HTTP
calls happen outside any database transaction. What each outcome means for the entry is
decided in ``delivery.py``.

Who the entry is logged as:
- the user who started the automation: their e-mail → PSA user, cached in PSAUserMapping
  (staff can override a mapping for people whose e-mails differ);
- the ticket assignee: read from the ticket when posting (assignments change, so not cached);
- a specified PSA user: fixed by the settings when the run was decided.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import random

from django.db import connection as db
from django.db import transaction
from django.utils import timezone

from psa.base import (
    ConfigurationError,
    EntryToPost,
    ErrorClass,
    Exchange,
    PostResult,
    PSABackend,
    PSAError,
    PSAUser,
    RetryableError,
    Ticket,
    UnknownOutcomeError,
    UserError,
)
from timelogging.models import (
    AttemptOutcome,
    PostAttempt,
    PSAConnection,
    PSAUserMapping,
    Tenant,
    TimeEntry,
)
from timelogging.services.budget import BudgetExhausted, budget_window
from timelogging.services.connections import (
    connection_budgeted_backend,
    connection_posted_since_test,
)
from timelogging.services.delivery import (
    DELIVERY_FIELDS,
    entry_fail,
    entry_hold,
    entry_schedule_retry,
    entry_wait,
    lease_seconds,
)
from timelogging.services.rows import one_trip_available, row_insert, row_update_and_insert
from timelogging.services.worker_sql import (
    connection_lock_for_entry,
    entry_claim,
    entry_claim_in_one_trip,
)

logger = logging.getLogger(__name__)

# What a successful post writes besides the delivery state (``delivery.DELIVERY_FIELDS``).
POSTED_FIELDS = (
    "psa_entry_id",
    "psa_ticket_url",
    "psa_user_ref",
    "psa_user_name",
    "start",
    "end",
    "posted_at",
)


def entry_post(*, entry_id: int) -> str:
    """Make one attempt at an entry that is due. Returns what happened (the task result)."""
    claimed = _claim(entry_id=entry_id)
    if isinstance(claimed, str):
        return claimed
    entry, connection, counted = claimed
    started = timezone.now()
    backend: PSABackend | None = None
    try:
        # Keep-alive: one handshake per connection and worker process, not one per entry.
        backend = connection_budgeted_backend(connection, requests_counted=counted, keep_alive=True)
        result, user = _attempt(entry=entry, connection=connection, backend=backend)
    except PSAError as exc:
        _record_failure(entry=entry, error=exc, started=started, backend=backend)
        return entry.status
    except Exception as exc:
        # A bug must not leave the entry stuck in "posting". It may have struck after the
        # request was sent, so it is treated as an unknown outcome.
        logger.exception("unexpected error posting entry %s", entry.pk)
        error = UnknownOutcomeError(f"Unexpected error while posting: {exc!r}")
        _record_failure(entry=entry, error=error, started=started, backend=backend)
        return entry.status
    finally:
        if backend is not None:
            backend.http.close()
    _record_success(entry=entry, user=user, result=result, started=started, backend=backend)
    connection_posted_since_test(connection=connection)
    return "adopted" if result.adopted else entry.status


def _attempt(
    *, entry: TimeEntry, connection: PSAConnection, backend: PSABackend
) -> tuple[PostResult, PSAUser]:
    """Resolve the user; look first if the last attempt may have landed; else post."""
    user, ticket = _resolve_user(entry=entry, connection=connection, backend=backend)
    if entry.needs_lookup:
        found = backend.find_entry(entry.run.ticket_id, entry.run.reference_text)
        if found is not None:
            # Record the window the PSA holds (it may have been fitted to the vendor's rules
            # when it was sent); only when the PSA does not say is the entry's own kept.
            start, end = found.start or entry.start, found.end or entry.end
            return PostResult(found.psa_entry_id, start, end, adopted=True), user
    start, end = backend.adjust_window(entry.start, entry.end, timezone.now())
    # From here the request may reach the PSA: should this worker die before recording the
    # outcome, the sweep's rescue makes the next attempt look first.
    result = backend.post_time_entry(
        EntryToPost(
            ticket_id=entry.run.ticket_id,
            user=user,
            start=start,
            end=end,
            notes=entry.notes,
            reference=entry.run.reference_text,
            log_as=entry.log_as,
            ticket=ticket,
        )
    )
    return result, user


def _claim(*, entry_id: int) -> tuple[TimeEntry, PSAConnection, int] | str:
    """Take the entry for one attempt, or say why not (the task's result). With the entry and
    its connection, how many of the attempt's requests are already counted in the budget.

    The connection's row is locked first (the order ``delivery.connection_pause`` takes its
    locks in, so the two never deadlock): it serialises the claims of one connection, so that
    the count of its entries in flight, read by the next statement, is exact and its
    concurrency cap holds across every worker. The entry is then claimed by one conditional
    ``UPDATE`` (due or abandoned, and a free slot): a second delivery of the same task finds
    it no longer due. What did not claim the entry is explained by ``_not_claimed``, off the
    common path.
    """
    now = timezone.now()
    lease_until = now + dt.timedelta(seconds=lease_seconds())
    if one_trip_available(db):
        # The common case, a due entry and a free slot, in one round trip with the first
        # request's budget (worker_sql.py); anything else is looked at below, in a
        # transaction of its own.
        claimed = entry_claim_in_one_trip(
            entry_id=entry_id, now=now, lease_until=lease_until, budget_window=budget_window(now)
        )
        if claimed is not None:
            claimed.entry.run, claimed.entry.connection = claimed.run, claimed.connection
            return claimed.entry, claimed.connection, int(claimed.request_counted)
    with transaction.atomic():
        locked = connection_lock_for_entry(entry_id)
        if locked is None:
            return _not_claimed(entry_id=entry_id, connection=None, now=now)
        connection, run = locked
        if connection.paused_at is not None:
            return _not_claimed(entry_id=entry_id, connection=connection, now=now)
        entry = entry_claim(
            entry_id=entry_id, connection=connection, now=now, lease_until=lease_until
        )
        if entry is None:
            return _not_claimed(entry_id=entry_id, connection=connection, now=now)
    entry.run = run  # read with the connection (a run never changes)
    entry.connection = connection  # the one locked above (no second read)
    return entry, connection, 0


def _not_claimed(*, entry_id: int, connection: PSAConnection | None, now: dt.datetime) -> str:
    """Why the entry was not claimed, acted on: not due, no active connection (failed), the
    connection paused (held) or its concurrency used up (a short wait). Inside ``_claim``'s
    transaction, after the connection's lock."""
    entry = TimeEntry.objects.select_for_update().filter(pk=entry_id).first()
    if entry is None:
        return "unknown entry"
    due = entry.status in TimeEntry.OPEN_STATUSES and (
        entry.next_attempt_at is None or entry.next_attempt_at <= now
    )
    abandoned = (
        entry.status == TimeEntry.Status.POSTING
        and entry.lease_expires_at is not None
        and entry.lease_expires_at < now
    )
    if not (due or abandoned):
        return f"not due ({entry.status})"
    if connection is None:
        entry_fail(
            entry=entry,
            error_class=ErrorClass.CONFIGURATION,
            error="The tenant has no active PSA connection: add one under PSA connections, "
            "then retry this entry.",
        )
        return entry.status
    entry.connection = connection
    if connection.paused_at is not None:
        # Held behind the pause, which stays as it is: its reason is not repeated into
        # itself, nor written to the history once per entry.
        entry_hold(
            entry=entry,
            error=ConfigurationError(f"The connection is paused: {connection.pause_reason}"),
            pause_connection=False,
        )
        return entry.status
    # Due, but the connection's concurrency is used up: come back in a moment, no attempt used.
    entry_wait(
        entry=entry,
        reason=TimeEntry.WaitReason.CONCURRENCY,
        seconds=1 + random.uniform(0, 2),
        attempt_claimed=False,
    )
    return "deferred (connection busy)"


def _resolve_user(
    *, entry: TimeEntry, connection: PSAConnection, backend: PSABackend
) -> tuple[PSAUser, Ticket | None]:
    return psa_user_resolve(
        log_as=entry.log_as,
        ticket_id=entry.run.ticket_id,
        started_by=entry.run.started_by,
        specified_ref=entry.psa_user_ref,
        specified_name=entry.psa_user_name,
        connection=connection,
        backend=backend,
    )


def psa_user_resolve(
    *,
    log_as: str,
    ticket_id: str,
    started_by: str,
    specified_ref: str,
    specified_name: str,
    connection: PSAConnection,
    backend: PSABackend,
    remember: bool = True,
) -> tuple[PSAUser, Ticket | None]:
    """Who an entry is logged as (and the ticket, when it was read to find out).

    Raises ``UserError`` when there is no usable user, another ``PSAError`` when the PSA cannot
    be asked. ``remember=False`` (the settings page's preview) leaves the e-mail → PSA user
    mappings as they are: a preview writes nothing.
    """
    vendor = connection.vendor_label
    if log_as == Tenant.LogAs.SPECIFIED:
        if not specified_ref:
            raise UserError(
                "“Log time entries as” is a specified PSA user, but no user is chosen: "
                "choose one in Tenant settings."
            )
        return PSAUser(ref=specified_ref, name=specified_name), None

    if log_as == Tenant.LogAs.ASSIGNEE:
        ticket = backend.get_ticket(ticket_id)
        if ticket.assignee is None:
            raise UserError(
                f"Ticket #{ticket_id} has no assignee in {vendor}: assign it, or "
                "choose another “Log time entries as” option."
            )
        return _named(ticket.assignee, connection=connection, backend=backend), ticket

    email = started_by
    mapping = PSAUserMapping.objects.filter(connection=connection, email=email).first()
    if mapping is not None:
        return PSAUser(ref=mapping.psa_user_ref, name=mapping.psa_user_name, email=email), None
    user = backend.find_user_by_email(email)
    if user is None:
        raise UserError(
            f"No active {vendor} user has the e-mail {email}: set that e-mail on the user in "
            f"{vendor}, or add a PSA user mapping for it."
        )
    if remember:
        PSAUserMapping.objects.update_or_create(
            connection=connection,
            email=email,
            defaults={
                "tenant_id": connection.tenant_id,
                "psa_user_ref": user.ref,
                "psa_user_name": user.name,
                "source": PSAUserMapping.Source.RESOLVED,
            },
        )
    return user, None


NAME_CACHE_SECONDS = 3600


def _named(user: PSAUser, *, connection: PSAConnection, backend: PSABackend) -> PSAUser:
    """``user`` with its name: tickets name their assignee by id only (Autotask), so the
    name is looked up (cached an hour) for the history. Best effort: a failed look-up leaves
    the name empty, never the post undone."""
    if user.name:
        return user
    key = f"piadesk:psa-user-name:{connection.pk}:{user.ref}"
    name = backend.cache.get(key)
    if name is None:
        try:
            name = backend.get_user(user.ref).name
        except PSAError as exc:
            logger.info("no name for PSA user %s: %s", user.ref, exc.message)
            return user
        backend.cache.set(key, name, NAME_CACHE_SECONDS)
    return dataclasses.replace(user, name=name if name != user.ref else "")


def _exchanges(backend: PSABackend | None) -> list[Exchange]:
    return list(getattr(getattr(backend, "http", None), "exchanges", []) or [])


def _record_attempt(
    *,
    entry: TimeEntry,
    started: dt.datetime,
    outcome: str,
    error: str,
    backend: PSABackend | None,
) -> None:
    # One attempt per outcome: the plain INSERT (services/rows.py).
    row_insert(
        _attempt_row(entry=entry, started=started, outcome=outcome, error=error, backend=backend)
    )


def _attempt_row(
    *,
    entry: TimeEntry,
    started: dt.datetime,
    outcome: str,
    error: str,
    backend: PSABackend | None,
) -> PostAttempt:
    exchanges = _exchanges(backend)
    return PostAttempt(
        tenant_id=entry.tenant_id,
        entry=entry,
        number=entry.attempts,
        started_at=started,
        duration_ms=int((timezone.now() - started).total_seconds() * 1000),
        outcome=outcome,
        http_status=exchanges[-1].status if exchanges else None,
        error=error,
        exchanges=[dataclasses.asdict(x) for x in exchanges],
    )


def _record_success(
    *,
    entry: TimeEntry,
    user: PSAUser,
    result: PostResult,
    started: dt.datetime,
    backend: PSABackend | None,
) -> None:
    entry.status = TimeEntry.Status.POSTED
    entry.psa_entry_id = result.psa_entry_id
    if backend is not None:
        entry.psa_ticket_url = backend.ticket_url(entry.run.ticket_id) or ""
    if user.ref:
        entry.psa_user_ref = user.ref
        entry.psa_user_name = user.name  # never the id posing as a name
    entry.start, entry.end = result.start, result.end
    entry.posted_at = timezone.now()
    entry.needs_lookup = False
    entry.next_attempt_at = entry.enqueued_at = entry.lease_expires_at = None
    entry.error_class = ""
    entry.error = ""
    attempt = _attempt_row(
        entry=entry,
        started=started,
        outcome=AttemptOutcome.ADOPTED if result.adopted else AttemptOutcome.POSTED,
        error="",
        backend=backend,
    )
    # The worker's most frequent write: the entry and its attempt, both or neither, in one
    # statement on PostgreSQL (services/rows.py).
    row_update_and_insert(entry, [*DELIVERY_FIELDS, *POSTED_FIELDS], attempt)
    logger.info(
        "entry %s %s (PSA id %s)",
        entry.pk,
        "adopted" if result.adopted else "posted",
        result.psa_entry_id,
    )


def _wait_reason(error: PSAError) -> str | None:
    if isinstance(error, BudgetExhausted):
        return TimeEntry.WaitReason.BUDGET
    if isinstance(error, RetryableError) and error.status == 429:
        return TimeEntry.WaitReason.RETRY_AFTER
    return None


def _specified_user_problem(error: UserError, *, entry: TimeEntry) -> ConfigurationError:
    vendor = entry.connection.vendor_label if entry.connection is not None else "the PSA"
    return ConfigurationError(
        f"{error.message} This is the specified PSA user of Tenant settings, whom every entry "
        f"is logged as: choose a user of {vendor} there (or fix this one in {vendor}), then "
        "resume the connection; held entries are then decided again with the new settings.",
        status=error.status,
        body=error.body,
    )


def _record_failure(
    *, entry: TimeEntry, error: PSAError, started: dt.datetime, backend: PSABackend | None
) -> None:
    """Decide what the failure means for the entry (see delivery.py), and keep the attempt."""
    wait = _wait_reason(error)
    if wait is not None:
        # Not an attempt: piadesk's own budget stopped the request before it was sent, or the
        # PSA asked to come back later without looking at it.
        seconds = (error.retry_after or 1.0) + random.uniform(0, 1)
        entry_wait(entry=entry, reason=wait, seconds=seconds, attempt_claimed=True)
        logger.info("entry %s: %s", entry.pk, entry.wait_text)
        return
    with transaction.atomic():
        _record_attempt(
            entry=entry, started=started, outcome=error.kind, error=error.message, backend=backend
        )
        if isinstance(error, UnknownOutcomeError):
            entry_schedule_retry(entry=entry, error=error, unknown_outcome=True)
        elif isinstance(error, RetryableError):
            entry_schedule_retry(entry=entry, error=error)
        elif isinstance(error, ConfigurationError):
            entry_hold(entry=entry, error=error)
        elif isinstance(error, UserError) and entry.log_as == Tenant.LogAs.SPECIFIED:
            # The specified PSA user is every entry's user: its problem is the tenant's
            # settings', not one person's, so the entries wait (held) for the fix.
            entry_hold(entry=entry, error=_specified_user_problem(error, entry=entry))
        else:  # permanent, not found, unresolved user: a person must act
            entry_fail(entry=entry, error_class=error.kind, error=error.message)
    logger.warning("entry %s: %s (%s): %s", entry.pk, entry.status, error.kind, error.message)
