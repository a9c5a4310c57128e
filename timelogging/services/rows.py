"""Rows written and read by one plain statement, built from the models' own fields.

The paths that run once per automation run (ingest) or once per attempt (the worker) spent more
CPU in the ORM's query machinery — building, cloning and compiling querysets, ``Model.save`` —
than in the statements themselves; on two cores that CPU set the pace of both. These helpers
do what the ORM does for a row (each field's ``pre_save`` and database preparation on the way
in, each field's conversions from the database on the way out) with statements prepared once
per model and cached.

What they skip: ``pre_save``/``post_save`` signals and ``save()`` overrides. Use them only for
models that have neither an audit trail nor a receiver (``AutomationRun``, ``TimeEntry``,
``PostAttempt``, ``RequestBudget``, django-q2's ``OrmQ``) and set yourself what an override
would (``TimeEntry.save`` copies the run's client and automation).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar, cast

from django.db import connections, router, transaction
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.backends.utils import CursorWrapper
from django.db.models import Field, Model, UniqueConstraint

M = TypeVar("M", bound=Model)
Converter = Callable[[Any, Any, Any], Any]


@contextmanager
def prepared_cursor(connection: BaseDatabaseWrapper) -> Iterator[CursorWrapper]:
    """A cursor whose statements PostgreSQL prepares on their first use in the connection (with
    server-side binding, ``DATABASE_PREPARED_STATEMENTS``), and runs prepared afterwards: not
    parsed and planned again for every entry or ingest. Only for the few statements of these
    paths, which find rows by key: Django leaves psycopg's automatic preparation off, and the
    rest of piadesk (the history's lists and reports, whose best plan depends on the tenant)
    is planned for its values every time. Elsewhere (SQLite, client-side binding) a cursor.
    """
    with connection.cursor() as cursor:
        raw = connection.connection
        if connection.vendor != "postgresql" or not connection.settings_dict["OPTIONS"].get(
            "server_side_binding"
        ):
            yield cursor
            return
        before = raw.prepare_threshold
        raw.prepare_threshold = 0
        try:
            yield cursor
        finally:
            raw.prepare_threshold = before


def row_insert(obj: Model, *, unless: str = "") -> bool:
    """``INSERT … RETURNING id`` for a new row; with ``unless`` (a unique constraint's name),
    ``ON CONFLICT (its columns) DO NOTHING``: False when that inserted nothing.

    (Django's ``bulk_create(ignore_conflicts=True)`` does not return the new id.)
    """
    connection = _writer(obj)
    sql, params = _insert_parts(obj, connection, unless)
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return False
    _inserted(obj, row[0], connection)
    return True


def row_update(obj: Model, fields: Iterable[str]) -> int:
    """``UPDATE … SET`` the named fields of an existing row (as ``save(update_fields=…)``,
    ``auto_now`` fields included when named). Returns the number of rows updated."""
    connection = _writer(obj)
    sql, params = _update_parts(obj, connection, fields)
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)
        return int(cursor.rowcount)


def row_update_and_insert(obj: Model, fields: Iterable[str], new: Model) -> None:
    """``row_update(obj, fields)`` and ``row_insert(new)``, both or neither. On PostgreSQL one
    statement (a data-modifying ``WITH`` runs to completion with the statement it is part of,
    in autocommit its own transaction); elsewhere the two in a transaction."""
    connection = _writer(obj)
    if connection.vendor != "postgresql":
        with transaction.atomic(using=connection.alias):
            row_update(obj, fields)
            row_insert(new)
        return
    update, update_params = _update_parts(obj, connection, fields)
    insert, insert_params = _insert_parts(new, connection, "")
    with prepared_cursor(connection) as cursor:
        cursor.execute(f"WITH updated AS ({update}) {insert}", [*update_params, *insert_params])
        _inserted(new, cursor.fetchone()[0], connection)


def columns(model: type[Model], alias: str = "") -> str:
    """The model's columns in field order (each as ``alias.column`` when given an alias), for
    the ``SELECT`` / ``RETURNING`` of a statement whose rows ``rows_of`` reads."""
    return _columns_sql(model, alias, router.db_for_write(model))


def rows_as(model: type[M], sql: str, params: Mapping[str, Any] | Sequence[Any]) -> list[M]:
    """The instances of ``model`` in the rows ``sql`` returns (see ``rows_of``)."""
    return [cast(M, row[0]) for row in rows_of(sql, params, model)]


def rows_of(
    sql: str, params: Mapping[str, Any] | Sequence[Any], *models: type[Model]
) -> list[tuple[Model, ...]]:
    """One instance of each of ``models`` per row ``sql`` returns: its columns must be each
    model's ``columns``, one model after the other, converted from the database as the ORM
    would. Run on the database written to: its callers lock and update rows."""
    connection = connections[router.db_for_write(models[0])]
    with prepared_cursor(connection) as cursor:
        cursor.execute(sql, params)
        rows = cursor.fetchall()
    return instances_of(rows, models, connection)


def instances_of(
    rows: Iterable[Sequence[Any]], models: Sequence[type[Model]], connection: BaseDatabaseWrapper
) -> list[tuple[Model, ...]]:
    """``rows_of``'s conversion: each row's columns, model after model, as instances."""
    found = []
    for row in rows:
        instances, start = [], 0
        for model in models:
            width = len(_column_names(model))
            values = list(row[start : start + width])
            for index, converter, expression in _converters(model, connection.alias):
                values[index] = converter(values[index], expression, connection)
            instances.append(model.from_db(connection.alias, _attnames(model), values))
            start += width
        found.append(tuple(instances))
    return found


def one_trip_available(connection: BaseDatabaseWrapper) -> bool:
    """Whether ``rows_in_one_trip`` can run here: PostgreSQL with a libpq that has pipeline
    mode, and no transaction open (its statements are to be a transaction of their own)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return False
    return _pipeline_supported()


@functools.cache
def _pipeline_supported() -> bool:
    import psycopg  # only PostgreSQL gets here

    return bool(psycopg.Pipeline.is_supported())


def rows_in_one_trip(
    connection: BaseDatabaseWrapper,
    statements: Sequence[tuple[str, Mapping[str, Any] | Sequence[Any]]],
) -> list[list[tuple[Any, ...]]]:
    """Each statement's rows, the statements sent together in psycopg's pipeline mode (see
    ``one_trip_available``): one round trip, and one transaction. Outside an explicit
    transaction PostgreSQL runs what a pipeline sends before its Sync as one implicit
    transaction, committed at the Sync: a lock the first statement takes is held by the ones
    after it, and if one fails, none of them is committed. Each statement still reads its own
    snapshot (READ COMMITTED): one that follows a lock sees what was committed before the
    lock was granted. Each statement must return rows (a SELECT, or RETURNING). Prepared as
    ``prepared_cursor``'s."""
    with prepared_cursor(connection) as first:
        cursors = [first, *(connection.cursor() for _ in statements[1:])]
        try:
            with connection.wrap_database_errors, connection.connection.pipeline():
                for cursor, (sql, params) in zip(cursors, statements, strict=True):
                    cursor.execute(sql, params)
            # Read only after the Sync: the rows are then those of a committed transaction.
            return [list(cursor.fetchall()) for cursor in cursors]
        finally:
            for cursor in cursors[1:]:
                cursor.close()


# --- statements and conversions, prepared once per model ---------------------------------------
def _writer(obj: Model) -> BaseDatabaseWrapper:
    return connections[router.db_for_write(type(obj))]


def _insert_parts(
    obj: Model, connection: BaseDatabaseWrapper, unless: str
) -> tuple[str, list[Any]]:
    """The INSERT of ``obj`` and its values (each field's ``pre_save`` and database
    preparation, as ``Model.save``)."""
    fields, sql = _insert_statement(type(obj), connection.alias, unless)
    return sql, [f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields]


def _update_parts(
    obj: Model, connection: BaseDatabaseWrapper, names: Iterable[str]
) -> tuple[str, list[Any]]:
    fields, sql = _update_statement(type(obj), connection.alias, tuple(names))
    values = [f.get_db_prep_save(f.pre_save(obj, False), connection) for f in fields]
    return sql, [*values, obj.pk]


def _inserted(obj: Model, pk: Any, connection: BaseDatabaseWrapper) -> None:
    obj.pk = pk
    obj._state.adding = False
    obj._state.db = connection.alias


def _quote(alias: str) -> Callable[[str], str]:
    return connections[alias].ops.quote_name


@functools.cache
def _insert_statement(
    model: type[Model], alias: str, unless: str
) -> tuple[list[Field[Any, Any]], str]:
    meta = model._meta
    quote = _quote(alias)
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    columns = {f.name: quote(cast(str, f.column)) for f in fields}
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(columns.values())}) "
        f"VALUES ({', '.join(['%s'] * len(fields))}) "
    )
    if unless:
        unique = next(
            c for c in meta.constraints if isinstance(c, UniqueConstraint) and c.name == unless
        )
        sql += f"ON CONFLICT ({', '.join(columns[name] for name in unique.fields)}) DO NOTHING "
    return fields, sql + f"RETURNING {quote(cast(str, meta.pk.column))}"


@functools.cache
def _update_statement(
    model: type[Model], alias: str, names: tuple[str, ...]
) -> tuple[list[Field[Any, Any]], str]:
    meta = model._meta
    quote = _quote(alias)
    fields = [cast("Field[Any, Any]", meta.get_field(name)) for name in names]
    assignments = ", ".join(f"{quote(cast(str, f.column))} = %s" for f in fields)
    sql = (
        f"UPDATE {quote(meta.db_table)} SET {assignments} "  # noqa: S608 - names from the model
        f"WHERE {quote(cast(str, meta.pk.column))} = %s"
    )
    return fields, sql


@functools.cache
def _columns_sql(model: type[Model], alias: str, db_alias: str) -> str:
    quote = _quote(db_alias)
    prefix = f"{alias}." if alias else ""
    return ", ".join(f"{prefix}{quote(name)}" for name in _column_names(model))


@functools.cache
def _column_names(model: type[Model]) -> tuple[str, ...]:
    return tuple(cast(str, f.column) for f in model._meta.concrete_fields)


@functools.cache
def _attnames(model: type[Model]) -> list[str]:
    return [f.attname for f in model._meta.concrete_fields]


@functools.cache
def _converters(model: type[Model], alias: str) -> list[tuple[int, Converter, Any]]:
    """Each field's conversions from the database (as the ORM's compiler applies them), by
    the field's position among the model's fields."""
    connection = connections[alias]
    converters = []
    for index, field in enumerate(model._meta.concrete_fields):
        expression = field.get_col(model._meta.db_table)
        for converter in connection.ops.get_db_converters(
            expression
        ) + expression.get_db_converters(connection):
            converters.append((index, converter, expression))
    return converters
