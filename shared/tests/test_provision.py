"""Provisioning: two runs at once (parallel test groups, each with its own database) change the
same cluster-wide roles; PostgreSQL refuses one of two concurrent changes of a role's row with
"tuple concurrently updated", and the statement is run again."""

import threading
import uuid

import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from shared.provision import _retrying_catalogue_races


def _race() -> DBAPIError:
    return DBAPIError("ALTER ROLE", None, Exception("tuple concurrently updated"))


def test_a_catalogue_race_is_run_again_and_any_other_error_is_not():
    calls = []

    def twice_refused():
        calls.append(1)
        if len(calls) < 3:
            raise _race()

    _retrying_catalogue_races(twice_refused)
    assert len(calls) == 3

    def broken():
        calls.append(1)
        raise DBAPIError("ALTER ROLE", None, Exception("permission denied"))

    calls.clear()
    with pytest.raises(DBAPIError, match="permission denied"):
        _retrying_catalogue_races(broken)
    assert len(calls) == 1


def test_concurrent_changes_of_one_role_all_succeed(backing_services):
    engine = create_engine(backing_services[0], poolclass=NullPool, isolation_level="AUTOCOMMIT")
    role = f"cms_race_probe_{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE ROLE "{role}" NOLOGIN')
    failures: list[Exception] = []

    def alter_many(n: int) -> None:
        try:
            with engine.connect() as conn:
                for i in range(30):
                    statement = f"ALTER ROLE \"{role}\" WITH PASSWORD 'p-{n}-{i}'"
                    _retrying_catalogue_races(
                        lambda statement=statement: conn.exec_driver_sql(statement)
                    )
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=alter_many, args=(n,)) for n in range(3)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP ROLE IF EXISTS "{role}"')
        engine.dispose()
    assert failures == []
