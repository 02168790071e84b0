"""The idempotent-consumer helper: redelivery, catch-up, and a real double delivery."""

import time
import uuid

import eventlet
import pytest
from nameko.events import event_handler
from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.consumer import (
    apply_all_once,
    apply_next,
    apply_once,
    apply_run,
    catch_up,
    cursor,
    remember_cursor,
)
from shared.db import Database, create_service_engine
from shared.events import NewEvent
from shared.eventstore import EventStore
from shared.outbox import OutboxPublisher
from shared.subscriptions import (
    BACKLOG_LIMIT,
    RETRY_PAUSE,
    ConsumerEventHandler,
    consumer_event_handler,
    durable_event_handler,
)


def _envelope(position=1, key="k"):
    return {
        "event_id": str(uuid.uuid4()),
        "type": "test.counted",
        "source": "payments",
        "position": position,
        "payload": {"key": key},
    }


def _count(table):
    def apply(session, envelope):
        session.execute(
            text(
                f"INSERT INTO {table} (key, hits) VALUES (:key, 1) "
                f"ON CONFLICT (key) DO UPDATE SET hits = {table}.hits + 1"
            ),
            {"key": envelope["payload"]["key"]},
        )

    return apply


def _hits(engine, table, key):
    with engine.connect() as conn:
        return conn.execute(
            text(f"SELECT hits FROM {table} WHERE key = :key"), {"key": key}
        ).scalar()


def test_an_event_applied_twice_changes_state_once(service_engine, scratch_table):
    engine = service_engine("analytics")
    envelope = _envelope()
    with Session(engine) as session:
        assert apply_once(session, "test-counter", envelope, _count(scratch_table)) is True
        assert apply_once(session, "test-counter", envelope, _count(scratch_table)) is False
        assert apply_once(session, "other-consumer", envelope, _count(scratch_table)) is True
    assert _hits(engine, scratch_table, "k") == 2  # once per consumer


def test_a_failing_effect_records_nothing(service_engine, scratch_table):
    engine = service_engine("analytics")
    envelope = _envelope(key="boom")

    def explode(session, envelope):
        _count(scratch_table)(session, envelope)
        raise RuntimeError("transient")

    with Session(engine) as session:
        try:
            apply_once(session, "test-failing", envelope, explode)
        except RuntimeError:
            pass
        assert _hits(engine, scratch_table, "boom") is None
        assert apply_once(session, "test-failing", envelope, _count(scratch_table)) is True
    assert _hits(engine, scratch_table, "boom") == 1


def test_a_batch_applies_each_new_event_once_in_one_transaction(service_engine, scratch_table):
    engine = service_engine("analytics")
    consumer = f"test-batch-{uuid.uuid4().hex[:6]}"
    seen, first, second = _envelope(key="b"), _envelope(key="b"), _envelope(key="b")
    count = _count(scratch_table)
    with Session(engine) as session:
        assert apply_once(session, consumer, seen, count)
        # one applied before, one new, and the new one delivered twice in the same batch
        applied = apply_all_once(session, consumer, [seen, first, second, first], count)
        assert [e["event_id"] for e in applied] == [first["event_id"], second["event_id"]]
        assert apply_all_once(session, consumer, [first, second], count) == []
    assert _hits(engine, scratch_table, "b") == 3


def test_a_failing_event_rolls_its_whole_batch_back(service_engine, scratch_table):
    engine = service_engine("analytics")
    consumer = f"test-batch-{uuid.uuid4().hex[:6]}"
    batch = [_envelope(position=p, key="rb") for p in range(1, 4)]

    def fail_on_last(session, envelope):
        _count(scratch_table)(session, envelope)
        if envelope["position"] == 3:
            raise RuntimeError("poison")

    with Session(engine) as session:
        with pytest.raises(RuntimeError):
            apply_all_once(session, consumer, batch, fail_on_last)
        assert _hits(engine, scratch_table, "rb") is None  # nor are they claimed:
        assert len(apply_all_once(session, consumer, batch, _count(scratch_table))) == 3
    assert _hits(engine, scratch_table, "rb") == 3


def test_catch_up_applies_what_live_delivery_missed_exactly_once(service_engine, scratch_table):
    engine = service_engine("analytics")
    log = [_envelope(position=p, key=f"c{p % 3}") for p in range(1, 24)]

    def fetch(after, limit):
        return [e for e in log if e["position"] > after][:limit]

    consumer = f"test-catch-up-{uuid.uuid4().hex[:6]}"
    with Session(engine) as session:
        for envelope in log[5:9]:  # some arrived live, out of order
            apply_once(session, consumer, envelope, _count(scratch_table))
        assert catch_up(session, consumer, "payments", fetch, _count(scratch_table), 5) == 19
        assert cursor(session, consumer, "payments") == 23
        assert catch_up(session, consumer, "payments", fetch, _count(scratch_table), 5) == 0
        # a late live delivery behind the cursor is known applied: no query, no effect
        late = {**_envelope(position=7, key="late")}
        assert apply_once(session, consumer, late, _count(scratch_table)) is False
        assert apply_once(session, consumer, {**late, "source": "orders"}, _count(scratch_table))
    total = sum(_hits(engine, scratch_table, f"c{k}") for k in range(3))
    assert total == len(log)
    assert _hits(engine, scratch_table, "late") == 1  # only the other source's


def test_a_failing_event_rolls_its_catch_up_page_back(service_engine, scratch_table):
    engine = service_engine("analytics")
    log = [_envelope(position=p, key="page") for p in range(1, 5)]
    consumer = f"test-page-{uuid.uuid4().hex[:6]}"

    def fetch(after, limit):
        return [e for e in log if e["position"] > after][:limit]

    def fail_on_third(session, envelope):
        if envelope["position"] == 3:
            raise RuntimeError("poison")
        _count(scratch_table)(session, envelope)

    with Session(engine) as session:
        try:
            catch_up(session, consumer, "payments", fetch, fail_on_third, 10)
        except RuntimeError:
            pass
        assert cursor(session, consumer, "payments") == 0
        assert _hits(engine, scratch_table, "page") is None
        assert catch_up(session, consumer, "payments", fetch, _count(scratch_table), 10) == 4
    assert _hits(engine, scratch_table, "page") == 4


def test_apply_next_takes_only_the_event_right_after_the_cursor(service_engine, scratch_table):
    engine = service_engine("analytics")
    log = [_envelope(position=p, key="n") for p in range(1, 6)]
    consumer = f"test-next-{uuid.uuid4().hex[:6]}"
    count = _count(scratch_table)
    with Session(engine) as session:
        # no cursor yet: a catch-up must come first
        assert apply_next(session, consumer, "payments", log[0], count) is False
        catch_up(session, consumer, "payments", lambda after, limit: log[:2][after:], count, 5)
        assert cursor(session, consumer, "payments") == 2
        assert apply_next(session, consumer, "payments", log[3], count) is False  # a gap
        assert apply_next(session, consumer, "payments", log[1], count) is False  # passed
        assert apply_next(session, consumer, "payments", log[2], count) is True
        assert cursor(session, consumer, "payments") == 3
        session.rollback()

        def explode(session, envelope):
            count(session, envelope)
            raise RuntimeError("transient")

        try:
            apply_next(session, consumer, "payments", log[3], explode)
        except RuntimeError:
            pass
        assert cursor(session, consumer, "payments") == 3  # nothing of it stayed
        session.rollback()
    assert _hits(engine, scratch_table, "n") == 3


def test_a_run_of_live_events_after_the_cursor_is_applied_in_one_transaction(
    service_engine, scratch_table
):
    engine = service_engine("analytics")
    log = [_envelope(position=p, key="run") for p in range(1, 8)]
    consumer = f"test-run-{uuid.uuid4().hex[:6]}"
    count = _count(scratch_table)
    with Session(engine) as session:
        catch_up(session, consumer, "payments", lambda after, limit: log[:2][after:], count, 5)
        assert apply_run(session, consumer, "payments", log[3:6], count) is False  # a gap
        assert apply_run(session, consumer, "payments", log[2:5], count) is True
        assert cursor(session, consumer, "payments") == 5
        with pytest.raises(ValueError, match="not a run"):
            apply_run(session, consumer, "payments", [log[5], log[6], log[6]], count)
        assert apply_run(session, consumer, "payments", log[5:7], count) is True
        assert cursor(session, consumer, "payments") == 7
    assert _hits(engine, scratch_table, "run") == 7


def _flush_wait(session) -> str:
    return session.execute(text("SHOW synchronous_commit")).scalar()


def test_a_consumer_commits_without_waiting_for_the_flush_unless_it_appends_events(
    isolated_settings,
):
    """A consumer's writes are derived from a log, and a commit a crash loses is applied again
    by the next catch-up; an event it appends must be flushed before anyone can see it."""
    settings = isolated_settings(["users"], messaging=False)
    engine = create_service_engine(settings.service_url("users"), schema="users", pool_size=2)
    seen: dict[str, str] = {}

    def note(name):
        return lambda session, envelope: seen.setdefault(name, _flush_wait(session))

    def appending(session, envelope):
        EventStore(session).append("test", str(uuid.uuid4()), [NewEvent("test.done", {})], 0)
        seen["appending"] = _flush_wait(session)

    consumer = f"test-flush-{uuid.uuid4().hex[:6]}"
    log = [_envelope(position=p) for p in range(1, 4)]
    try:
        with Session(engine) as session:
            assert _flush_wait(session) == "on"  # the default, for every other transaction
            session.rollback()
            apply_once(session, consumer, _envelope(), note("apply_once"))
            catch_up(session, consumer, "payments", lambda a, n: log[:2][a:], note("catch_up"))
            apply_next(session, consumer, "payments", log[2], note("apply_next"))
            apply_once(session, consumer, {**_envelope(), "source": "orders"}, appending)
            assert _flush_wait(session) == "on"  # SET LOCAL: gone with its transaction
    finally:
        engine.dispose()
    assert seen == {
        "apply_once": "off",
        "catch_up": "off",
        "apply_next": "off",
        "appending": "on",
    }


class CountingConsumer:
    """A nameko consumer built with the helper, counting into a scratch table."""

    name = "analytics"
    db = Database()
    table = ""
    deliveries: list = []

    @event_handler("payments", "test.counted", requeue_on_error=True)
    def on_counted(self, envelope):
        apply_once(self.db, "test-counting", envelope, _count(CountingConsumer.table))
        CountingConsumer.deliveries.append(envelope["event_id"])


def test_a_redelivered_event_changes_the_consumers_state_once(
    container_factory, nameko_config, service_engine, scratch_table, amqp_uri
):
    CountingConsumer.table = scratch_table
    consumer = container_factory(CountingConsumer, nameko_config)
    consumer.start()
    engine = service_engine("payments")
    key = uuid.uuid4().hex
    with engine.begin() as conn:
        store = EventStore(conn)
        recorded = store.append(
            "test", key, [NewEvent("test.counted", {"key": key})], expected_version=0
        )
    publisher = OutboxPublisher(engine, "payments", amqp_uri)
    CountingConsumer.deliveries.clear()
    try:
        publisher.drain()
        # the relay crashed before moving its cursor: the same event goes out twice more
        with engine.connect() as conn:
            again = EventStore(conn).read_for_publishing(
                "payments", recorded[0].global_position - 1, 1
            )
        publisher.publish(again)
        publisher.publish(again)
    finally:
        publisher.close()
    with eventlet.Timeout(10):
        while CountingConsumer.deliveries.count(str(recorded[0].event_id)) < 3:
            eventlet.sleep(0.05)
    assert _hits(service_engine("analytics"), scratch_table, key) == 1


def _record(engine, event_type: str, count: int):
    """``count`` events of ``event_type`` (payload ``{"n": n}``) in a new stream of the
    payments log."""
    with engine.begin() as conn:
        return EventStore(conn).append(
            "test",
            uuid.uuid4().hex,
            [NewEvent(event_type, {"n": n}) for n in range(count)],
            expected_version=0,
        )


def _relay(engine, amqp_uri) -> None:
    """Publish what the payments outbox holds, as its relay would."""
    publisher = OutboxPublisher(engine, "payments", amqp_uri)
    try:
        publisher.drain()
    finally:
        publisher.close()


class SkippingConsumer:
    """A consumer whose deliveries go through ``ConsumerEventHandler``."""

    name = "analytics"
    db = Database()
    handled: list = []

    @consumer_event_handler("payments", "test.skipped", "test-skipping")
    def on_skipped(self, envelope):
        SkippingConsumer.handled.append(envelope["position"])


def test_deliveries_behind_the_known_cursor_are_acknowledged_without_a_worker(
    container_factory, nameko_config, service_engine, amqp_uri
):
    from kombu import Connection

    container = container_factory(SkippingConsumer, nameko_config)
    container.start()
    payments = service_engine("payments")
    recorded = _record(payments, "test.skipped", 3)
    positions = [event.global_position for event in recorded]
    with Session(service_engine("analytics")) as session:  # a catch-up applied the first two
        remember_cursor(session, "test-skipping", "payments", positions[1])
    SkippingConsumer.handled.clear()
    _relay(payments, amqp_uri)
    with eventlet.Timeout(10):
        while positions[2] not in SkippingConsumer.handled:
            eventlet.sleep(0.05)
    eventlet.sleep(0.3)
    container.stop()  # what was not acknowledged would be ready in the queue again
    assert SkippingConsumer.handled == [positions[2]]
    with Connection(amqp_uri) as connection:
        queue = "evt-payments-test.skipped--analytics.on_skipped"
        _, ready, _ = connection.default_channel.queue_declare(queue, passive=True)
    assert ready == 0


class BrokenConsumer:
    """A consumer that can never apply its event (as with one that breaks its contract)."""

    name = "analytics"
    attempts: list = []

    @durable_event_handler("payments", "test.unusable")
    def on_unusable(self, envelope):
        BrokenConsumer.attempts.append(envelope["position"])
        raise KeyError("line_id")


def test_a_delivery_that_keeps_failing_is_retried_after_a_pause_not_in_a_loop(
    container_factory, nameko_config, service_engine, amqp_uri
):
    container = container_factory(BrokenConsumer, nameko_config)
    container.start()
    payments = service_engine("payments")
    recorded = _record(payments, "test.unusable", 1)
    BrokenConsumer.attempts.clear()
    _relay(payments, amqp_uri)
    with eventlet.Timeout(10):
        while len(BrokenConsumer.attempts) < 2:
            eventlet.sleep(0.05)
    eventlet.sleep(RETRY_PAUSE * 1.5)
    # at once, then once more at once (a redelivery), then one per pause: without the
    # pause the same time holds hundreds of attempts
    assert 2 <= len(BrokenConsumer.attempts) <= 4
    assert set(BrokenConsumer.attempts) == {recorded[0].global_position}
    container.kill()  # the message stays in its queue, unacknowledged, for a later start


class FiveDeep(ConsumerEventHandler):
    """A consumer's handler whose queue keeps five deliveries (the real one keeps
    ``BACKLOG_LIMIT``)."""

    queue_arguments = {"x-max-length": 5, "x-overflow": "drop-head"}


class BoundedConsumer:
    name = "analytics"
    db = Database()
    handled: list = []

    @FiveDeep.decorator("payments", "test.bounded", "test-bounded")
    def on_bounded(self, envelope):
        BoundedConsumer.handled.append(envelope["position"])


def test_a_consumers_queue_keeps_only_the_newest_deliveries(
    container_factory, nameko_config, service_engine, amqp_uri
):
    from kombu import Connection

    first = container_factory(BoundedConsumer, nameko_config)
    first.start()  # declares the queue, with its arguments
    first.stop()
    payments = service_engine("payments")
    recorded = _record(payments, "test.bounded", 12)
    _relay(payments, amqp_uri)
    with Connection(amqp_uri) as connection:
        queue = "evt-payments-test.bounded--analytics.on_bounded"
        _, ready, _ = connection.default_channel.queue_declare(queue, passive=True)
    assert ready == 5  # the oldest seven were dropped: the consumer reads them from the log
    BoundedConsumer.handled.clear()
    second = container_factory(BoundedConsumer, nameko_config)
    second.start()
    positions = [event.global_position for event in recorded]
    with eventlet.Timeout(10):
        while len(BoundedConsumer.handled) < 5:
            eventlet.sleep(0.05)
    assert sorted(BoundedConsumer.handled) == positions[-5:]


def test_provisioning_replaces_a_consumers_queue_declared_without_its_bound(amqp_uri):
    from amqp.exceptions import PreconditionFailed
    from kombu import Connection

    from shared.provision import consumer_bindings, declare_messaging

    [(queue, _, _, arguments)] = [b for b in consumer_bindings("webhooks") if b[1] == "orders"]
    assert arguments == {"x-max-length": BACKLOG_LIMIT, "x-overflow": "drop-head"}
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        channel.queue_delete(queue)
        channel.queue_declare(queue, durable=True, auto_delete=False)  # as before the bound
    declare_messaging(amqp_uri, ["webhooks"])
    with Connection(amqp_uri) as connection:
        channel = connection.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False, arguments=arguments)
        with pytest.raises(PreconditionFailed):  # it has the bound now, not the old arguments
            connection.channel().queue_declare(queue, durable=True, auto_delete=False)


def _start_after_a_first_batch(container_factory, consumer, config, payments, amqp_uri, kind):
    """Start ``consumer`` (a batched handler class keeping ``batches``), let it take whatever
    the outbox held, then record one ``kind`` event and wait until its batch has begun: the
    handler has just started a batch, so what comes next waits for its turn."""
    container = container_factory(consumer, config)
    container.start()
    _relay(payments, amqp_uri)  # anything older in the outbox goes out first
    eventlet.sleep(0.3)
    consumer.batches.clear()
    _record(payments, kind, 1)
    _relay(payments, amqp_uri)
    with eventlet.Timeout(10):
        while not consumer.batches:
            eventlet.sleep(0.01)
    return container


class BatchingConsumer:
    """A ``batched`` handler: the first batch is slow, so what arrives meanwhile waits for
    the next; a batch holding ``n == 2`` fails the first time it is applied."""

    name = "analytics"
    batches: list = []
    failed: list = []

    @durable_event_handler("payments", "test.batched", batched=True)
    def on_batched(self, envelopes):
        BatchingConsumer.batches.append(sorted(e["payload"]["n"] for e in envelopes))
        if len(BatchingConsumer.batches) == 1:
            eventlet.sleep(0.5)
        if any(e["payload"]["n"] == 2 for e in envelopes) and not BatchingConsumer.failed:
            BatchingConsumer.failed.append(True)
            raise RuntimeError("a lost race")


def test_deliveries_that_arrive_while_a_batch_runs_are_applied_together_next(
    container_factory, nameko_config, service_engine, amqp_uri
):
    from kombu import Connection

    payments = service_engine("payments")
    BatchingConsumer.failed.clear()
    container = _start_after_a_first_batch(
        container_factory, BatchingConsumer, nameko_config, payments, amqp_uri, "test.batched"
    )
    _record(payments, "test.batched", 6)  # n = 0..5, while the first batch sleeps
    _relay(payments, amqp_uri)
    with eventlet.Timeout(15):
        while sum(len(batch) for batch in BatchingConsumer.batches) < 1 + 6 + 6:
            eventlet.sleep(0.05)
    eventlet.sleep(0.3)
    container.stop()
    batches = BatchingConsumer.batches
    assert batches[0] == [0]  # an idle handler starts at once, alone
    assert batches[1] == [0, 1, 2, 3, 4, 5]  # what waited, together (and failed)
    # requeued together, redelivered, and so applied one at a time
    assert sorted(map(tuple, batches[2:])) == [(n,) for n in range(6)]
    with Connection(amqp_uri) as connection:
        queue = "evt-payments-test.batched--analytics.on_batched"
        _, ready, _ = connection.default_channel.queue_declare(queue, passive=True)
    assert ready == 0


class PacedConsumer:
    name = "analytics"
    batches: list = []

    @durable_event_handler("payments", "test.paced", batched=True)
    def on_paced(self, envelopes):
        PacedConsumer.batches.append((time.monotonic(), [e["payload"]["n"] for e in envelopes]))


def test_under_load_a_batched_handler_starts_a_batch_once_per_interval(
    container_factory, nameko_config, service_engine, amqp_uri
):
    payments = service_engine("payments")
    config = {**nameko_config, "CONSUMER_BATCH_INTERVAL": 1.0}
    container = _start_after_a_first_batch(
        container_factory, PacedConsumer, config, payments, amqp_uri, "test.paced"
    )
    for _ in range(3):  # three more, one at a time, well within the interval
        _record(payments, "test.paced", 1)
        _relay(payments, amqp_uri)
    with eventlet.Timeout(10):
        while sum(len(ns) for _, ns in PacedConsumer.batches) < 4:
            eventlet.sleep(0.01)
    container.stop()
    (first, _), (second, later) = PacedConsumer.batches
    assert later == [0, 0, 0]  # together, in one batch
    assert second - first >= 0.95


class FullBatchConsumer:
    name = "analytics"
    batches: list = []

    @durable_event_handler("payments", "test.full", batched=True)
    def on_full(self, envelopes):
        FullBatchConsumer.batches.append([e["payload"]["n"] for e in envelopes])


def test_a_batch_as_large_as_the_prefetch_starts_without_waiting_for_the_interval(
    container_factory, nameko_config, service_engine, amqp_uri
):
    # a 30 s interval and a prefetch of 3: paced once per interval, the nine events after
    # the first would take three intervals; full batches start as soon as they are full
    config = {**nameko_config, "CONSUMER_BATCH_INTERVAL": 30.0, "max_workers": 3}
    payments = service_engine("payments")
    container = _start_after_a_first_batch(
        container_factory, FullBatchConsumer, config, payments, amqp_uri, "test.full"
    )
    _record(payments, "test.full", 9)
    _relay(payments, amqp_uri)
    with eventlet.Timeout(10):  # a third of one interval
        while sum(len(ns) for ns in FullBatchConsumer.batches) < 10:
            eventlet.sleep(0.01)
    container.stop()
    assert all(len(ns) <= 3 for ns in FullBatchConsumer.batches)
    assert sorted(n for ns in FullBatchConsumer.batches[1:] for n in ns) == list(range(9))
