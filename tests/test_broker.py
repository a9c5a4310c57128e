"""piadesk's ORM broker (piadesk/broker.py): the one-statement dequeue takes due tasks oldest
first, locks them until the re-delivery time, and never hands one task to two clusters."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db import connection
from django.utils import timezone
from django_q.brokers import get_broker
from django_q.conf import Conf
from django_q.models import OrmQ

from piadesk.broker import OrmBroker

pytestmark = pytest.mark.django_db


@pytest.fixture
def broker(monkeypatch):
    monkeypatch.setattr(Conf, "BULK", 2)
    monkeypatch.setattr(Conf, "POLL", 0)
    return get_broker()


def test_the_cluster_uses_it(broker):
    assert isinstance(broker, OrmBroker)


def test_due_tasks_are_taken_oldest_first_and_locked_until_the_retry(broker):
    ids = [broker.enqueue(f"task {i}") for i in range(3)]
    OrmQ.objects.filter(pk=ids[0]).update(lock=timezone.now() + dt.timedelta(minutes=5))

    assert broker.dequeue() == [(ids[1], "task 1"), (ids[2], "task 2")]
    assert broker.dequeue() is None  # the rest is locked: taken, or not due
    for task in OrmQ.objects.filter(pk__in=ids[1:]):
        assert task.lock > timezone.now() + dt.timedelta(seconds=Conf.RETRY - 5)

    OrmQ.objects.filter(pk=ids[0]).update(lock=timezone.now() - dt.timedelta(seconds=1))
    assert broker.dequeue() == [(ids[0], "task 0")]


@pytest.mark.skipif(connection.vendor != "postgresql", reason="SKIP LOCKED (PostgreSQL)")
@pytest.mark.django_db(transaction=True)
def test_two_clusters_never_take_the_same_task(broker):
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from django.db import connections

    ids = {broker.enqueue(f"task {i}") for i in range(40)}
    barrier = threading.Barrier(4)

    def pull(_):
        barrier.wait()
        taken = []
        try:
            while batch := get_broker().dequeue():
                taken += [pk for pk, _payload in batch]
            return taken
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=4) as pool:
        taken = [pk for batch in pool.map(pull, range(4)) for pk in batch]
    assert sorted(taken) == sorted(ids)  # each task once, none left


def test_an_acknowledged_task_is_deleted(broker):
    ids = [broker.enqueue(f"task {i}") for i in range(2)]
    broker.acknowledge(ids[0])
    assert list(OrmQ.objects.values_list("pk", flat=True)) == [ids[1]]
    broker.acknowledge(ids[0])  # delivered twice, acknowledged twice: nothing left to do


@pytest.mark.skipif(connection.vendor != "postgresql", reason="a server that restarts")
@pytest.mark.django_db(transaction=True)
def test_a_connection_the_database_dropped_is_replaced(broker):
    """No check before each statement (a SELECT 1 per task): a connection that is gone, as
    after a database restart, fails the statement and it runs again on a new one."""
    from django.db import connections

    ids = [broker.enqueue(f"task {i}") for i in range(3)]
    db = connections[Conf.ORM]
    db.ensure_connection()
    db.connection.close()  # the server side went away under Django
    broker.acknowledge(ids[0])
    assert ids[0] not in set(OrmQ.objects.values_list("pk", flat=True))
    db.connection.close()
    assert [pk for pk, _ in broker.dequeue()] == ids[1:]
