"""A posted entry costs the worker a fixed, small number of statements (services/worker_sql.py,
services/rows.py): with eight workers on two cores, the worker's database work and the CPU
it takes set the pace of a drain, not the PSA."""

from __future__ import annotations

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext

from tests.factories import AutomationRunFactory, TimeEntryFactory
from tests.timelogging.conftest import CW_SITE
from timelogging.models import PostAttempt, TimeEntry
from timelogging.tasks import post_time_entry

pytestmark = pytest.mark.django_db

API = f"{CW_SITE}/v2025_1/apis/3.0/"


def specified_entry(tenant, n):
    tenant.log_as = "specified"
    tenant.save()
    run = AutomationRunFactory(tenant=tenant, ticket_id=str(1000 + n))
    return TimeEntryFactory(
        run=run, log_as="specified", psa_user_ref="timelogging", psa_user_name="Time Logging"
    )


def statements(sql_log):
    # Savepoints stand for the transactions the worker opens (the test runs in one).
    return [q["sql"] for q in sql_log if not q["sql"].upper().startswith(("SAVEPOINT", "RELEASE"))]


def test_a_posted_entry_costs_four_statements(cw, connection, tenant):
    cw.post(f"{API}time/entries", json={"id": 9001}, status=201)
    assert post_time_entry(specified_entry(tenant, 0).pk) == "posted"  # the budget row, once
    for n in range(1, 4):
        entry = specified_entry(tenant, n)
        with CaptureQueriesContext(db) as ctx:
            assert post_time_entry(entry.pk) == "posted"
        sql = statements(ctx.captured_queries)
        # The connection locked with the run read, the claim (the entry returned), the
        # request budget, then the posted entry with its attempt: one statement on
        # PostgreSQL, two in a transaction on SQLite.
        assert len(sql) == (4 if db.vendor == "postgresql" else 5), sql
        assert sql[1].lstrip().upper().startswith("UPDATE")
    assert TimeEntry.objects.filter(status="posted").count() == 4
    assert PostAttempt.objects.filter(outcome="posted").count() == 4


@pytest.mark.skipif(
    not db.settings_dict.get("OPTIONS", {}).get("server_side_binding"),
    reason="prepared statements (PostgreSQL, DATABASE_PREPARED_STATEMENTS on)",
)
def test_the_workers_statements_are_prepared_and_nothing_else(cw, connection, tenant):
    """Prepared on first use, run prepared afterwards (not parsed and planned per entry); the
    rest of piadesk is not prepared (DATABASE_PREPARED_STATEMENTS, rows.prepared_cursor)."""
    cw.post(f"{API}time/entries", json={"id": 9001}, status=201)
    for n in range(2):
        assert post_time_entry(specified_entry(tenant, n).pk) == "posted"
    with db.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        prepared = [row[0] for row in cursor.fetchall()]
    assert any("FOR UPDATE OF c" in sql for sql in prepared), prepared
    assert any("RETURNING" in sql and "counted_attempts" in sql for sql in prepared), prepared
    assert not any("timelogging_tenant" in sql for sql in prepared)  # the factories' ORM
    assert db.connection.prepare_threshold is None  # Django's: nothing else is prepared
