"""What a run would do with the settings on screen, before they are saved (the settings page's
"Preview").

The rules are the ones ingest and posting apply: ``decide()``, ``minutes_to_log()``,
``entry_window()``, the backend's ``adjust_window`` and ``posting.psa_user_resolve``. Nothing
here writes to the database or the PSA: the user look-ups are reads, and they count against the
connection's request budget like every look-up made for staff.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Collection
from dataclasses import dataclass, field

from django.utils import timezone

from psa.base import PSABackend, PSAError, PSAUser
from timelogging.models import AutomationRun, PSAConnection, Tenant
from timelogging.services.connections import connection_lookup_backend, lookup_error_message
from timelogging.services.decision import SettingsInForce, decide, entry_window
from timelogging.services.posting import psa_user_resolve

logger = logging.getLogger(__name__)

LOGGED = "Time logging applies to this client and automation."


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
    log: bool
    skip_reason: str  # an AutomationRun.SkipReason value when not logged
    reason: str  # in words
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
    """The decision, the minutes, the window and the PSA user a run would get.

    ``settings`` and the automation's values in ``run`` are what is on screen, saved or not.
    PSA problems are reported in ``user_error`` (never raised): this answers a page.
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
    notes: list[str] = []
    connection = PSAConnection.objects.filter(tenant=tenant, is_active=True).first()
    user: PSAUser | None = None
    user_error = ""
    shift = ""
    if connection is None:
        notes.append(
            "The tenant has no active PSA connection: nothing can be posted until one is added."
        )
        user_error = "No PSA connection to look the user up in."
        if settings.log_as == Tenant.LogAs.SPECIFIED and specified_ref:
            user, user_error = PSAUser(ref=specified_ref, name=specified_name), ""
    else:
        if connection.paused_at is not None:
            notes.append(
                f"The {connection.vendor_label} connection is paused: the entry would be held "
                f"until it is resumed. Why: {connection.pause_reason}"
            )
        backend: PSABackend | None = None
        try:
            backend = connection_lookup_backend(connection)
            posted_start, posted_end = backend.adjust_window(start, end, now)
            if (posted_start, posted_end) != (start, end):
                shift = (
                    f"{connection.vendor_label} refuses time in the future: the entry would "
                    f"end at {_hm(end)}, after now ({_hm(now)} {_zone()}), so it is moved back to "
                    f"{_hm(posted_start)}–{_hm(posted_end)} {_zone()}, keeping its {minutes} "
                    "minutes."
                )
            start, end = posted_start, posted_end
            missing = _missing_input(settings.log_as, run)
            if missing:
                user_error = missing
            else:
                user, _ticket = psa_user_resolve(
                    log_as=settings.log_as,
                    ticket_id=run.ticket_id,
                    started_by=run.started_by,
                    specified_ref=specified_ref,
                    specified_name=specified_name,
                    connection=connection,
                    backend=backend,
                    remember=False,
                )
        except PSAError as exc:
            user_error = lookup_error_message(connection=connection, error=exc)
        except Exception:
            # A bug in a backend: the page gets words, the log gets the trace.
            logger.exception("preview look-up on connection %s failed", connection.pk)
            user_error = "The look-up failed unexpectedly; the server log has the details."
        finally:
            if backend is not None:
                backend.http.close()
    return SettingsPreview(
        log=True,
        skip_reason="",
        reason=LOGGED,
        minutes=minutes,
        minutes_why=minutes_why,
        start=start,
        end=end,
        window_text=f"{timezone.localtime(start):%Y-%m-%d} {_hm(start)}–{_hm(end)} {_zone()}",
        shift=shift,
        log_as=settings.log_as,
        log_as_label=log_as_label,
        user=user,
        user_text=_user_text(user) if user is not None else "",
        user_error=user_error,
        notes=notes,
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
