"""Django's PostgreSQL backend, with a health check that needs no round trip while in use.

With ``CONN_HEALTH_CHECKS`` Django asks a persistent connection ``SELECT 1`` before the first
statement of every request, and django-q2 before every task: on the ingest, one round trip in
seven, for an answer that is nearly always yes.

This backend first looks at what the client can see without asking. A connection the server
closed (a restart, the old primary of a failover shutting down, ``pg_terminate_backend``,
``idle_session_timeout``) has the server's FATAL message and the end of the stream waiting on
its socket, which is therefore readable; a connection at rest has nothing to read (piadesk
never LISTENs). That look is one ``poll(2)`` of the socket. ``SELECT 1`` is still sent, as
Django does, when the connection has not been checked for
``DATABASE_HEALTH_CHECK_IDLE_SECONDS`` (10 s; ``0``: before every request, Django's behaviour):
it also finds a peer gone without closing (an address that moved and answers with a reset).

What is left: such a silent loss within seconds of the connection's last use. Its first
statement fails; the API answers 503 with Retry-After and has saved nothing
(``piadesk/ops/unavailable.py``), the worker's broker runs its statement again on a new
connection (``piadesk/broker.py``), and Django drops the connection at the end of the request
(its check after an error is still ``SELECT 1``). Measured on the ingest (``make bench``): see
the README's "Performance".
"""

from __future__ import annotations

import select
import time

from django.conf import settings
from django.db.backends.postgresql import base


def socket_readable(fileno: int) -> bool:
    """True when the socket has something to read now (without waiting)."""
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fileno, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(0))
    readable, _, _ = select.select([fileno], [], [], 0)  # Windows: no poll(); small numbers
    return bool(readable)


class DatabaseWrapper(base.DatabaseWrapper):
    # monotonic() of the last check the connection passed (or of its opening).
    checked_at: float = 0.0
    health_check_done: bool  # Django's: set False at each request's (and task's) start

    def connect(self) -> None:
        super().connect()
        self.checked_at = time.monotonic()

    def closed_by_server(self) -> bool:
        """The server ended the connection, or its socket is unusable (no round trip)."""
        connection = self.connection
        if connection is None or connection.closed or connection.broken:
            return True
        try:
            return socket_readable(connection.fileno())
        except (OSError, ValueError):  # a closed descriptor
            return True

    def close_if_health_check_failed(self) -> None:
        enabled = self.settings_dict["CONN_HEALTH_CHECKS"]
        if self.connection is None or not enabled or self.health_check_done:
            return
        now = time.monotonic()
        idle_limit = getattr(settings, "DATABASE_HEALTH_CHECK_IDLE_SECONDS", 10)
        if self.closed_by_server() or (
            now - self.checked_at >= idle_limit and not self.is_usable()
        ):
            self.close()
        else:
            self.checked_at = now
        self.health_check_done = True
