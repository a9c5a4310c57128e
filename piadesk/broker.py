"""django-q2's ORM broker, with a one-statement dequeue and acknowledgement (``broker_class``).

django-q2's ``ORM.dequeue`` reads up to ``bulk`` due tasks in no particular order, then locks
each with an UPDATE of its own, and every one of its statements — the acknowledgement's
``DELETE`` too — first checks the database connection (``close_old_connections`` with
``CONN_HEALTH_CHECKS``: a ``SELECT 1``). That was four round trips per task for the cluster's
pusher and two more for its monitor, on the machine that also runs the workers and the
database. (Since then piadesk's PostgreSQL backend checks a connection in use by a look at its
socket, not a round trip: ``piadesk/postgresql/base.py``; the task's own check before it runs
costs no round trip either.)

On PostgreSQL this broker takes up to ``bulk`` due tasks, oldest first, and locks them in one
``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED) RETURNING``: clusters polling together
skip each other's rows instead of racing for them, and the order is the queue's (by id: the
primary key's index, so a long queue costs no more per task than a short one). On every
database the acknowledgement is one ``DELETE`` by id. Neither checks the connection first:
a connection the database dropped (a restart) fails the statement, and it is run again once on
a new connection (both statements may run twice: a task locked twice is re-delivered after
``retry``, as after any crash; a row deleted twice is gone). Everything else — enqueue in the
caller's transaction, the lock as the re-delivery time (``retry``), the sleep of ``poll`` on an
empty queue — is django-q2's. SQLite uses django-q2's dequeue.
"""

from __future__ import annotations

from time import sleep
from typing import Any

from django.db import InterfaceError, OperationalError, connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ

from timelogging.services.rows import prepared_cursor


class OrmBroker(ORM):
    def dequeue(self) -> list[tuple[int, str]] | None:
        connection = connections[Conf.ORM]
        if connection.vendor != "postgresql":
            return super().dequeue()
        table = connection.ops.quote_name(OrmQ._meta.db_table)
        tasks = sorted(
            self._run(
                f"UPDATE {table} SET lock = %s WHERE id IN ("  # noqa: S608 - the model's table
                f"SELECT id FROM {table} WHERE key = %s AND lock < %s "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, payload",
                [self.timeout(None), self.list_key, timezone.now(), Conf.BULK],
            )
        )
        if tasks:
            return [(pk, payload) for pk, payload in tasks]
        sleep(Conf.POLL)  # an empty queue: spare the CPU, as django-q2 does
        return None

    def delete(self, task_id: Any) -> None:
        table = connections[Conf.ORM].ops.quote_name(OrmQ._meta.db_table)
        self._run(f"DELETE FROM {table} WHERE id = %s", [task_id])  # noqa: S608

    def _run(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        """The statement's rows (none for a DELETE), run again once on a new connection when
        the one kept is gone (only outside a transaction: a broken one is the caller's)."""
        connection = connections[Conf.ORM]
        try:
            return _rows(connection, sql, params)
        except (InterfaceError, OperationalError):
            if connection.in_atomic_block:
                raise
            connection.close()
        return _rows(connection, sql, params)


def _rows(connection: BaseDatabaseWrapper, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall()) if cursor.description else []
