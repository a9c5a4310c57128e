"""While the database is down, answer ``503`` with ``Retry-After`` instead of a 500.

A restart or failover of PostgreSQL takes seconds. During it every request that needs the
database fails with a connection-level error (``OperationalError``: refused, terminated by the
administrator, server closed the connection; ``InterfaceError``: the connection is already
closed). For the automation service that is not a bug in its request but "come back shortly":
under ``/api/`` the answer is the API's JSON error shape with status **503** and a
``Retry-After`` header, so its retry logic resends the run (a run is idempotent by ``run_id``:
a resend of one that was committed is answered 200, never logged twice). Staff pages get a
short plain page saying the same.

Nothing accepted is lost: a run is acknowledged (201) only after its transaction committed, so
a run whose request failed here was not accepted and the client keeps it.

The broken connection is closed at once, so the next request of this process connects afresh
(with ``CONN_HEALTH_CHECKS`` on, Django also checks a persistent connection before reusing it).

Two hooks, one answer: ``DatabaseUnavailableMiddleware.process_exception`` for errors raised
by views (where nearly every query runs), and :func:`server_error` (``handler500``) for the
rest, e.g. a session saved by middleware after the view.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

from django.db import InterfaceError, OperationalError, connections
from django.http import HttpRequest, HttpResponse, JsonResponse

from timelogging.api import errors

logger = logging.getLogger(__name__)

API_PREFIX = errors.API_PREFIX
# Seconds the client is asked to wait: a PostgreSQL restart or failover takes a few seconds.
RETRY_AFTER_SECONDS = 5
UNAVAILABLE_ERRORS = (OperationalError, InterfaceError)


def database_unavailable(exc: BaseException | None) -> bool:
    """Is ``exc`` the database being unreachable (or its connection lost)?

    Django wraps the driver's errors in its own classes: ``OperationalError`` covers lost and
    refused connections, an administrator's shutdown and SQLite's "database is locked";
    ``InterfaceError`` a connection already closed. Errors in a query itself
    (``ProgrammingError``, ``IntegrityError``, ``DataError``) are bugs, and stay 500s.
    """
    return isinstance(exc, UNAVAILABLE_ERRORS)


def unavailable_response(request: HttpRequest, exc: BaseException) -> HttpResponse:
    logger.warning(
        "Database unavailable while serving %s %s: %s", request.method, request.path, exc
    )
    _drop_broken_connections()
    message = "The database is unavailable for a moment; nothing was saved. Retry shortly."
    response: HttpResponse
    if request.path.startswith(API_PREFIX):
        response = JsonResponse({"detail": message, "retry_after": RETRY_AFTER_SECONDS}, status=503)
    else:
        response = HttpResponse(
            f"<!doctype html><title>piadesk is unavailable</title><h1>Service unavailable</h1>"
            f"<p>{message}</p>",
            status=503,
        )
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def server_error(request: HttpRequest) -> HttpResponse:
    """``handler500``: a lost database is a 503 here too; anything else is the API's (JSON
    under /api/) or Django's 500. Django calls the handler while it handles the exception, so
    the exception is the current one."""
    exc = sys.exc_info()[1]
    if exc is not None and database_unavailable(exc):
        return unavailable_response(request, exc)
    return errors.server_error(request)


def _drop_broken_connections() -> None:
    for conn in connections.all(initialized_only=True):
        try:
            if conn.in_atomic_block:
                # Closing inside a transaction is refused; Django closes it at the request's
                # end (errors_occurred is set and the connection is unusable).
                continue
            conn.close_if_unusable_or_obsolete()
        except UNAVAILABLE_ERRORS:  # closing a dead socket can fail too
            pass


class DatabaseUnavailableMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if database_unavailable(exception):
            return unavailable_response(request, exception)
        return None
