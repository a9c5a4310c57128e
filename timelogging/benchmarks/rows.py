"""Writing many rows fast: ``COPY`` on PostgreSQL, ``executemany`` elsewhere.

``bulk_create`` would do, but it is several times slower on millions of rows (one big INSERT
per batch, parsed and planned), and it overwrites ``auto_now_add`` columns with "now", which
would put every seeded entry on the same day. So rows are plain tuples in column order, with
their primary keys allocated up front (runs and entries refer to each other by id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from django.db import connection, models


class RowWriter:
    """Writes tuples of field values (in ``fields`` order) into ``model``'s table."""

    def __init__(self, model: type[models.Model], fields: Sequence[str]) -> None:
        self.model = model
        self.table = model._meta.db_table
        self.model_fields = [model._meta.get_field(name) for name in fields]
        self.columns = [f.column for f in self.model_fields]  # type: ignore[union-attr]  # concrete fields only
        self.postgres = connection.vendor == "postgresql"
        self.written = 0
        self._next_id: int | None = None

    def allocate_ids(self, n: int) -> list[int]:
        """``n`` primary keys nobody else will use."""
        if n <= 0:
            return []
        with connection.cursor() as cursor:
            if self.postgres:
                # From the table's own sequence, so that rows inserted later by the application
                # never collide with seeded ones.
                cursor.execute(
                    "SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)",
                    [self.table, n],
                )
                return [row[0] for row in cursor.fetchall()]
            if self._next_id is None:
                cursor.execute(f'SELECT COALESCE(MAX("id"), 0) FROM "{self.table}"')
                self._next_id = cursor.fetchone()[0] + 1
        first = self._next_id
        self._next_id = first + n
        return list(range(first, first + n))

    def write(self, rows: Iterable[Sequence[Any]]) -> int:
        count = 0
        columns = ", ".join(f'"{c}"' for c in self.columns)
        with connection.cursor() as cursor:
            if self.postgres:
                # psycopg 3 adapts each Python value (aware datetimes, UUIDs, None) itself.
                raw = cursor.cursor
                with raw.copy(f'COPY "{self.table}" ({columns}) FROM STDIN') as copy:
                    for row in rows:
                        copy.write_row(row)
                        count += 1
            else:
                prep = self._preparers()
                placeholders = ", ".join(["%s"] * len(self.columns))
                sql = f'INSERT INTO "{self.table}" ({columns}) VALUES ({placeholders})'
                prepared = [tuple(p(v) for p, v in zip(prep, row, strict=True)) for row in rows]
                cursor.executemany(sql, prepared)
                count = len(prepared)
        self.written += count
        return count

    def _preparers(self) -> list[Callable[[Any], Any]]:
        # SQLite stores datetimes as text in UTC and UUIDs as hex: let each field say how.
        return [
            (lambda value, f=field: f.get_db_prep_save(value, connection))  # type: ignore[misc]  # f bound per field
            for field in self.model_fields
        ]
