"""Whether a run is logged, and for how long: pure functions over plain values.

Kept free of the ORM so that every combination of the settings can be tested as a table and
so that the settings page can preview a decision before saving.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Collection
from dataclasses import dataclass

from timelogging.models import MAX_MINUTES, AutomationRun, Tenant

SkipReason = AutomationRun.SkipReason


@dataclass(frozen=True)
class SettingsInForce:
    enabled: bool
    apply_to: str
    apply_tag_ids: frozenset[int]
    log_as: str


@dataclass(frozen=True)
class Decision:
    log: bool
    skip_reason: str = ""  # an AutomationRun.SkipReason value when not logged
    minutes: int | None = None


def decide(
    *,
    settings: SettingsInForce,
    client_tag_ids: Collection[int],
    automation_log_time: bool,
    automation_minutes: int | None,
    outcome: str,
    started_at: dt.datetime,
    completed_at: dt.datetime,
) -> Decision:
    """The decision for one run. Checks run from the broadest to the narrowest reason."""
    if not settings.enabled:
        return Decision(False, SkipReason.STATUS_OFF)
    if settings.apply_to == Tenant.ApplyTo.NONE:
        return Decision(False, SkipReason.APPLY_TO_NONE)
    if settings.apply_to == Tenant.ApplyTo.TAGS and not (
        settings.apply_tag_ids & frozenset(client_tag_ids)
    ):
        return Decision(False, SkipReason.CLIENT_NOT_IN_SCOPE)
    if not automation_log_time:
        return Decision(False, SkipReason.AUTOMATION_OFF)
    if outcome != AutomationRun.Outcome.COMPLETED:
        return Decision(False, SkipReason.NOT_COMPLETED)
    return Decision(
        True,
        minutes=minutes_to_log(
            automation_minutes=automation_minutes, started_at=started_at, completed_at=completed_at
        ),
    )


def minutes_to_log(
    *, automation_minutes: int | None, started_at: dt.datetime, completed_at: dt.datetime
) -> int:
    """The automation's minutes when set; else the real duration rounded up, at least 1.

    Capped at 24 hours: no PSA accepts a longer single entry (Autotask's hoursWorked ≤ 24).
    """
    if automation_minutes:
        return automation_minutes
    seconds = (completed_at - started_at).total_seconds()
    return max(1, min(MAX_MINUTES, math.ceil(seconds / 60)))


def entry_window(*, started_at: dt.datetime, minutes: int) -> tuple[dt.datetime, dt.datetime]:
    """Start when the automation began; end = start + the minutes to log.

    Vendor rules (ConnectWise's refusal of future time) are applied when posting, against the
    posting time, by the backend's ``adjust_window``.
    """
    return started_at, started_at + dt.timedelta(minutes=minutes)
