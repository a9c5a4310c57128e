"""The worker's claim in one round trip (worker_sql.entry_claim_in_one_trip): on PostgreSQL,
outside a transaction, the connection's lock, the claim and the first request's budget are
sent together in psycopg's pipeline mode and committed as one transaction. Whatever it does not
claim is decided by the transactional path, as before.

These tests run outside a test transaction (transaction=True): inside one the worker takes
the transactional path (test_worker_queries.py covers that one)."""

from __future__ import annotations

import datetime as dt
import tempfile
import threading
import time

import pytest
from django.db import connection as db
from django.db import connections, transaction
from django.utils import timezone
from psycopg import pq

from psa.registry import BACKENDS
from tests.factories import AutomationRunFactory, PSAConnectionFactory, TimeEntryFactory
from tests.timelogging.conftest import CW_SITE
from timelogging.models import PSAConnection, RequestBudget, TimeEntry
from timelogging.services import posting, worker_sql
from timelogging.services.budget import budget_window, requests_per_minute
from timelogging.tasks import post_time_entry

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(db.vendor != "postgresql", reason="pipeline mode is PostgreSQL's"),
]

API = f"{CW_SITE}/v2025_1/apis/3.0/"


def specified_entry(tenant, n, **fields):
    tenant.log_as = "specified"
    tenant.save()
    run = AutomationRunFactory(tenant=tenant, ticket_id=str(1000 + n))
    return TimeEntryFactory(
        run=run,
        log_as="specified",
        psa_user_ref="timelogging",
        psa_user_name="Time Logging",
        **fields,
    )


class RoundTrips:
    """Round trips to PostgreSQL, counted in libpq's own protocol trace: each ends with the
    server's ReadyForQuery (after a Sync, or after a simple query such as BEGIN or COMMIT)."""

    def __enter__(self):
        db.ensure_connection()
        self.file = tempfile.TemporaryFile()
        self.pgconn = db.connection.pgconn
        self.pgconn.trace(self.file.fileno())
        self.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        return self

    def __exit__(self, *exc):
        self.pgconn.untrace()
        self.file.seek(0)
        self.lines = self.file.read().decode().splitlines()
        self.file.close()

    @property
    def count(self):
        return sum(1 for line in self.lines if "ReadyForQuery" in line)


def test_a_posted_entry_costs_two_round_trips(cw, connection, tenant):
    cw.post(f"{API}time/entries", json={"id": 9001}, status=201)
    assert post_time_entry(specified_entry(tenant, 0).pk) == "posted"  # the budget row, once
    before = RequestBudget.objects.get(connection=connection)
    for n in range(1, 4):
        entry = specified_entry(tenant, n)
        with RoundTrips() as trips:
            assert post_time_entry(entry.pk) == "posted"
        # The claim with the budget, then the posted entry with its attempt (before: BEGIN,
        # the lock, the claim, COMMIT, the budget, the posted entry).
        assert trips.count == 2, trips.lines
        assert not any('"BEGIN"' in line for line in trips.lines)
    budget = RequestBudget.objects.get(connection=connection)
    if budget.window_start == before.window_start:  # else a new minute began in between
        assert budget.used == before.used + 3  # one request per entry, counted once
    assert TimeEntry.objects.filter(status="posted").count() == 4


def test_it_counts_the_first_request_and_the_backend_does_not_count_it_again(
    cw, connection, tenant
):
    cw.post(f"{API}time/entries", json={"id": 9001}, status=201)
    window = budget_window(timezone.now())
    RequestBudget.objects.create(connection=connection, window_start=window, used=5)
    entry = specified_entry(tenant, 1)
    claimed = posting._claim(entry_id=entry.pk)
    assert isinstance(claimed, tuple) and claimed[2] == 1  # counted by the claim
    if budget_window(timezone.now()) == window:
        assert RequestBudget.objects.get(connection=connection).used == 6
    RequestBudget.objects.filter(connection=connection).update(window_start=window, used=0)
    entry2 = specified_entry(tenant, 2)
    calls = len(cw.calls)
    assert post_time_entry(entry2.pk) == "posted"
    requests = len(cw.calls) - calls  # the codebase's look-up (once per process), the post
    assert requests >= 1
    if budget_window(timezone.now()) == window:
        # Each request counted once: the first by the claim, the others by the backend.
        assert RequestBudget.objects.get(connection=connection).used == requests


def test_nothing_claimed_nothing_counted(cw, connection, tenant):
    window = budget_window(timezone.now())
    RequestBudget.objects.create(connection=connection, window_start=window, used=5)
    later = timezone.now() + dt.timedelta(hours=1)
    entry = specified_entry(tenant, 1, status="retry_wait", next_attempt_at=later)
    assert post_time_entry(entry.pk) == "not due (retry_wait)"
    posted = specified_entry(tenant, 2, status="posted", psa_entry_id="77")
    assert post_time_entry(posted.pk) == "not due (posted)"
    assert RequestBudget.objects.get(connection=connection).used == 5
    entry.refresh_from_db()
    assert entry.attempts == 0 and entry.status == "retry_wait"


def test_a_used_up_budget_still_holds_the_entry_back_without_a_request(cw, connection, tenant):
    create = cw.post(f"{API}time/entries", json={"id": 9001}, status=201)
    window = budget_window(timezone.now())
    limit = requests_per_minute(connection)
    RequestBudget.objects.create(connection=connection, window_start=window, used=limit)
    entry = specified_entry(tenant, 1)
    outcome = post_time_entry(entry.pk)
    entry.refresh_from_db()
    if budget_window(timezone.now()) != window:  # a new minute began: it was posted
        pytest.skip("the minute turned during the test")
    assert outcome == "retry_wait"
    assert entry.waiting_for == TimeEntry.WaitReason.BUDGET
    assert create.call_count == 0
    assert RequestBudget.objects.get(connection=connection).used == limit


def test_a_paused_connection_holds_the_entry_as_before(cw, connection, tenant):
    connection.paused_at = timezone.now()
    connection.pause_reason = "Credentials rejected"
    connection.save()
    entry = specified_entry(tenant, 1)
    assert post_time_entry(entry.pk) == "held"
    entry.refresh_from_db()
    assert entry.status == "held" and entry.attempts == 0


@pytest.mark.parametrize("vendor", sorted(BACKENDS))
@pytest.mark.parametrize("per_hour", [None, 60, 61, 119, 1500, 3600, 6_000_000])
def test_the_limit_in_sql_is_requests_per_minute(tenant, vendor, per_hour):
    conn = PSAConnectionFactory(tenant=tenant, vendor=vendor, requests_per_hour=per_hour)
    expression, params = worker_sql._requests_per_minute_sql("c")
    table = db.ops.quote_name(PSAConnection._meta.db_table)
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT {expression} FROM {table} c WHERE c.id = %(id)s",  # noqa: S608
            {**params, "id": conn.pk},
        )
        (in_sql,) = cursor.fetchone()
    assert in_sql == requests_per_minute(conn)


def test_a_claim_that_waited_for_a_switch_of_connection_is_not_made_in_one_trip(tenant):
    """The lock statement waits for a transaction that deactivates the connection and
    activates another: the claim in one trip must not go through the new connection, whose
    lock it does not hold. The transactional path then claims it through the new one."""
    old = PSAConnectionFactory(tenant=tenant)
    entry = specified_entry(tenant, 1)
    locked = threading.Event()
    release = threading.Event()
    one_trip_results = []
    original = worker_sql.entry_claim_in_one_trip

    def spy(**kwargs):
        result = original(**kwargs)
        one_trip_results.append(result)
        return result

    def switch():
        try:
            with transaction.atomic():
                PSAConnection.objects.select_for_update().get(pk=old.pk)
                locked.set()
                release.wait(10)
                PSAConnection.objects.filter(pk=old.pk).update(is_active=False)
                PSAConnectionFactory(tenant=tenant)
        finally:
            connections.close_all()

    outcome = {}

    def claim():
        try:
            outcome["claimed"] = posting._claim(entry_id=entry.pk)
        finally:
            connections.close_all()

    posting.entry_claim_in_one_trip = spy
    try:
        switcher = threading.Thread(target=switch)
        switcher.start()
        assert locked.wait(10)
        claimer = threading.Thread(target=claim)
        claimer.start()
        time.sleep(0.5)  # the claim's lock statement now waits for the switch
        release.set()
        switcher.join(10)
        claimer.join(10)
    finally:
        posting.entry_claim_in_one_trip = original
    assert one_trip_results == [None]
    new = PSAConnection.objects.get(tenant=tenant, is_active=True)
    assert new.pk != old.pk
    claimed_entry, claimed_connection, counted = outcome["claimed"]
    assert claimed_connection.pk == new.pk and counted == 0
    entry.refresh_from_db()
    assert entry.status == "posting" and entry.connection_id == new.pk
