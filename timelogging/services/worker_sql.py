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

import dataclasses
import datetime as dt
import functools
from typing import Any, cast

from django.db import connection as db
from django.db.models import Model

from psa.registry import BACKENDS
from timelogging.models import AutomationRun, PSAConnection, RequestBudget, TimeEntry
from timelogging.services.rows import (
    columns,
    instances_of,
    prepared_cursor,
    rows_as,
    rows_in_one_trip,
    rows_of,
)


def _table(model: type[Model]) -> str:
    return db.ops.quote_name(model._meta.db_table)


def _at(value: dt.datetime) -> Any:
    """A datetime as the database stores it (naive UTC text on SQLite)."""
    return db.ops.adapt_datetimefield_value(value)


def _rowcount(sql: str, params: dict[str, Any]) -> int:
    with prepared_cursor(db) as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


_LOCKED = (PSAConnection, AutomationRun)


def _lock_sql(first_columns: str = "") -> str:
    lock = " FOR UPDATE OF c" if db.features.has_select_for_update_of else ""
    return f"""
        SELECT {first_columns}{columns(PSAConnection, "c")}, {columns(AutomationRun, "r")}
        FROM {_table(PSAConnection)} c
        JOIN {_table(TimeEntry)} e ON e.tenant_id = c.tenant_id
        JOIN {_table(AutomationRun)} r ON r.id = e.run_id
        WHERE e.id = %(entry)s AND c.is_active = %(active)s
        ORDER BY c.id LIMIT 1{lock}
    """  # noqa: S608 - the models' tables and columns; every value is a bound parameter


def connection_lock_for_entry(entry_id: int) -> tuple[PSAConnection, AutomationRun] | None:
    """The active connection of the entry's tenant, its row locked until the transaction ends
    (SQLite has no row locks: its write transactions are serialised as a whole), and the
    entry's run (which never changes once written), in one statement. None when the tenant
    has no active connection or there is no such entry."""
    found = rows_of(_lock_sql(), {"active": True, "entry": entry_id}, *_LOCKED)
    return cast("tuple[PSAConnection, AutomationRun]", found[0]) if found else None


# Written into the statement, not bound: a prepared statement's generic plan can use the
# partial index ``entry_in_flight`` (status = 'posting') only if the status is in its text.
POSTING = TimeEntry.Status.POSTING.value

# The connection the claim in one trip locked, for the statement after the lock (a setting of
# the transaction: it ends with it).
CLAIM_CONNECTION_SETTING = "piadesk.claim_connection"


def _claim_sql(connection_id: str) -> str:
    """The claim's conditional UPDATE, through the connection whose id is the SQL expression
    ``connection_id`` (and only while it is active and not paused): ``entry_claim`` says what
    it guarantees. Returns the claimed entry as the UPDATE left it."""
    entries = _table(TimeEntry)
    # SQLite's RETURNING names the updated table's columns unqualified (and refuses an alias);
    # PostgreSQL needs them qualified, the connection's table being in the statement too.
    returning = columns(TimeEntry, "e") if db.vendor == "postgresql" else columns(TimeEntry)
    return f"""
        UPDATE {entries} AS e SET
            status = %(posting)s,
            waiting_for = '',
            attempts = e.attempts + 1,
            counted_attempts = e.counted_attempts + 1,
            lease_expires_at = %(lease_until)s,
            enqueued_at = NULL,
            connection_id = c.id,
            needs_lookup = CASE WHEN e.status = %(posting)s AND e.lease_expires_at < %(now)s
                THEN %(true)s ELSE e.needs_lookup END,
            updated_at = %(now)s
        FROM {_table(PSAConnection)} c
        WHERE e.id = %(entry)s
          AND c.id = {connection_id} AND c.tenant_id = e.tenant_id
          AND c.is_active = %(true)s AND c.paused_at IS NULL
          AND ((e.status IN (%(pending)s, %(retry_wait)s)
                AND (e.next_attempt_at IS NULL OR e.next_attempt_at <= %(now)s))
               OR (e.status = %(posting)s AND e.lease_expires_at < %(now)s))
          AND (SELECT COUNT(*) FROM {entries} busy
               WHERE busy.connection_id = c.id AND busy.status = '{POSTING}'
                 AND busy.lease_expires_at >= %(now)s AND busy.id <> %(entry)s)
              < c.max_concurrency
        RETURNING {returning}
    """  # noqa: S608 - the models' tables and columns; every value is a bound parameter


def _claim_params(*, entry_id: int, now: dt.datetime, lease_until: dt.datetime) -> dict[str, Any]:
    return {
        "posting": TimeEntry.Status.POSTING.value,
        "pending": TimeEntry.Status.PENDING.value,
        "retry_wait": TimeEntry.Status.RETRY_WAIT.value,
        "true": True,
        "now": _at(now),
        "lease_until": _at(lease_until),
        "entry": entry_id,
    }


def entry_claim(
    *, entry_id: int, connection: PSAConnection, now: dt.datetime, lease_until: dt.datetime
) -> TimeEntry | None:
    """Claim the entry for one attempt through ``connection`` (locked by the caller), or None
    when it is not due (nor abandoned), the connection is inactive or paused, or it has no free
    slot. The claimed entry as it now is.

    Due: ``pending``/``retry_wait`` with no time set or a time past. Abandoned: ``posting``
    past its lease, whose worker died (and may have posted it): the attempt looks first
    (``needs_lookup``). A free slot: fewer entries of the connection in flight (``posting``
    within their lease, the ``entry_in_flight`` index) than its ``max_concurrency``. The
    attempt is counted here, before the request: a crash mid-post still counts.
    """
    params = _claim_params(entry_id=entry_id, now=now, lease_until=lease_until)
    found = rows_as(
        TimeEntry, _claim_sql("%(connection)s"), {**params, "connection": connection.pk}
    )
    return found[0] if found else None


@dataclasses.dataclass(frozen=True)
class Claimed:
    entry: TimeEntry
    connection: PSAConnection  # as locked
    run: AutomationRun
    request_counted: bool  # one request already counted in the connection's budget


def entry_claim_in_one_trip(
    *, entry_id: int, now: dt.datetime, lease_until: dt.datetime, budget_window: dt.datetime
) -> Claimed | None:
    """``connection_lock_for_entry``, ``entry_claim`` and the first request's ``budget_take``,
    sent together: one round trip and one transaction instead of six round trips (BEGIN, the
    two statements, COMMIT, the budget's UPDATE and its commit), on PostgreSQL outside a
    transaction (``rows.one_trip_available``). None when the entry was not claimed, and then
    nothing was written (the caller asks why in a transaction of its own).

    The claim cannot take its connection from the lock's result, which the client reads only
    after both ran: the lock statement leaves the id of the connection it found in a setting
    of the transaction, and the claim goes through that connection only. Should the lock have
    waited for a change that made the connection inactive (a switch of vendor), the lock
    statement returns nothing and the claim finds that connection inactive: nothing is
    claimed, rather than claimed through a connection whose lock this transaction does not
    hold. The claim's snapshot is taken after the lock was granted, so its count of entries in
    flight includes every claim committed before, as in ``entry_claim``.

    The budget's UPDATE runs only for a claimed entry (it reads the claim's row) and only
    under the connection's limit, computed from its row as ``budget.requests_per_minute``
    does; a request it counted is the attempt's first (``Claimed.request_counted``). Counted
    and not sent (the worker died between) is one request less to spend in that minute, never
    one more."""
    lock_sql, claim_sql, limit_params = _one_trip_statements()
    params = {
        **_claim_params(entry_id=entry_id, now=now, lease_until=lease_until),
        **limit_params,
        "window": _at(budget_window),
    }
    locked, claimed = rows_in_one_trip(
        db, [(lock_sql, {"active": True, "entry": entry_id}), (claim_sql, params)]
    )
    if not (locked and claimed):
        return None
    ((connection, run),) = instances_of([row[1:] for row in locked], _LOCKED, db)
    ((entry,),) = instances_of([row[:-1] for row in claimed], (TimeEntry,), db)
    return Claimed(
        entry=cast(TimeEntry, entry),
        connection=cast(PSAConnection, connection),
        run=cast(AutomationRun, run),
        request_counted=bool(claimed[0][-1]),
    )


@functools.cache
def _one_trip_statements() -> tuple[str, str, dict[str, Any]]:
    """``entry_claim_in_one_trip``'s lock and claim statements, and the limit's parameters:
    the same for every entry, built once per process."""
    lock_sql = _lock_sql(f"set_config('{CLAIM_CONNECTION_SETTING}', c.id::text, true), ")
    connection_id = f"NULLIF(current_setting('{CLAIM_CONNECTION_SETTING}', true), '')::bigint"
    limit, limit_params = _requests_per_minute_sql("bc")
    claimed_connection = "(SELECT connection_id FROM claimed)"
    budget_sql = _budget_sql(
        claimed_connection,
        f"(SELECT {limit} FROM {_table(PSAConnection)} bc WHERE bc.id = {claimed_connection})",
    )
    claim_sql = f"""
        WITH claimed AS ({_claim_sql(connection_id)}),
        counted AS ({budget_sql} RETURNING 1)
        SELECT claimed.*, EXISTS (SELECT 1 FROM counted) FROM claimed
    """  # noqa: S608 - the models' tables and columns; every value is a bound parameter
    return lock_sql, claim_sql, limit_params


def _budget_sql(connection_id: str, limit: str) -> str:
    """``budget_take``'s UPDATE for the connection whose id is the SQL expression
    ``connection_id``, under the limit ``limit`` (another SQL expression)."""
    return f"""
        UPDATE {_table(RequestBudget)} SET
            window_start = CASE WHEN window_start < %(window)s
                THEN %(window)s ELSE window_start END,
            used = CASE WHEN window_start < %(window)s THEN 1 ELSE used + 1 END
        WHERE connection_id = {connection_id}
          AND (window_start < %(window)s OR used < {limit})
    """  # noqa: S608 - the model's table; every value is a bound parameter


def budget_take(*, connection_id: int, window: dt.datetime, limit: int) -> bool:
    """Count one request in the connection's budget row if the minute ``window`` allows it:
    a new minute starts at 1; the current one (or one a worker with a clock slightly ahead
    started) goes up by 1 while under ``limit``. False when used up or when the row is
    missing. One statement in autocommit: PostgreSQL re-checks the condition on a row it
    waited for, so concurrent workers never count past the limit."""
    sql = _budget_sql("%(connection)s", "%(limit)s")
    return bool(
        _rowcount(sql, {"window": _at(window), "connection": connection_id, "limit": limit})
    )


def _requests_per_minute_sql(connection: str) -> tuple[str, dict[str, Any]]:
    """``budget.requests_per_minute`` of the connection row ``connection`` as SQL, with its
    parameters (the vendors' defaults, from the backends)."""
    cases: list[str] = []
    params: dict[str, Any] = {}
    for n, (vendor, backend) in enumerate(BACKENDS.items()):
        cases.append(f"WHEN %(vendor_{n})s THEN %(vendor_default_{n})s")
        params[f"vendor_{n}"] = vendor
        params[f"vendor_default_{n}"] = backend.default_requests_per_hour
    vendors = " ".join(cases)
    default = f"CASE {connection}.vendor {vendors} END"
    per_hour = f"COALESCE(NULLIF({connection}.requests_per_hour, 0), {default})"
    return f"GREATEST(1, CEIL({per_hour} / 60.0))::integer", params
