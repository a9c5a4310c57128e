"""PostgreSQL's health check before reusing a connection (piadesk/postgresql/base.py): a look
at the socket, and ``SELECT 1`` only after the connection rested."""

from __future__ import annotations

import time

import pytest
from django.db import close_old_connections, connection, connections

pytestmark = [
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL's backend"),
    pytest.mark.django_db,
]


@pytest.fixture
def other_connection():
    """A second connection to the test database, outside the test's transaction."""
    wrapper = connection.copy()
    wrapper.ensure_connection()
    yield wrapper
    wrapper.close()


@pytest.fixture
def asked(monkeypatch, other_connection):
    """Counts the round trips of the check (``is_usable``: Django's ``SELECT 1``)."""
    calls = []
    original = other_connection.is_usable

    def is_usable():
        calls.append(1)
        return original()

    monkeypatch.setattr(other_connection, "is_usable", is_usable)
    return calls


def terminate(wrapper) -> None:
    """The server ends the connection (as on a restart or a failover's shutdown)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [wrapper.connection.info.backend_pid])
    for _ in range(100):  # the server's goodbye reaches the socket
        if wrapper.closed_by_server():
            return
        time.sleep(0.02)
    raise AssertionError("the terminated connection's socket never became readable")


def check(wrapper) -> None:
    wrapper.health_check_done = False  # as at the start of a request or a task
    wrapper.close_if_health_check_failed()


def test_the_backend_is_piadesks():
    assert type(connections["default"]).__module__ == "piadesk.postgresql.base"


def test_a_connection_in_use_is_reused_without_a_round_trip(other_connection, asked):
    before = other_connection.connection
    check(other_connection)
    assert other_connection.connection is before
    assert asked == []


def test_a_connection_the_server_closed_is_replaced_without_asking(other_connection, asked):
    old_pid = other_connection.connection.info.backend_pid
    terminate(other_connection)
    check(other_connection)
    assert other_connection.connection is None
    assert asked == []
    with other_connection.cursor() as cursor:  # the next statement opens a new connection
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid


def test_a_rested_connection_is_asked(other_connection, asked, settings):
    settings.DATABASE_HEALTH_CHECK_IDLE_SECONDS = 10
    other_connection.checked_at -= 11
    before = other_connection.connection
    check(other_connection)
    assert asked == [1]
    assert other_connection.connection is before
    check(other_connection)  # just checked: the socket is enough
    assert asked == [1]


def test_zero_asks_before_every_use(other_connection, asked, settings):
    settings.DATABASE_HEALTH_CHECK_IDLE_SECONDS = 0
    check(other_connection)
    check(other_connection)
    assert asked == [1, 1]


@pytest.mark.django_db(transaction=True)
def test_a_request_after_a_restart_gets_a_new_connection():
    """What ``request_started`` does (``close_old_connections``) replaces a connection the
    server closed between two requests: the request's statements run, no error."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    old_pid = connection.connection.info.backend_pid
    killer = connection.copy()
    try:
        with killer.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [old_pid])
    finally:
        killer.close()
    for _ in range(100):
        if connection.closed_by_server():
            break
        time.sleep(0.02)
    close_old_connections()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        assert cursor.fetchone()[0] != old_pid
