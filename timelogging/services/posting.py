"""Posting an entry to the PSA: the worker's job (``timelogging.tasks.post_time_entry``).

The task may run twice for one entry (django-q2's ORM broker re-delivers a task whose worker
died), so the claim is a row-locked state change: only an entry still ``pending`` is taken,
and the HTTP calls happen outside any database transaction.

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

from django.db import transaction
from django.utils import timezone

from psa.base import (
    ConfigurationError,
    EntryToPost,
    Exchange,
    PSABackend,
    PSAError,
    PSAUser,
    Ticket,
    UnknownOutcomeError,
)
from timelogging.crypto import SecretsUnavailable
from timelogging.models import PostAttempt, PSAConnection, PSAUserMapping, Tenant, TimeEntry
from timelogging.services.connections import active_connection, connection_backend

logger = logging.getLogger(__name__)


class UnresolvedUser(PSAError):
    """No PSA user can be found for the entry; staff must map one or change "log as"."""

    kind = "unresolved"


def entry_post(*, entry_id: int) -> str:
    """Post one pending entry. Returns the entry's new status (for the task result)."""
    claimed = _claim(entry_id=entry_id)
    if claimed is None:
        return "skipped"
    entry, connection = claimed
    started = timezone.now()
    backend: PSABackend | None = None
    try:
        if connection is None:
            raise ConfigurationError(
                "The tenant has no active PSA connection: add one under PSA connections."
            )
        try:
            backend = connection_backend(connection)
        except SecretsUnavailable as exc:
            raise ConfigurationError(str(exc)) from exc
        user, ticket = _resolve_user(entry=entry, connection=connection, backend=backend)
        start, end = backend.adjust_window(entry.start, entry.end, timezone.now())
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
    except PSAError as exc:
        _record_failure(entry=entry, error=exc, started=started, backend=backend)
        return entry.status
    except Exception as exc:
        # A bug must not leave the entry stuck in "posting". It may have struck after the
        # request was sent, so it is recorded as an unknown outcome.
        logger.exception("unexpected error posting entry %s", entry.pk)
        error = UnknownOutcomeError(f"Unexpected error while posting: {exc!r}")
        _record_failure(entry=entry, error=error, started=started, backend=backend)
        return entry.status
    finally:
        if backend is not None:
            backend.http.close()
    _record_success(
        entry=entry,
        user=user,
        psa_entry_id=result.psa_entry_id,
        start=result.start,
        end=result.end,
        started=started,
        backend=backend,
        adopted=result.adopted,
    )
    return entry.status


def _claim(*, entry_id: int) -> tuple[TimeEntry, PSAConnection | None] | None:
    with transaction.atomic():
        entry = (
            TimeEntry.objects.select_for_update(of=("self",))
            .select_related("run", "tenant")
            .filter(pk=entry_id)
            .first()
        )
        if entry is None or entry.status != TimeEntry.Status.PENDING:
            return None
        connection = active_connection(tenant_id=entry.tenant_id)
        entry.status = TimeEntry.Status.POSTING
        entry.attempts += 1  # counted before the try: a crash mid-post still counts
        entry.connection = connection
        entry.save(update_fields=["status", "attempts", "connection", "updated_at"])
    return entry, connection


def _resolve_user(
    *, entry: TimeEntry, connection: PSAConnection, backend: PSABackend
) -> tuple[PSAUser, Ticket | None]:
    vendor = connection.vendor_label
    if entry.log_as == Tenant.LogAs.SPECIFIED:
        if not entry.psa_user_ref:
            raise UnresolvedUser(
                "“Log time entries as” is a specified PSA user, but no user is chosen: "
                "choose one in Tenant settings."
            )
        return PSAUser(ref=entry.psa_user_ref, name=entry.psa_user_name), None

    if entry.log_as == Tenant.LogAs.ASSIGNEE:
        ticket = backend.get_ticket(entry.run.ticket_id)
        if ticket.assignee is None:
            raise UnresolvedUser(
                f"Ticket #{entry.run.ticket_id} has no assignee in {vendor}: assign it, or "
                "choose another “Log time entries as” option."
            )
        return ticket.assignee, ticket

    email = entry.run.started_by
    mapping = PSAUserMapping.objects.filter(connection=connection, email=email).first()
    if mapping is not None:
        return PSAUser(ref=mapping.psa_user_ref, name=mapping.psa_user_name, email=email), None
    user = backend.find_user_by_email(email)
    if user is None:
        raise UnresolvedUser(
            f"No active {vendor} user has the e-mail {email}: set that e-mail on the user in "
            f"{vendor}, or add a PSA user mapping for it."
        )
    PSAUserMapping.objects.update_or_create(
        connection=connection,
        email=email,
        defaults={
            "tenant_id": entry.tenant_id,
            "psa_user_ref": user.ref,
            "psa_user_name": user.name,
            "source": PSAUserMapping.Source.RESOLVED,
        },
    )
    return user, None


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
    exchanges = _exchanges(backend)
    PostAttempt.objects.create(
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
    psa_entry_id: str,
    start: dt.datetime,
    end: dt.datetime,
    started: dt.datetime,
    backend: PSABackend | None,
    adopted: bool,
) -> None:
    with transaction.atomic():
        entry.status = TimeEntry.Status.POSTED
        entry.psa_entry_id = psa_entry_id
        entry.psa_user_ref = user.ref
        entry.psa_user_name = user.name or user.ref
        entry.start, entry.end = start, end
        entry.posted_at = timezone.now()
        entry.error_class = ""
        entry.error = ""
        entry.save()
        _record_attempt(
            entry=entry,
            started=started,
            outcome="adopted" if adopted else "posted",
            error="",
            backend=backend,
        )
    logger.info("entry %s posted as %s (PSA id %s)", entry.pk, user.ref, psa_entry_id)


def _record_failure(
    *, entry: TimeEntry, error: PSAError, started: dt.datetime, backend: PSABackend | None
) -> None:
    with transaction.atomic():
        entry.status = TimeEntry.Status.FAILED
        entry.error_class = error.kind
        entry.error = error.message
        entry.save(update_fields=["status", "error_class", "error", "updated_at"])
        _record_attempt(
            entry=entry, started=started, outcome=error.kind, error=error.message, backend=backend
        )
    logger.warning("entry %s failed (%s): %s", entry.pk, error.kind, error.message)
