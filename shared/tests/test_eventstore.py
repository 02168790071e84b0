"""The event store against real PostgreSQL: concurrency, ordering, immutability."""

import json
import random
import time
import uuid

import eventlet
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, ProgrammingError

from shared.db import create_service_engine
from shared.errors import BadRequest, ConcurrencyError
from shared.events import NewEvent
from shared.eventstore import EventStore


@pytest.fixture(scope="module")
def users_engine(isolated_settings):
    """The users schema of a database of its own: these tests append thousands of test events,
    which in the run's shared database a users service would later publish to every
    subscriber."""
    settings = isolated_settings(["users"], messaging=False)
    engine = create_service_engine(settings.service_url("users"), schema="users", pool_size=10)
    yield engine
    engine.dispose()


def _event(n: int = 0) -> NewEvent:
    return NewEvent("test.happened", {"n": n})


def test_append_and_load_stream(users_engine):
    stream = str(uuid.uuid4())
    with users_engine.begin() as conn:
        store = EventStore(conn)
        first = store.append(
            "thing",
            stream,
            [_event(1), _event(2)],
            expected_version=0,
            metadata={"request_id": "r-1"},
        )
        store.append("thing", stream, [_event(3)], expected_version=2)
    with users_engine.connect() as conn:
        loaded = EventStore(conn).load_stream(stream)
    assert [e.stream_version for e in loaded] == [1, 2, 3]
    assert [e.payload["n"] for e in loaded] == [1, 2, 3]
    assert loaded[0].metadata == {"request_id": "r-1"}
    assert loaded[0].global_position == first[0].global_position
    assert loaded[0].global_position < loaded[1].global_position < loaded[2].global_position
    assert loaded[0].occurred_at.tzinfo is not None
    envelope = loaded[2].envelope("users")
    assert envelope["source"] == "users" and envelope["stream_version"] == 3
    assert envelope["occurred_at"].endswith("Z")


def test_stale_expected_version_is_a_concurrency_error(users_engine):
    stream = str(uuid.uuid4())
    with users_engine.begin() as conn:
        EventStore(conn).append("thing", stream, [_event()], expected_version=0)
    with users_engine.begin() as conn, pytest.raises(ConcurrencyError) as caught:
        EventStore(conn).append("thing", stream, [_event()], expected_version=0)
    assert caught.value.extra == {
        "code": "concurrent_modification",
        "stream_id": stream,
        "expected_version": 0,
        "actual_version": 1,
    }
    assert caught.value.status == 409


def test_two_concurrent_appends_at_the_same_version_exactly_one_wins(users_engine):
    stream = str(uuid.uuid4())
    outcomes = {}
    first_in = eventlet.event.Event()

    def writer(name, hold):
        with users_engine.connect() as conn:
            try:
                with conn.begin():
                    EventStore(conn).append("thing", stream, [_event()], expected_version=0)
                    if hold:
                        first_in.send()
                        eventlet.sleep(0.3)  # the other writer is now waiting on the lock
                outcomes[name] = "won"
            except ConcurrencyError:
                outcomes[name] = "conflict"

    a = eventlet.spawn(writer, "a", True)
    first_in.wait()
    b = eventlet.spawn(writer, "b", False)
    a.wait()
    b.wait()
    assert sorted(outcomes.values()) == ["conflict", "won"]
    with users_engine.connect() as conn:
        assert EventStore(conn).stream_version(stream) == 1


def test_readers_never_skip_events_committed_late(users_engine):
    """8 writers append 5,000 events (some holding their transaction open a moment after the
    insert) while a reader tails read_events: every event is seen exactly once, in order."""
    writers, per_writer = 8, 625
    with users_engine.connect() as conn:
        start = EventStore(conn).last_position()
    written: set[str] = set()
    done = []

    def writer(index):
        rng = random.Random(index)
        with users_engine.connect() as conn:
            for n in range(per_writer):
                with conn.begin():
                    recorded = EventStore(conn).append(
                        "race", f"race-{index}", [_event(n)], expected_version=None
                    )
                    if rng.random() < 0.05:
                        conn.execute(text("SELECT pg_sleep(0.002)"))
                written.add(str(recorded[0].event_id))
        done.append(index)

    seen: list = []
    threads = [eventlet.spawn(writer, i) for i in range(writers)]

    def reader():
        position = start
        with users_engine.connect() as conn:
            while True:
                finished = len(done) == writers
                page = EventStore(conn).read_events(position, 100)
                conn.rollback()
                for event in page:
                    if event.stream_type == "race":
                        seen.append(event)
                    position = event.global_position
                if finished and not page:
                    return
                if not page:
                    eventlet.sleep(0.001)

    read = eventlet.spawn(reader)
    for thread in threads:
        thread.wait()
    read.wait()
    ids = [str(event.event_id) for event in seen]
    assert len(ids) == writers * per_writer
    assert len(set(ids)) == len(ids), "an event was read twice"
    assert set(ids) == written, "an event was skipped"
    positions = [event.global_position for event in seen]
    assert positions == sorted(positions)


def test_read_events_filters_by_type_and_validates_arguments(users_engine):
    marker = f"filter.{uuid.uuid4().hex[:8]}"
    with users_engine.begin() as conn:
        store = EventStore(conn)
        start = store.last_position()
        store.append("thing", str(uuid.uuid4()), [NewEvent(marker, {}), _event()], None)
    with users_engine.connect() as conn:
        store = EventStore(conn)
        assert [e.type for e in store.read_events(start, 10, types=[marker])] == [marker]
        with pytest.raises(BadRequest) as caught:
            store.read_events(-1, 10)
        assert "after_position" in caught.value.extra["errors"]
        with pytest.raises(BadRequest):
            store.read_events(0, 1001)


def test_events_are_append_only(users_engine):
    with users_engine.begin() as conn:
        EventStore(conn).append("thing", str(uuid.uuid4()), [_event()], 0)
    for statement in ("UPDATE events SET payload = '{}'", "DELETE FROM events", "TRUNCATE events"):
        with users_engine.connect() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(statement))


def test_a_service_role_cannot_read_another_services_schema(service_engine):
    with service_engine("orders").connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders.events")).scalar() >= 0
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("SELECT count(*) FROM users.events"))
    with (
        service_engine("users").connect() as conn,
        pytest.raises(ProgrammingError, match="permission denied"),
    ):
        conn.execute(text("CREATE TABLE payments.intruder (id int)"))


def test_psycopg2_is_cooperative_four_sleeps_take_about_one_second(users_engine):
    def sleep_one_second():
        with users_engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(1)"))

    started = time.monotonic()
    pool = eventlet.GreenPool()
    for _ in range(4):
        pool.spawn(sleep_one_second)
    pool.waitall()
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"four pg_sleep(1) took {elapsed:.2f} s: psycopg2 blocks the hub"


def test_service_roles_can_use_pg_trgm_but_not_change_the_extensions_schema(service_engine):
    with service_engine("customers").connect() as conn:
        assert conn.execute(text("SELECT similarity('zhang wei', 'zhangwei')")).scalar() > 0.3
        with pytest.raises(ProgrammingError, match="permission denied"):
            conn.execute(text("CREATE TABLE extensions.intruder (id int)"))


def test_envelopes_rendered_by_postgresql_are_the_envelopes_of_python(users_engine):
    """``read_envelopes_json`` and the relay's ``read_for_publishing`` hand on the database's
    rendering of an envelope: it must read back as exactly what ``envelope()`` gives, whole
    seconds, odd microseconds, non-ASCII text, nesting and nulls included."""
    from datetime import UTC, datetime

    stream = str(uuid.uuid4())
    payloads = [
        {"n": 1, "name": '张伟 "Zhang" \\ O\'Brien', "nested": {"a": [1, None, True]}},
        {"n": 2, "amount": 12345678901234, "empty": {}, "list": []},
        {"n": 3, "text": "line\nbreak\ttab \u2028 ☃"},
    ]
    moments = [
        datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
        datetime(2026, 1, 2, 3, 4, 5, 7, tzinfo=UTC),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ]
    events = [
        NewEvent("test.rendered", payload, occurred_at=moment)
        for payload, moment in zip(payloads, moments, strict=True)
    ]
    with users_engine.begin() as conn:
        recorded = EventStore(conn).append(
            "thing", stream, events, 0, metadata={"request_id": "r-9", "correlation_id": None}
        )
    after = recorded[0].global_position - 1
    with users_engine.connect() as conn:
        store = EventStore(conn)
        page = json.loads(store.read_envelopes_json("users", after, 3, ["test.rendered"]))
        rows = store.read_for_publishing("users", after, 3)
        empty = store.read_envelopes_json("users", recorded[-1].global_position, 5)
        cut = json.loads(
            store.read_envelopes_json("users", after, 3, None, payload_fields=["n", "empty", "x"])
        )
        nothing = json.loads(store.read_envelopes_json("users", after, 1, payload_fields=[]))
        with pytest.raises(BadRequest):
            store.read_envelopes_json("users", -1, 5)
    expected = [event.envelope("users") for event in recorded]
    assert page == expected
    assert [json.loads(row.body) for row in rows] == expected
    assert [row.request_id for row in rows] == ["r-9"] * 3
    assert [row.correlation_id for row in rows] == [None] * 3
    assert expected[0]["occurred_at"] == "2026-01-02T03:04:05Z"
    assert expected[1]["occurred_at"] == "2026-01-02T03:04:05.000007Z"
    assert json.loads(empty) == []
    # payload_fields: those top-level fields where present, absent ones left out, the rest
    # of the envelope whole
    assert [e["payload"] for e in cut] == [{"n": 1}, {"n": 2, "empty": {}}, {"n": 3}]
    assert [{**e, "payload": None} for e in cut] == [{**e, "payload": None} for e in expected]
    assert nothing[0]["payload"] == {}
