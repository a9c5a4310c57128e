"""What a run would do with the settings on screen, before they are saved (the settings page's
"Preview").

The rules are the ones ingest and posting apply: ``decide()``, ``minutes_to_log()``,
``entry_window()``, the backend's ``adjust_window`` and ``posting.psa_user_resolve``; beyond
what a worker reads before posting, the specified PSA user and the ticket are looked up, so that
what the PSA would refuse is said before saving (``PreviewOutcome``: failed, held, or unchecked
when the PSA cannot be asked). Nothing here writes to the database or the PSA: the look-ups are
reads, and they count against the connection's request budget like every look-up made for
staff.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from django.db.models import TextChoices
from django.utils import timezone

from psa.base import (
    ConfigurationError,
    NotFoundError,
    PSABackend,
    PSAError,
    PSAUser,
    Ticket,
    UserError,
)
from timelogging.models import AutomationRun, PSAConnection, Tenant
from timelogging.services.connections import connection_lookup_backend, lookup_error_message
from timelogging.services.decision import SettingsInForce, decide, entry_window
from timelogging.services.posting import psa_user_resolve

logger = logging.getLogger(__name__)

LOGGED = "Time logging applies to this client and automation."


class PreviewOutcome(TextChoices):
    """What would become of the run's entry (labels: the answer's headline)."""

    LOGGED = "logged", "Would be logged."
    SKIPPED = "skipped", "Would not be logged."
    FAILED = "failed", "Would NOT be logged: the entry would fail."
    HELD = "held", "Would NOT be logged yet: the entry would be held."
    UNCHECKED = "unchecked", "Would be logged if the PSA accepts it: it could not be checked."


@dataclass(frozen=True)
class PreviewRun:
    """The run to imagine: it completes now (this minute), after ``duration``."""

    client_tag_ids: Collection[int]
    automation_name: str
    # The automation's row as on screen (unsaved): "Log time" and its minutes.
    automation_log_time: bool
    automation_minutes: int | None
    started_by: str
    ticket_id: str
    duration: dt.timedelta


@dataclass(frozen=True)
class SettingsPreview:
    log: bool  # the settings log the run (whether the PSA would take it: ``outcome``)
    skip_reason: str  # an AutomationRun.SkipReason value when not logged
    reason: str  # in words: why not, or what stands in the way and the fix
    outcome: str = PreviewOutcome.LOGGED
    headline: str = PreviewOutcome.LOGGED.label
    minutes: int | None = None
    minutes_why: str = ""
    start: dt.datetime | None = None  # the window as posted (after the vendor's rules)
    end: dt.datetime | None = None
    window_text: str = ""
    shift: str = ""  # the vendor moved the window (ConnectWise: no future time)
    log_as: str = ""
    log_as_label: str = ""
    user: PSAUser | None = None
    user_text: str = ""
    user_error: str = ""
    ticket_id: str = ""
    ticket_error: str = ""
    notes: list[str] = field(default_factory=list)


def settings_preview(
    *,
    tenant: Tenant,
    settings: SettingsInForce,
    specified_ref: str,
    specified_name: str,
    run: PreviewRun,
    now: dt.datetime | None = None,
) -> SettingsPreview:
    """The decision, the minutes, the window, the PSA user and the ticket a run would get, and
    whether it would reach the PSA (``outcome``).

    ``settings`` and the automation's values in ``run`` are what is on screen, saved or not.
    PSA problems are reported, never raised: this answers a page.
    """
    now = now or timezone.now()
    # The run completes at the start of this minute: a window that ends "now" to the second
    # would be moved back by a few seconds (ConnectWise ends entries at the current minute),
    # which is true but not what the staff are asking about.
    completed_at = now.replace(second=0, microsecond=0)
    started_at = completed_at - run.duration
    decision = decide(
        settings=settings,
        client_tag_ids=run.client_tag_ids,
        automation_log_time=run.automation_log_time,
        automation_minutes=run.automation_minutes,
        outcome=AutomationRun.Outcome.COMPLETED,
        started_at=started_at,
        completed_at=completed_at,
    )
    log_as_label = Tenant.LogAs(settings.log_as).label
    if not decision.log:
        return SettingsPreview(
            log=False,
            skip_reason=decision.skip_reason,
            reason=AutomationRun.SkipReason(decision.skip_reason).label,
            outcome=PreviewOutcome.SKIPPED,
            headline=PreviewOutcome.SKIPPED.label,
            log_as=settings.log_as,
            log_as_label=log_as_label,
        )

    minutes = decision.minutes
    assert minutes is not None
    if run.automation_minutes:
        minutes_why = f"set for “{run.automation_name}”"
    else:
        minutes_why = (
            f"no minutes set for “{run.automation_name}”: the run's real duration, rounded up "
            "to whole minutes"
        )
    start, end = entry_window(started_at=started_at, minutes=minutes)
    check = _PSACheck()
    connection = PSAConnection.objects.filter(tenant=tenant, is_active=True).first()
    if connection is None:
        check.problem(
            PreviewOutcome.FAILED,
            "The tenant has no active PSA connection, so the entry would fail: add one under "
            "PSA connections.",
        )
        if settings.log_as == Tenant.LogAs.SPECIFIED and specified_ref:
            check.user = PSAUser(ref=specified_ref, name=specified_name)
        else:
            check.user_error = "No PSA connection to look the user up in."
    else:
        if connection.paused_at is not None:
            check.problem(
                PreviewOutcome.HELD,
                f"The {connection.vendor_label} connection is paused: the entry would be held "
                f"until it is resumed (PSA connections → “Resume selected connections”). Why: "
                f"{connection.pause_reason}",
            )
        backend: PSABackend | None = None
        try:
            backend = connection_lookup_backend(connection)
            posted_start, posted_end = backend.adjust_window(start, end, now)
            if (posted_start, posted_end) != (start, end):
                check.shift = (
                    f"{connection.vendor_label} refuses time in the future: the entry would "
                    f"end at {_hm(end)}, after now ({_hm(now)} {_zone()}), so it is moved back to "
                    f"{_hm(posted_start)}–{_hm(posted_end)} {_zone()}, keeping its {minutes} "
                    "minutes."
                )
            start, end = posted_start, posted_end
            _check_user_and_ticket(
                check,
                settings=settings,
                run=run,
                specified=PSAUser(ref=specified_ref, name=specified_name),
                connection=connection,
                backend=backend,
            )
        except PSAError as exc:
            message = lookup_error_message(connection=connection, error=exc)
            if isinstance(exc, ConfigurationError):
                # What a worker would meet too: the connection's problem, its entries held.
                check.problem(
                    PreviewOutcome.HELD,
                    f"{message} The entry would be held and the connection paused until this "
                    "is fixed.",
                )
            else:
                check.unchecked(message)
            check.user_error = check.user_error or message
        except Exception:
            # A bug in a backend: the page gets words, the log gets the trace.
            logger.exception("preview look-up on connection %s failed", connection.pk)
            check.unchecked("The look-up failed unexpectedly; the server log has the details.")
            check.user_error = check.user_error or check.reasons[-1]
        finally:
            if backend is not None:
                backend.http.close()
    outcome, headline, reason = check.verdict()
    return SettingsPreview(
        log=True,
        skip_reason="",
        reason=reason,
        outcome=outcome,
        headline=headline,
        minutes=minutes,
        minutes_why=minutes_why,
        start=start,
        end=end,
        window_text=f"{timezone.localtime(start):%Y-%m-%d} {_hm(start)}–{_hm(end)} {_zone()}",
        shift=check.shift,
        log_as=settings.log_as,
        log_as_label=log_as_label,
        user=check.user,
        user_text=_user_text(check.user) if check.user is not None else "",
        user_error=check.user_error,
        ticket_id=run.ticket_id,
        ticket_error=check.ticket_error,
        notes=[],
    )


class _PSACheck:
    """What the look-ups found, and the worst of what would happen to the entry."""

    # Worst first: held (the connection pauses), failed (a person must act), unchecked.
    RANK = (PreviewOutcome.HELD, PreviewOutcome.FAILED, PreviewOutcome.UNCHECKED)

    def __init__(self) -> None:
        self.user: PSAUser | None = None
        self.user_error = ""
        self.ticket_error = ""
        self.shift = ""
        self.outcomes: list[PreviewOutcome] = []
        self.reasons: list[str] = []

    def problem(self, outcome: PreviewOutcome, reason: str) -> None:
        self.outcomes.append(outcome)
        self.reasons.append(reason)

    def unchecked(self, reason: str) -> None:
        self.problem(PreviewOutcome.UNCHECKED, reason)

    def verdict(self) -> tuple[PreviewOutcome, str, str]:
        if not self.outcomes:
            return PreviewOutcome.LOGGED, PreviewOutcome.LOGGED.label, LOGGED
        worst = min(self.outcomes, key=self.RANK.index)
        return worst, worst.label, " ".join(self.reasons)


def _check_user_and_ticket(
    check: _PSACheck,
    *,
    settings: SettingsInForce,
    run: PreviewRun,
    specified: PSAUser,
    connection: PSAConnection,
    backend: PSABackend,
) -> None:
    """Who the entry would be logged as, and whether the PSA knows the ticket: the reads a
    worker makes (``psa_user_resolve``), plus the specified user and the ticket, which a
    worker learns of only when the post is refused. PSA errors other than "not found" and
    "no such user" propagate (the connection's, or the PSA could not be asked)."""
    vendor = connection.vendor_label
    specified_mode = settings.log_as == Tenant.LogAs.SPECIFIED
    ticket: Ticket | None = None
    ticket_read = False
    missing = _missing_input(settings.log_as, run)
    if missing:
        check.user_error = missing
        check.unchecked(missing)
    else:
        try:
            user, ticket = psa_user_resolve(
                log_as=settings.log_as,
                ticket_id=run.ticket_id,
                started_by=run.started_by,
                specified_ref=specified.ref,
                specified_name=specified.name,
                connection=connection,
                backend=backend,
                remember=False,
            )
            ticket_read = ticket is not None
            if specified_mode:
                found = backend.get_user(specified.ref)
                user = PSAUser(ref=specified.ref, name=found.name or specified.name)
            check.user = user
        except UserError as exc:
            check.user_error = exc.message
            if specified_mode:
                check.problem(PreviewOutcome.HELD, _held_for_the_specified_user(exc.message))
            else:
                check.problem(PreviewOutcome.FAILED, exc.message)
        except NotFoundError as exc:
            if specified_mode:  # the specified user, looked up above
                message = (
                    f"The specified PSA user {_user_text(specified)} is not a user of "
                    f"{vendor} ({exc.message})."
                )
                check.user_error = message
                check.problem(PreviewOutcome.HELD, _held_for_the_specified_user(message))
            else:  # the assignee's ticket, read for its assignee
                ticket_read = True
                _ticket_missing(check, run.ticket_id, exc)
    if run.ticket_id and not ticket_read:
        try:
            backend.get_ticket(run.ticket_id)
        except NotFoundError as exc:
            _ticket_missing(check, run.ticket_id, exc)


def _held_for_the_specified_user(message: str) -> str:
    return (
        f"{message} Every entry is logged as this user: the entry would be held and the "
        "connection paused until “Specified PSA user” names a user of the PSA (pick one with "
        "the search above the field)."
    )


def _ticket_missing(check: _PSACheck, ticket_id: str, error: NotFoundError) -> None:
    check.ticket_error = error.message
    check.problem(
        PreviewOutcome.FAILED,
        f"{error.message}: a run on ticket {ticket_id} would fail. The entry goes on the "
        "ticket the automation reports: check the ticket number, and that the API user may "
        "see the ticket.",
    )


def _missing_input(log_as: str, run: PreviewRun) -> str:
    """What the preview needs to look the user up, when it is missing."""
    if log_as == Tenant.LogAs.ASSIGNEE and not run.ticket_id:
        return "Enter a ticket id to look up its assignee."
    if log_as == Tenant.LogAs.STARTER and not run.started_by:
        return "Enter the e-mail of the person who starts the automation."
    return ""


def _user_text(user: PSAUser) -> str:
    return f"{user.name} ({user.ref})" if user.name and user.name != user.ref else user.ref


def _hm(moment: dt.datetime) -> str:
    return f"{timezone.localtime(moment):%H:%M}"


def _zone() -> str:
    return timezone.get_current_timezone_name()
