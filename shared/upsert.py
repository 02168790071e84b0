"""Read-model rows written with ``INSERT … ON CONFLICT DO UPDATE``, the statement built once.

Building the statement around each row (``insert(table).values(**row).on_conflict_do_update
(…)``) cost a placed order a fifth of its read-model write in the orders process, before the
statement reached PostgreSQL: each call made a new statement and SQLAlchemy walked it again
for its cache key (docs/performance.md). Here the statement is built once for each set of
columns a caller writes and executed with the row as its parameters.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects.postgresql import Insert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session


class Upsert:
    """Insert a row of ``table``, or update the row with the same ``key``: every column the
    row names but ``key`` and ``keep`` (columns only the insert sets, such as
    ``created_at``)."""

    def __init__(self, table: Table, key: Iterable[str], keep: Iterable[str] = ()):
        self.table = table
        self.key = tuple(key)
        self.unchanged = frozenset(self.key) | frozenset(keep)
        self._statements: dict[tuple[str, ...], Insert] = {}

    def statement(self, columns: tuple[str, ...]) -> Insert:
        built = self._statements.get(columns)
        if built is None:
            insert = pg_insert(self.table)
            changed = [name for name in columns if name not in self.unchanged]
            built = insert.on_conflict_do_update(
                index_elements=[self.table.c[name] for name in self.key],
                set_={name: insert.excluded[name] for name in changed},
            )
            self._statements[columns] = built
        return built

    def __call__(self, bind: Session | Connection, row: Mapping[str, Any]) -> None:
        bind.execute(self.statement(tuple(row)), dict(row))
