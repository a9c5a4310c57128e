"""django-q2's ORM broker, with a one-statement dequeue on PostgreSQL (``broker_class``).

django-q2's ``ORM.dequeue`` reads up to ``bulk`` due tasks in no particular order, then locks
each with an UPDATE of its own, and every one of those statements first checks the database
connection (``close_old_connections`` with ``CONN_HEALTH_CHECKS``: a ``SELECT 1``): four round
trips per task for the cluster's pusher. On PostgreSQL this broker takes up to ``bulk`` due
tasks, oldest first, and locks them in one ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP
LOCKED) RETURNING``: clusters polling together skip each other's rows instead of racing for
them, and the order is the queue's (by id: the primary key's index, so a long queue costs no
more per task than a short one). Everything else — enqueue in the caller's transaction, the
lock as the re-delivery time (``retry``), acknowledgement by deleting the row, the sleep of
``poll`` on an empty queue — is django-q2's. Other databases (SQLite) use django-q2's dequeue.
"""

from __future__ import annotations

from time import sleep

from django.db import connections
from django.utils import timezone
from django_q.brokers.orm import ORM
from django_q.conf import Conf
from django_q.models import OrmQ


class OrmBroker(ORM):
    def dequeue(self) -> list[tuple[int, str]] | None:
        queue = self.get_connection()  # closes a stale connection, as django-q2's does
        connection = connections[queue.db]
        if connection.vendor != "postgresql":
            return super().dequeue()
        table = connection.ops.quote_name(OrmQ._meta.db_table)
        now = timezone.now()
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {table} SET lock = %s WHERE id IN ("  # noqa: S608 - the model's table
                f"SELECT id FROM {table} WHERE key = %s AND lock < %s "
                "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED) RETURNING id, payload",
                [self.timeout(None), self.list_key, now, Conf.BULK],
            )
            tasks = sorted(cursor.fetchall())
        if tasks:
            return [(pk, payload) for pk, payload in tasks]
        sleep(Conf.POLL)  # an empty queue: spare the CPU, as django-q2 does
        return None
