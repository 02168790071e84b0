"""``shared.upsert.Upsert`` against real PostgreSQL: insert, update, columns kept."""

import pytest
from sqlalchemy import Column, Integer, MetaData, Table, Text, select

from shared.db import create_service_engine
from shared.upsert import Upsert

probe = Table(
    "upsert_probe",
    MetaData(),
    Column("id", Integer, primary_key=True),
    Column("name", Text),
    Column("created", Text),
    Column("counter", Integer),
    prefixes=["TEMPORARY"],
)


@pytest.fixture
def conn(isolated_settings):
    settings = isolated_settings(["users"], messaging=False)
    engine = create_service_engine(settings.service_url("users"), schema="users", pool_size=1)
    with engine.begin() as connection:
        probe.create(connection)
        yield connection
    engine.dispose()


def _rows(conn):
    return [tuple(row) for row in conn.execute(select(probe).order_by(probe.c.id))]


def test_inserts_then_updates_all_but_the_key_and_the_kept_columns(conn):
    upsert = Upsert(probe, ["id"], keep=["created", "counter"])
    upsert(conn, {"id": 1, "name": "first", "created": "monday", "counter": 0})
    upsert(conn, {"id": 2, "name": "other", "created": "monday", "counter": 0})
    conn.execute(probe.update().where(probe.c.id == 1).values(counter=5))
    upsert(conn, {"id": 1, "name": "renamed", "created": "tuesday", "counter": 0})
    assert _rows(conn) == [(1, "renamed", "monday", 5), (2, "other", "monday", 0)]


def test_a_column_the_row_leaves_out_is_not_touched(conn):
    upsert = Upsert(probe, ["id"])
    upsert(conn, {"id": 1, "name": "first", "created": "monday", "counter": 3})
    upsert(conn, {"id": 1, "name": "second"})
    assert _rows(conn) == [(1, "second", "monday", 3)]
    assert upsert.statement(("id", "name")) is upsert.statement(("id", "name"))
    assert upsert.statement(("id", "name")) is not upsert.statement(("id", "name", "counter"))
