"""services/rows.py: rows written and read without the ORM's query machinery must mean what
the ORM's would (the worker and the ingest rely on it)."""

from __future__ import annotations

import pytest
from django.db import IntegrityError, connection, transaction
from django.forms.models import model_to_dict
from django.utils import timezone

from tests.factories import PSAConnectionFactory, TimeEntryFactory
from timelogging.models import PostAttempt, PSAConnection, TimeEntry
from timelogging.services.rows import columns, row_update_and_insert, rows_as, rows_of

pytestmark = pytest.mark.django_db


def table(model):
    return connection.ops.quote_name(model._meta.db_table)


def test_rows_read_as_the_orm_reads_them(tenant):
    psa = PSAConnectionFactory(tenant=tenant, settings={"site_url": "https://cw.example.com"})
    entry = TimeEntryFactory(run__tenant=tenant, connection=psa, needs_lookup=True)
    [read] = rows_as(TimeEntry, f"SELECT {columns(TimeEntry)} FROM {table(TimeEntry)}", [])
    orm = TimeEntry.objects.get(pk=entry.pk)
    assert model_to_dict(read) == model_to_dict(orm)
    assert (read.start, read.needs_lookup, read.status) == (orm.start, True, orm.status)
    assert read._state.adding is False

    sql = (
        f"SELECT {columns(PSAConnection, 'c')}, {columns(TimeEntry, 'e')} "
        f"FROM {table(PSAConnection)} c JOIN {table(TimeEntry)} e ON e.connection_id = c.id"
    )
    [(found_psa, found_entry)] = rows_of(sql, [], PSAConnection, TimeEntry)
    assert found_psa.settings == {"site_url": "https://cw.example.com"}  # JSON decoded
    assert found_entry.pk == entry.pk


def test_an_update_and_an_insert_are_both_or_neither(tenant):
    entry = TimeEntryFactory(run__tenant=tenant, status="posting")
    entry.status = "posted"
    broken = PostAttempt(tenant_id=tenant.pk, entry=entry, number=None, outcome="posted")
    with pytest.raises(IntegrityError), transaction.atomic():  # the test's own transaction
        row_update_and_insert(entry, ["status"], broken)
    assert TimeEntry.objects.get(pk=entry.pk).status == "posting"
    assert not PostAttempt.objects.exists()

    attempt = PostAttempt(
        tenant_id=tenant.pk, entry=entry, number=1, outcome="posted", started_at=timezone.now()
    )
    row_update_and_insert(entry, ["status"], attempt)
    assert TimeEntry.objects.get(pk=entry.pk).status == "posted"
    assert PostAttempt.objects.get().pk == attempt.pk
