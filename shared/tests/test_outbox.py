"""The outbox relay against real PostgreSQL and RabbitMQ."""

import uuid
from urllib.parse import urlsplit, urlunsplit

import eventlet
import pytest
from nameko.events import event_handler
from nameko.testing.services import entrypoint_waiter

from services.payments.service import PaymentsService
from shared.events import NewEvent
from shared.eventstore import EventStore
from shared.outbox import Notifications, OutboxPublisher
from shared.testing import TcpProxy


def _append(engine, marker, count, stream=None):
    stream = stream or str(uuid.uuid4())
    with engine.begin() as conn:
        return EventStore(conn).append(
            "test",
            stream,
            [NewEvent(marker, {"n": n}) for n in range(count)],
            expected_version=None,
            metadata={"request_id": f"req-{marker}"},
        )


def test_publishes_committed_events_in_order_in_the_wire_format(service_engine, amqp_uri, listen):
    engine = service_engine("payments")
    listener = listen("payments")
    marker = f"test.{uuid.uuid4().hex[:8]}"
    recorded = _append(engine, marker, 5)
    publisher = OutboxPublisher(engine, "payments", amqp_uri)
    try:
        assert publisher.drain() >= 5
        assert publisher.published_position() >= recorded[-1].global_position
    finally:
        publisher.close()
    got = listener.collect(lambda body: body["type"] == marker)
    bodies = [body for body, _ in got]
    assert bodies == [event.envelope("payments") for event in recorded]
    _, message = got[0]
    assert message.delivery_info["routing_key"] == marker
    assert message.delivery_info["exchange"] == "payments.events"
    assert message.properties["delivery_mode"] == 2
    assert message.content_type == "application/json"
    assert message.headers["nameko.request_id"] == f"req-{marker}"


def test_an_idle_relay_publishes_again_without_a_failure(service_engine, amqp_uri, listen):
    """Between batches the publisher reads nothing from the broker, so it sends no heartbeat,
    and RabbitMQ closed its connection ("missed heartbeats from client"): the next batch
    failed on the dead socket (a warning, a retry). An idle connection is closed first."""
    engine = service_engine("payments")
    listener = listen("payments")
    marker = f"test.{uuid.uuid4().hex[:8]}"
    publisher = OutboxPublisher(engine, "payments", amqp_uri, heartbeat=1)
    try:
        _append(engine, marker, 1)
        publisher.drain()
        for _ in range(20):  # the relay's loop with nothing to publish, for 4 s
            assert publisher.relay_once() == 0
            eventlet.sleep(0.2)
        _append(engine, marker, 1)
        assert publisher.relay_once() >= 1  # raised ConnectionResetError / broken pipe
    finally:
        publisher.close()
    assert len(listener.collect(lambda body: body["type"] == marker)) == 2


def test_events_committed_while_rabbitmq_is_unreachable_are_published_later(
    service_engine, amqp_uri, amqp_address, listen
):
    engine = service_engine("payments")
    listener = listen("payments")
    proxy = TcpProxy(*amqp_address).start()
    parts = urlsplit(amqp_uri)
    through_proxy = urlunsplit(
        parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{proxy.port}")
    )
    publisher = OutboxPublisher(engine, "payments", through_proxy, batch_size=7)
    marker = f"test.{uuid.uuid4().hex[:8]}"
    try:
        publisher.drain()
        proxy.cut()
        recorded = []
        for _ in range(4):
            recorded += _append(engine, marker, 5)  # commits succeed with the broker away
        before = publisher.published_position()
        with pytest.raises(Exception):
            publisher.relay_once()
        assert publisher.published_position() == before
        proxy.restore()
        assert publisher.drain() >= 20
    finally:
        publisher.close()
        proxy.stop()
    got = listener.collect(lambda body: body["type"] == marker)
    received = [body["event_id"] for body, _ in got]
    assert set(received) == {str(event.event_id) for event in recorded}
    positions = [body["position"] for body, _ in got]
    assert positions == sorted(positions)


def test_competing_relays_publish_each_event_once(service_engine, amqp_uri, listen):
    engine = service_engine("payments")
    listener = listen("payments")
    publishers = [OutboxPublisher(engine, "payments", amqp_uri, batch_size=10) for _ in range(3)]
    try:
        publishers[0].drain()
        marker = f"test.{uuid.uuid4().hex[:8]}"
        recorded = _append(engine, marker, 60)
        target = recorded[-1].global_position

        def relay_until_done(publisher):
            # each tries until the log is published; most tries find the cursor taken
            with eventlet.Timeout(30):
                while publisher.published_position() < target:
                    publisher.relay_once()
                    eventlet.sleep(0)

        pool = eventlet.GreenPool()
        for publisher in publishers:
            pool.spawn(relay_until_done, publisher)
        pool.waitall()
    finally:
        for publisher in publishers:
            publisher.close()
    received = [body["event_id"] for body, _ in listener.collect(lambda b: b["type"] == marker)]
    assert sorted(received) == sorted(str(event.event_id) for event in recorded)


class RelayedEventListener:
    """A nameko service subscribed the nameko way to an event the relay publishes."""

    name = "test_relay_listener"
    received: list = []

    @event_handler("payments", "test.relayed")
    def on_relayed(self, envelope):
        RelayedEventListener.received.append(envelope)


def test_the_relay_inside_a_service_feeds_nameko_event_handlers(
    container_factory, nameko_config, service_engine
):
    payments = container_factory(PaymentsService, nameko_config)
    listener = container_factory(RelayedEventListener, nameko_config)
    listener.start()
    RelayedEventListener.received.clear()
    with entrypoint_waiter(listener, "on_relayed", timeout=10):
        payments.start()
        recorded = _append(service_engine("payments"), "test.relayed", 1)
    assert RelayedEventListener.received[-1] == recorded[0].envelope("payments")


def test_an_append_wakes_the_relay_of_its_own_schema_only(service_engine):
    """Channels are database-wide: each schema has its own, so one service's commits do not
    wake every other service's relay."""
    engines = {name: service_engine(name) for name in ("payments", "orders")}
    listeners = {}
    for name, engine in engines.items():
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        listeners[name] = Notifications(dsn, name)
        listeners[name].wait(0)  # LISTEN
    try:
        _append(engines["payments"], "test.notified", 1)
        payments = listeners["payments"]
        with eventlet.Timeout(5):
            while not payments.connection.notifies:
                eventlet.sleep(0.02)
                payments.connection.poll()
        orders = listeners["orders"].connection
        orders.poll()
        assert orders.notifies == []
    finally:
        for listener in listeners.values():
            listener.close()
