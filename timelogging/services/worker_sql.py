"""The statements the worker runs for every entry, written as SQL.

Why not the ORM here: on the machines of ``make bench`` the ORM spent more CPU building and
compiling these few statements (the claim's conditional UPDATE with its in-flight count, the
request budget's CASE, the entry read with its run) than the worker spent on everything else of
an attempt, the HTTP request included; with eight workers on two cores that CPU, not the PSA,
set the pace. Each statement here is the one the ORM produced, written once, with the same
meaning (``posting._claim`` and ``budget.budget_spend`` say what they guarantee), and runs on
both supported databases: PostgreSQL and SQLite (3.35 or later, for ``RETURNING``). Values are
bound, never formatted in (one constant of the code aside, see ``POSTING``); table and column
names come from the models. On PostgreSQL each is prepared once per connection
(``rows.prepared_cursor``).

Everything off the per-entry path (failures, waits, holds, operator actions) stays in the ORM.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, cast

from django.db import connection as db
from django.db.models import Model

from timelogging.models import AutomationRun, PSAConnection, RequestBudget, TimeEntry
from timelogging.services.rows import columns, prepared_cursor, rows_as, rows_of


def _table(model: type[Model]) -> str:
    return db.ops.quote_name(model._meta.db_table)


def _at(value: dt.datetime) -> Any:
    """A datetime as the database stores it (naive UTC text on SQLite)."""
    return db.ops.adapt_datetimefield_value(value)


def _rowcount(sql: str, params: dict[str, Any]) -> int:
    with prepared_cursor(db) as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def connection_lock_for_entry(entry_id: int) -> tuple[PSAConnection, AutomationRun] | None:
    """The active connection of the entry's tenant, its row locked until the transaction ends
    (SQLite has no row locks: its write transactions are serialised as a whole), and the
    entry's run (which never changes once written), in one statement. None when the tenant
    has no active connection or there is no such entry."""
    lock = " FOR UPDATE OF c" if db.features.has_select_for_update_of else ""
    sql = f"""
        SELECT {columns(PSAConnection, "c")}, {columns(AutomationRun, "r")}
        FROM {_table(PSAConnection)} c
        JOIN {_table(TimeEntry)} e ON e.tenant_id = c.tenant_id
        JOIN {_table(AutomationRun)} r ON r.id = e.run_id
        WHERE e.id = %(entry)s AND c.is_active = %(active)s
        ORDER BY c.id LIMIT 1{lock}
    """  # noqa: S608 - the models' tables and columns; every value is a bound parameter
    found = rows_of(sql, {"active": True, "entry": entry_id}, PSAConnection, AutomationRun)
    return cast("tuple[PSAConnection, AutomationRun]", found[0]) if found else None


# Written into the statement, not bound: a prepared statement's generic plan can use the
# partial index ``entry_in_flight`` (status = 'posting') only if the status is in its text.
POSTING = TimeEntry.Status.POSTING.value


def entry_claim(
    *, entry_id: int, connection: PSAConnection, now: dt.datetime, lease_until: dt.datetime
) -> TimeEntry | None:
    """Claim the entry for one attempt through ``connection``, or None when it is not due (nor
    abandoned) or the connection has no free slot. The claimed entry as it now is.

    Due: ``pending``/``retry_wait`` with no time set or a time past. Abandoned: ``posting``
    past its lease, whose worker died (and may have posted it): the attempt looks first
    (``needs_lookup``). A free slot: fewer entries of the connection in flight (``posting``
    within their lease, the ``entry_in_flight`` index) than its ``max_concurrency``. The
    attempt is counted here, before the request: a crash mid-post still counts.
    """
    entries = _table(TimeEntry)
    sql = f"""
        UPDATE {entries} SET
            status = %(posting)s,
            waiting_for = '',
            attempts = attempts + 1,
            counted_attempts = counted_attempts + 1,
            lease_expires_at = %(lease_until)s,
            enqueued_at = NULL,
            connection_id = %(connection)s,
            needs_lookup = CASE WHEN status = %(posting)s AND lease_expires_at < %(now)s
                THEN %(true)s ELSE needs_lookup END,
            updated_at = %(now)s
        WHERE id = %(entry)s
          AND ((status IN (%(pending)s, %(retry_wait)s)
                AND (next_attempt_at IS NULL OR next_attempt_at <= %(now)s))
               OR (status = %(posting)s AND lease_expires_at < %(now)s))
          AND (SELECT COUNT(*) FROM {entries} busy
               WHERE busy.connection_id = %(connection)s AND busy.status = '{POSTING}'
                 AND busy.lease_expires_at >= %(now)s AND busy.id <> %(entry)s)
              < %(cap)s
        RETURNING {columns(TimeEntry)}
    """  # noqa: S608 - the model's table; every value is a bound parameter
    params = {
        "posting": TimeEntry.Status.POSTING.value,
        "pending": TimeEntry.Status.PENDING.value,
        "retry_wait": TimeEntry.Status.RETRY_WAIT.value,
        "true": True,
        "now": _at(now),
        "lease_until": _at(lease_until),
        "connection": connection.pk,
        "entry": entry_id,
        "cap": connection.max_concurrency,
    }
    found = rows_as(TimeEntry, sql, params)  # the entry as the UPDATE left it
    return found[0] if found else None


def budget_take(*, connection_id: int, window: dt.datetime, limit: int) -> bool:
    """Count one request in the connection's budget row if the minute ``window`` allows it:
    a new minute starts at 1; the current one (or one a worker with a clock slightly ahead
    started) goes up by 1 while under ``limit``. False when used up or when the row is
    missing. One statement in autocommit: PostgreSQL re-checks the condition on a row it
    waited for, so concurrent workers never count past the limit."""
    sql = f"""
        UPDATE {_table(RequestBudget)} SET
            window_start = CASE WHEN window_start < %(window)s
                THEN %(window)s ELSE window_start END,
            used = CASE WHEN window_start < %(window)s THEN 1 ELSE used + 1 END
        WHERE connection_id = %(connection)s
          AND (window_start < %(window)s OR used < %(limit)s)
    """  # noqa: S608 - the model's table; every value is a bound parameter
    return bool(
        _rowcount(sql, {"window": _at(window), "connection": connection_id, "limit": limit})
    )
