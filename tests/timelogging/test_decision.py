"""Every combination of status × apply-to × client tags × automation setting → decision."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from timelogging.models import AutomationRun, Tenant
from timelogging.services.decision import (
    SettingsInForce,
    decide,
    entry_window,
    minutes_to_log,
)

T0 = dt.datetime(2026, 5, 1, 14, 0, tzinfo=dt.UTC)
R = AutomationRun.SkipReason
TIME_LOGGING, ADHOC, OTHER = 1, 2, 3

STATUSES = [True, False]
APPLY_TO = [
    (Tenant.ApplyTo.NONE, frozenset()),
    (Tenant.ApplyTo.ALL, frozenset()),
    (Tenant.ApplyTo.TAGS, frozenset({TIME_LOGGING, ADHOC})),
]
CLIENT_TAGS = [
    frozenset(),
    frozenset({TIME_LOGGING}),
    frozenset({ADHOC, OTHER}),
    frozenset({OTHER}),
]
AUTOMATION = [  # (log_time, minutes)
    (True, None),
    (True, 20),
    (False, None),
    (False, 20),
]
OUTCOMES = [AutomationRun.Outcome.COMPLETED, AutomationRun.Outcome.FAILED]


def expected(enabled, apply_to, apply_tags, client_tags, log_time, minutes, outcome):
    """The rules of product.md, written independently of the implementation."""
    if not enabled:
        return (False, R.STATUS_OFF, None)
    if apply_to == Tenant.ApplyTo.NONE:
        return (False, R.APPLY_TO_NONE, None)
    if apply_to == Tenant.ApplyTo.TAGS and not (apply_tags & client_tags):
        return (False, R.CLIENT_NOT_IN_SCOPE, None)
    if not log_time:
        return (False, R.AUTOMATION_OFF, None)
    if outcome != AutomationRun.Outcome.COMPLETED:
        return (False, R.NOT_COMPLETED, None)
    return (True, "", minutes if minutes else 7)  # the run below lasts 6 min 10 s → 7


CASES = [
    (enabled, apply_to, apply_tags, client_tags, log_time, minutes, outcome)
    for enabled, (apply_to, apply_tags), client_tags, (log_time, minutes), outcome in (
        itertools.product(STATUSES, APPLY_TO, CLIENT_TAGS, AUTOMATION, OUTCOMES)
    )
]


@pytest.mark.parametrize("enabled,apply_to,apply_tags,client_tags,log_time,minutes,outcome", CASES)
def test_decision_table(enabled, apply_to, apply_tags, client_tags, log_time, minutes, outcome):
    decision = decide(
        settings=SettingsInForce(
            enabled=enabled, apply_to=apply_to, apply_tag_ids=apply_tags, log_as="starter"
        ),
        client_tag_ids=client_tags,
        automation_log_time=log_time,
        automation_minutes=minutes,
        outcome=outcome,
        started_at=T0,
        completed_at=T0 + dt.timedelta(minutes=6, seconds=10),
    )
    want = expected(enabled, apply_to, apply_tags, client_tags, log_time, minutes, outcome)
    assert (decision.log, decision.skip_reason, decision.minutes) == want


def test_table_covers_every_reason():
    reasons = {expected(*case)[1] for case in CASES}
    assert reasons == {"", *R.values}


@pytest.mark.parametrize(
    "duration,want",
    [
        (dt.timedelta(0), 1),  # at least one minute
        (dt.timedelta(seconds=1), 1),
        (dt.timedelta(seconds=59), 1),
        (dt.timedelta(seconds=60), 1),
        (dt.timedelta(seconds=61), 2),  # rounded up to whole minutes
        (dt.timedelta(minutes=19, seconds=59, microseconds=1), 20),
        (dt.timedelta(minutes=20), 20),
        (dt.timedelta(hours=30), 24 * 60),  # capped at a day: no PSA takes a longer entry
    ],
)
def test_real_duration_rounding(duration, want):
    assert (
        minutes_to_log(automation_minutes=None, started_at=T0, completed_at=T0 + duration) == want
    )


def test_automation_minutes_win_over_duration():
    got = minutes_to_log(
        automation_minutes=15, started_at=T0, completed_at=T0 + dt.timedelta(hours=2)
    )
    assert got == 15


def test_window_starts_when_the_automation_began():
    assert entry_window(started_at=T0, minutes=20) == (T0, T0 + dt.timedelta(minutes=20))
