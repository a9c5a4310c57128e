"""Delivery guarantees: every transition of an entry's state, backoff, pause/resume, the sweep,
the request budget and the connection's concurrency."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest
import requests
import responses
from django.utils import timezone
from django_q.models import OrmQ

from psa.base import RetryableError
from tests.factories import AutomationRunFactory, TimeEntryFactory
from timelogging.models import PostAttempt, RequestBudget, TimeEntry
from timelogging.services.budget import BudgetExhausted, budget_spend, requests_per_minute
from timelogging.services.delivery import (
    backoff_delay,
    connection_pause,
    connection_resume,
    entries_retry,
    entries_sweep,
    queue_stats,
)
from timelogging.tasks import post_time_entry

pytestmark = pytest.mark.django_db

SITE = "https://cw.example.com"
API = f"{SITE}/v2025_1/apis/3.0/"
ENTRIES = f"{API}time/entries"


def make_entry(tenant, **kwargs):
    # The tenant's settings agree with the entry's decision (a resume decides it again).
    if tenant.log_as != "specified":
        tenant.log_as, tenant.specified_psa_user_ref = "specified", "timelogging"
        tenant.save()
    run = AutomationRunFactory(tenant=tenant, ticket_id="1001")
    defaults = {"log_as": "specified", "psa_user_ref": "timelogging"}
    return TimeEntryFactory(run=run, **{**defaults, **kwargs})


def posts(mock):
    return [c for c in mock.calls if c.request.method == "POST" and c.request.url == ENTRIES]


def refreshed(entry):
    entry.refresh_from_db()
    return entry


# --- backoff, a pure function -----------------------------------------------------------------
def test_backoff_grows_exponentially_within_jitter_bounds():
    rng = random.Random(7)
    for attempt in range(1, 10):
        ceiling = min(3600, 30 * 2 ** (attempt - 1))
        for _ in range(50):
            delay = backoff_delay(attempt, base=30, cap=3600, rng=rng)
            assert ceiling / 2 <= delay <= ceiling


def test_backoff_is_capped_and_jittered():
    rng = random.Random(1)
    delays = {backoff_delay(30, base=30, cap=600, rng=rng) for _ in range(20)}
    assert all(300 <= d <= 600 for d in delays)
    assert len(delays) > 1  # jitter: entries that failed together do not return together


def test_retry_after_is_a_floor():
    assert backoff_delay(1, base=30, cap=3600, retry_after=120, rng=random.Random(0)) == 120
    assert backoff_delay(1, base=30, cap=3600, retry_after=1, rng=random.Random(0)) >= 15


# --- transitions ------------------------------------------------------------------------------
def test_pending_to_posted(cw, connection, tenant):
    cw.post(ENTRIES, json={"id": 1}, status=201)
    entry = make_entry(tenant)
    assert post_time_entry(entry.pk) == "posted"
    entry = refreshed(entry)
    assert (entry.status, entry.attempts, entry.counted_attempts) == ("posted", 1, 1)
    assert entry.next_attempt_at is None and entry.lease_expires_at is None


def test_retryable_failure_waits_and_counts_the_attempt(cw, connection, tenant):
    cw.post(ENTRIES, status=503, json={"message": "down"})
    cw.get(f"{API}system/info", json={})
    entry = make_entry(tenant)
    before = timezone.now()
    post_time_entry(entry.pk)
    entry = refreshed(entry)
    # A 5xx after sending may have stored the entry: retry, and look first.
    assert (entry.status, entry.counted_attempts, entry.needs_lookup) == ("retry_wait", 1, True)
    assert entry.next_attempt_at > before
    assert entry.error_class == "unknown_outcome"


def test_not_due_until_its_time(cw, connection, tenant):
    entry = make_entry(tenant)
    TimeEntry.objects.filter(pk=entry.pk).update(
        status="retry_wait", next_attempt_at=timezone.now() + dt.timedelta(minutes=5)
    )
    assert post_time_entry(entry.pk) == "not due (retry_wait)"
    assert len(cw.calls) == 0


def test_429_is_back_pressure_and_uses_no_attempt(cw, connection, tenant):
    cw.post(ENTRIES, status=429, headers={"Retry-After": "40"}, body="slow down")
    entry = make_entry(tenant)
    before = timezone.now()
    post_time_entry(entry.pk)
    entry = refreshed(entry)
    assert entry.status == "retry_wait"
    # A wait, not an attempt: no attempt row, the entry says what it waits for and until when.
    assert (entry.attempts, entry.counted_attempts) == (0, 0)
    assert entry.next_attempt_at >= before + dt.timedelta(seconds=40)
    assert not PostAttempt.objects.filter(entry=entry).exists()
    assert entry.waiting_for == "retry_after"
    assert entry.wait_text.startswith("waiting for the PSA's Retry-After until ")


def test_permanent_failure_is_not_retried(cw, connection, tenant):
    cw.post(ENTRIES, status=400, json={"code": "InvalidObject", "message": "bad", "errors": []})
    entry = make_entry(tenant)
    post_time_entry(entry.pk)
    entry = refreshed(entry)
    assert (entry.status, entry.error_class, entry.next_attempt_at) == (
        "failed",
        "permanent",
        None,
    )


def test_attempt_cap_fails_the_entry_for_a_person(cw, connection, tenant, settings):
    settings.PIADESK_MAX_ATTEMPTS = 3
    cw.get(f"{API}time/entries", json=[])  # the look-up before each re-post finds nothing
    cw.post(ENTRIES, status=502, body="bad gateway")
    entry = make_entry(tenant)
    for _ in range(3):
        TimeEntry.objects.filter(pk=entry.pk).update(next_attempt_at=timezone.now())
        post_time_entry(entry.pk)
    entry = refreshed(entry)
    assert entry.status == "failed"
    assert entry.error.startswith("Gave up after 3 attempts")
    assert len(posts(cw)) == 3


def test_age_cap_fails_the_entry(cw, connection, tenant, settings):
    settings.PIADESK_MAX_ENTRY_AGE_HOURS = 1
    cw.post(ENTRIES, status=503, body="")
    entry = make_entry(tenant)
    TimeEntry.objects.filter(pk=entry.pk).update(created_at=timezone.now() - dt.timedelta(hours=2))
    post_time_entry(entry.pk)
    entry = refreshed(entry)
    assert entry.status == "failed" and "Gave up after 2 hours" in entry.error


def test_configuration_failure_pauses_the_connection_and_holds_its_entries(cw, connection, tenant):
    cw.post(ENTRIES, status=401, body="")
    entry = make_entry(tenant)
    waiting = make_entry(tenant)
    post_time_entry(entry.pk)
    entry, waiting = refreshed(entry), refreshed(waiting)
    connection.refresh_from_db()
    assert (entry.status, entry.error_class) == ("held", "configuration")
    assert waiting.status == "held"
    assert connection.paused_at is not None and "401" in connection.pause_reason
    # While paused nothing is posted: a due entry is held when claimed.
    other = make_entry(tenant)
    assert post_time_entry(other.pk) == "held"
    assert len(posts(cw)) == 1


def test_resume_releases_held_entries_and_they_post(cw, connection, tenant):
    cw.post(ENTRIES, json={"id": 5}, status=201)
    entry = make_entry(tenant)
    connection_pause(connection_id=connection.pk, reason="staff paused it")
    assert refreshed(entry).status == "held"
    assert post_time_entry(entry.pk) == "not due (held)"

    assert connection_resume(connection_id=connection.pk) == 1
    entry = refreshed(entry)
    assert entry.status == "pending"
    connection.refresh_from_db()
    assert connection.paused_at is None and connection.pause_reason == ""
    result = entries_sweep()
    assert result.enqueued == 1
    assert post_time_entry(entry.pk) == "posted"


def test_staff_retry_of_failed_entries_starts_them_afresh(cw, connection, tenant):
    entry = make_entry(tenant)
    TimeEntry.objects.filter(pk=entry.pk).update(status="failed", counted_attempts=10, attempts=10)
    posted = make_entry(tenant)
    TimeEntry.objects.filter(pk=posted.pk).update(status="posted")
    assert entries_retry(entry_ids=[entry.pk, posted.pk]) == 1
    entry = refreshed(entry)
    assert (entry.status, entry.counted_attempts, entry.attempts) == ("pending", 0, 10)
    assert refreshed(posted).status == "posted"


# --- exactly once: look before re-posting -----------------------------------------------------
def test_after_an_unknown_outcome_an_existing_entry_is_adopted(cw, connection, tenant):
    entry = make_entry(tenant)
    reference = entry.run.reference_text
    cw.post(ENTRIES, body=requests.ReadTimeout("read timed out"))
    post_time_entry(entry.pk)
    entry = refreshed(entry)
    assert (entry.status, entry.needs_lookup) == ("retry_wait", True)

    # It had landed: the look-up finds it, and nothing is posted again.
    cw.replace(responses.POST, ENTRIES, json={"id": 99}, status=201)
    cw.get(ENTRIES, json=[{"id": 4242, "notes": f"...\nReference: {reference}"}])
    TimeEntry.objects.filter(pk=entry.pk).update(next_attempt_at=timezone.now())
    assert post_time_entry(entry.pk) == "adopted"
    entry = refreshed(entry)
    assert (entry.status, entry.psa_entry_id, entry.needs_lookup) == ("posted", "4242", False)
    assert len(posts(cw)) == 1  # only the first, timed-out one
    assert list(PostAttempt.objects.filter(entry=entry).values_list("outcome", flat=True)) == [
        "unknown_outcome",
        "adopted",
    ]


def test_after_an_unknown_outcome_a_missing_entry_is_posted(cw, connection, tenant):
    entry = make_entry(tenant)
    TimeEntry.objects.filter(pk=entry.pk).update(needs_lookup=True)
    cw.get(ENTRIES, json=[{"id": 1, "notes": "someone else's entry"}])
    cw.post(ENTRIES, json={"id": 7}, status=201)
    assert post_time_entry(entry.pk) == "posted"
    assert len(posts(cw)) == 1
    lookups = [c for c in cw.calls if c.request.method == "GET" and "time/entries" in c.request.url]
    assert len(lookups) == 1


def test_an_abandoned_entry_is_rescued_and_looked_up(cw, connection, tenant):
    entry = make_entry(tenant)
    TimeEntry.objects.filter(pk=entry.pk).update(
        status="posting", attempts=1, lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    result = entries_sweep()
    assert result.rescued == 1
    entry = refreshed(entry)
    assert (entry.status, entry.needs_lookup) == ("retry_wait", True)
    cw.get(ENTRIES, json=[{"id": 31, "notes": entry.run.reference_text}])
    assert post_time_entry(entry.pk) == "adopted"
    assert len(posts(cw)) == 0


def test_a_redelivered_task_takes_over_an_abandoned_entry(cw, connection, tenant):
    # django-q2 re-runs the task of a killed worker: the entry is still "posting", lease gone.
    entry = make_entry(tenant)
    TimeEntry.objects.filter(pk=entry.pk).update(
        status="posting", attempts=1, lease_expires_at=timezone.now() - dt.timedelta(seconds=1)
    )
    cw.get(ENTRIES, json=[])
    cw.post(ENTRIES, json={"id": 8}, status=201)
    assert post_time_entry(entry.pk) == "posted"
    assert refreshed(entry).attempts == 2


# --- the sweep --------------------------------------------------------------------------------
def test_sweep_enqueues_due_entries_once(connection, tenant):
    due = make_entry(tenant)
    TimeEntry.objects.filter(pk=due.pk).update(
        status="retry_wait", next_attempt_at=timezone.now() - dt.timedelta(seconds=1)
    )
    later = make_entry(tenant)
    TimeEntry.objects.filter(pk=later.pk).update(
        status="retry_wait", next_attempt_at=timezone.now() + dt.timedelta(hours=1)
    )
    OrmQ.objects.all().delete()
    assert entries_sweep().enqueued == 1
    assert entries_sweep().enqueued == 0  # already queued
    [task] = [q.task for q in OrmQ.objects.all()]
    assert task["args"] == (due.pk,)


def test_sweep_requeues_a_task_that_was_lost(connection, tenant, settings):
    entry = make_entry(tenant)
    TimeEntry.objects.filter(pk=entry.pk).update(
        status="pending",
        next_attempt_at=timezone.now() - dt.timedelta(hours=1),
        enqueued_at=timezone.now() - dt.timedelta(seconds=settings.Q_CLUSTER["retry"] + 1),
    )
    assert entries_sweep().enqueued == 1


# --- concurrency and the request budget ---------------------------------------------------------
def test_connection_concurrency_defers_without_an_attempt(cw, connection, tenant):
    connection.max_concurrency = 1
    connection.save()
    busy = make_entry(tenant)
    TimeEntry.objects.filter(pk=busy.pk).update(
        status="posting",
        connection=connection,
        lease_expires_at=timezone.now() + dt.timedelta(minutes=5),
    )
    entry = make_entry(tenant)
    assert post_time_entry(entry.pk) == "deferred (connection busy)"
    entry = refreshed(entry)
    assert (entry.status, entry.waiting_for, entry.attempts) == ("retry_wait", "concurrency", 0)
    assert entry.wait_text.startswith("waiting for a free posting slot on the connection until")
    assert entry.next_attempt_at <= timezone.now() + dt.timedelta(seconds=4)
    assert len(cw.calls) == 0


def test_budget_counts_requests_per_minute_for_all_workers(connection):
    connection.requests_per_hour = 120  # 2 per minute
    connection.save()
    assert requests_per_minute(connection) == 2
    now = timezone.now().replace(second=10)
    budget_spend(connection=connection, now=now)
    budget_spend(connection=connection, now=now)
    with pytest.raises(BudgetExhausted) as exc:
        budget_spend(connection=connection, now=now)
    assert 49 <= exc.value.retry_after <= 50
    assert isinstance(exc.value, RetryableError)
    budget_spend(connection=connection, now=now + dt.timedelta(minutes=1))  # a new minute
    assert RequestBudget.objects.get(connection=connection).used == 1
    # A worker whose clock is a little behind spends from the current minute, never resets it.
    budget_spend(connection=connection, now=now)
    with pytest.raises(BudgetExhausted):
        budget_spend(connection=connection, now=now)
    budget = RequestBudget.objects.get(connection=connection)
    assert (budget.used, budget.window_start) == (
        2,
        now.replace(second=0, microsecond=0) + dt.timedelta(minutes=1),
    )


def test_exhausted_budget_holds_the_entry_back_without_an_attempt(cw, connection, tenant):
    connection.requests_per_hour = 60  # one request per minute
    connection.save()
    cw.post(ENTRIES, json={"id": 1}, status=201)
    entry = make_entry(tenant)
    post_time_entry(entry.pk)  # the codebase look-up uses the minute's only request
    entry = refreshed(entry)
    assert (entry.status, entry.waiting_for, entry.attempts, entry.counted_attempts) == (
        "retry_wait",
        "budget",
        0,
        0,
    )
    assert entry.error_class == ""  # a wait is not an error
    assert (
        entry.wait_text
        == f"waiting for the request budget until {entry.next_attempt_at:%H:%M:%S} UTC"
    )
    assert not PostAttempt.objects.filter(entry=entry).exists()
    assert len(posts(cw)) == 0


def test_waiting_many_times_is_never_an_attempt(cw, connection, tenant):
    # Issue 11: 12 "attempts" for one entry that only waited for the budget.
    connection.requests_per_hour = 60
    connection.save()
    cw.post(ENTRIES, json={"id": 1}, status=201)
    entry = make_entry(tenant)
    for _ in range(12):
        # The minute's budget is spent (whenever the minute turns during the test).
        now = timezone.now()
        RequestBudget.objects.update_or_create(
            connection=connection,
            defaults={"window_start": now.replace(second=0, microsecond=0), "used": 1},
        )
        TimeEntry.objects.filter(pk=entry.pk).update(next_attempt_at=now)
        post_time_entry(entry.pk)
    entry = refreshed(entry)
    assert (entry.status, entry.attempts) == ("retry_wait", 0)
    assert not PostAttempt.objects.filter(entry=entry).exists()


# --- the queue, for staff ---------------------------------------------------------------------
def test_queue_stats(connection, tenant):
    old = make_entry(tenant)
    TimeEntry.objects.filter(pk=old.pk).update(created_at=timezone.now() - dt.timedelta(hours=3))
    failed = make_entry(tenant)
    TimeEntry.objects.filter(pk=failed.pk).update(status="failed", error_class="permanent")
    done = make_entry(tenant)
    TimeEntry.objects.filter(pk=done.pk).update(status="posted")
    stats = queue_stats(tenant_ids=[tenant.pk])
    assert stats.by_status == {"pending": 1, "failed": 1}
    assert stats.failures_by_class == {"permanent": 1}
    assert timezone.now() - stats.oldest_waiting > dt.timedelta(hours=2)


def test_payloads_are_unchanged_by_delivery(cw, connection, tenant):
    cw.post(ENTRIES, json={"id": 1}, status=201)
    entry = make_entry(tenant)
    post_time_entry(entry.pk)
    assert json.loads(posts(cw)[0].request.body)["notes"] == entry.notes


# --- issue 11 ---------------------------------------------------------------------------------
def test_an_adopted_entry_records_the_window_the_psa_holds(cw, connection, tenant):
    # ConnectWise moved the window back when it was first sent (it ended in the future then):
    # after the unknown outcome the look-up finds it, and piadesk records what ConnectWise
    # holds, not the entry's unadjusted window.
    entry = make_entry(tenant)
    TimeEntry.objects.filter(pk=entry.pk).update(needs_lookup=True)
    held_start = entry.start - dt.timedelta(minutes=7)
    held_end = entry.end - dt.timedelta(minutes=7)
    cw.get(
        ENTRIES,
        json=[
            {
                "id": 4243,
                "notes": f"...\nReference: {entry.run.reference_text}",
                "timeStart": held_start.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                "timeEnd": held_end.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            }
        ],
    )
    assert post_time_entry(entry.pk) == "adopted"
    entry = refreshed(entry)
    assert (entry.psa_entry_id, entry.start, entry.end) == (
        "4243",
        held_start.replace(microsecond=0),
        held_end.replace(microsecond=0),
    )
    assert len(posts(cw)) == 0


def test_entries_meeting_a_paused_connection_leave_its_reason_and_history_alone(
    cw, connection, tenant
):
    from django.contrib.contenttypes.models import ContentType

    from timelogging.models import ConfigChange, PSAConnection

    connection_pause(connection_id=connection.pk, reason="Bad keys.")
    history = ConfigChange.objects.filter(
        content_type=ContentType.objects.get_for_model(PSAConnection), object_id=str(connection.pk)
    )
    rows = history.count()
    for _ in range(3):
        entry = make_entry(tenant)
        assert post_time_entry(entry.pk) == "held"
    connection.refresh_from_db()
    assert connection.pause_reason == "Bad keys."
    assert history.count() == rows
    # A second configuration failure while paused does not rewrite the reason either.
    connection_pause(connection_id=connection.pk, reason="Something else.")
    connection.refresh_from_db()
    assert connection.pause_reason == "Bad keys."
    assert history.count() == rows
    assert len(posts(cw)) == 0
