"""The transactional outbox relay (DESIGN §3).

The ``events`` rows committed with a service's state are its outbox. The relay publishes them
to the topic exchange ``<service>.events`` in position order, persistent, with publisher
confirms, and only then moves its cursor (``outbox_cursor``) past them. If RabbitMQ is down
the appends still commit; the relay keeps retrying and catches up when the broker is back.
Delivery is at least once (a crash between publish and cursor update republishes a batch),
which is why every consumer is idempotent.

Several processes of one service may run a relay: the cursor row is taken with
``FOR UPDATE SKIP LOCKED``, so exactly one of them publishes a given batch.
"""

from __future__ import annotations

import logging
import select
import time
from typing import Any

import psycopg2
from amqp import spec
from kombu import Connection, Producer
from nameko.constants import PERSISTENT
from nameko.extensions import DependencyProvider
from nameko.standalone.events import get_event_exchange
from sqlalchemy import text
from sqlalchemy.engine import Engine

from shared.db import create_service_engine, service_database_url
from shared.eventstore import EventStore, notify_channel

log = logging.getLogger(__name__)

RELAY_NAME = "amqp"


def publish_headers(event: Any) -> dict[str, Any]:
    """AMQP headers of a row of :meth:`EventStore.read_for_publishing`: nameko turns
    ``nameko.*`` headers into the handler's context data, so the request id of the command
    that caused an event follows it into its consumers."""
    headers: dict[str, Any] = {"cms.event_type": event.event_type}
    for key in ("request_id", "correlation_id"):
        if getattr(event, key):
            headers[f"nameko.{key}"] = getattr(event, key)
    return headers


class OutboxPublisher:
    """Publishes a service's committed events and advances its cursor."""

    def __init__(
        self,
        engine: Engine,
        service: str,
        amqp_uri: str,
        batch_size: int = 500,
        heartbeat: int = 15,
        connect_timeout: float = 5.0,
        confirm_timeout: float = 30.0,
    ):
        self.engine = engine
        self.service = service
        self.amqp_uri = amqp_uri
        self.batch_size = batch_size
        self.heartbeat = heartbeat
        self.connect_timeout = connect_timeout
        self.confirm_timeout = confirm_timeout
        self._sent = self._acked = 0
        self._nacked = False
        self.exchange = get_event_exchange(service, {})
        self._connection: Connection | None = None
        self._producer: Producer | None = None
        self._last_used = 0.0

    def _get_producer(self) -> Producer:
        if self._producer is None:
            connection = Connection(
                self.amqp_uri, heartbeat=self.heartbeat, connect_timeout=self.connect_timeout
            )
            connection.connect()
            channel = connection.channel()
            # Publisher confirms for the whole batch: publish every message, then wait for
            # the broker's acknowledgements (it sends them cumulatively). Waiting for each
            # message in turn held the relay to one broker round trip per event.
            channel.confirm_select()
            channel.events["basic_ack"].add(self._on_ack)
            channel.events["basic_nack"].add(self._on_nack)
            self._sent = self._acked = 0
            self._nacked = False
            self.exchange.declare(channel=channel)
            self._connection = connection
            self._producer = Producer(channel, exchange=self.exchange, serializer="json")
        return self._producer

    def _on_ack(self, delivery_tag: int, multiple: bool) -> None:
        self._acked = max(self._acked, delivery_tag)

    def _on_nack(self, delivery_tag: int, multiple: bool) -> None:
        self._nacked = True

    def _wait_for_confirms(self, channel: Any) -> None:
        deadline = time.monotonic() + self.confirm_timeout
        while True:
            if self._nacked:
                raise ConnectionError("RabbitMQ refused (nack) a published event")
            if self._acked >= self._sent:
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("RabbitMQ did not confirm the published events in time")
            channel.wait([spec.Basic.Ack, spec.Basic.Nack], timeout=remaining)

    def close_if_idle(self) -> None:
        """Close the connection once it has been idle for half the heartbeat interval. The
        publisher reads nothing from the broker between batches, so it never sends or hears a
        heartbeat: RabbitMQ closed every idle relay's connection ("missed heartbeats from
        client"), and the next publish failed on the dead socket with a warning and a retry.
        A connection made again for the next batch costs a few milliseconds."""
        idle = time.monotonic() - self._last_used
        if self._connection is not None and self.heartbeat and idle > self.heartbeat / 2:
            self.close()

    def close(self) -> None:
        connection, self._connection, self._producer = self._connection, None, None
        if connection is not None:
            try:
                connection.release()
            except Exception:
                log.debug("error closing AMQP connection", exc_info=True)

    def publish(self, events: list[Any]) -> None:
        """Publish ``events`` (rows of :meth:`EventStore.read_for_publishing`: the envelope is
        already JSON text, so it is sent as it is) and return once RabbitMQ has confirmed
        every one of them (raises when it refuses one or does not answer within
        ``confirm_timeout``)."""
        producer = self._get_producer()
        for event in events:
            producer.publish(
                event.body.encode(),
                routing_key=event.event_type,
                content_type="application/json",
                content_encoding="utf-8",
                delivery_mode=PERSISTENT,
                headers=publish_headers(event),
                message_id=str(event.event_id),
                mandatory=False,
                retry=False,
            )
            self._sent += 1
        self._wait_for_confirms(producer.channel)
        self._last_used = time.monotonic()

    def published_position(self) -> int:
        with self.engine.connect() as conn:
            return conn.execute(
                text("SELECT published_position FROM outbox_cursor WHERE relay = :relay"),
                {"relay": RELAY_NAME},
            ).scalar_one()

    def relay_once(self) -> int:
        """Publish the next batch; returns how many events were published (0: nothing to do,
        or another process holds the cursor). Raises when the broker cannot be reached."""
        self.close_if_idle()
        with self.engine.begin() as conn:
            position = conn.execute(
                text(
                    "SELECT published_position FROM outbox_cursor WHERE relay = :relay "
                    "FOR UPDATE SKIP LOCKED"
                ),
                {"relay": RELAY_NAME},
            ).scalar()
            if position is None:
                return 0
            events = EventStore(conn).read_for_publishing(self.service, position, self.batch_size)
            if not events:
                return 0
            try:
                self.publish(events)
            except Exception:
                self.close()
                raise
            conn.execute(
                text(
                    "UPDATE outbox_cursor SET published_position = :position, updated_at = now() "
                    "WHERE relay = :relay"
                ),
                {"position": events[-1].global_position, "relay": RELAY_NAME},
            )
            return len(events)

    def drain(self) -> int:
        """Publish until nothing is left; returns the number published."""
        total = 0
        while True:
            published = self.relay_once()
            total += published
            if published < self.batch_size:
                return total


class Notifications:
    """Waits for the ``NOTIFY`` an append to ``schema``'s event log sends when it commits."""

    def __init__(self, dsn: str, schema: str):
        self.dsn = dsn
        self.channel = notify_channel(schema)
        self.connection = None

    def wait(self, timeout: float) -> None:
        try:
            connection = self.connection
            if connection is None:
                connection = psycopg2.connect(self.dsn)
                connection.autocommit = True
                connection.cursor().execute(f'LISTEN "{self.channel}"')
                self.connection = connection
            select.select([connection], [], [], timeout)
            connection.poll()
            connection.notifies.clear()
        except (psycopg2.Error, OSError, ValueError):
            self.close()
            time.sleep(timeout)

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.close()
            except psycopg2.Error:
                pass


class OutboxRelay(DependencyProvider):
    """Runs the outbox publisher in a managed background thread of the service container.

    It wakes on every commit that appended events (LISTEN/NOTIFY) and at least every
    ``CMS_RELAY_INTERVAL`` seconds; after a failure it backs off up to 5 seconds.
    """

    max_backoff = 5.0

    def __init__(self, schema: str | None = None):
        self.schema = schema
        self.publisher: OutboxPublisher | None = None
        self.notifications: Notifications | None = None
        self._running = False

    def setup(self) -> None:
        from shared.config import settings

        config = self.container.config
        service = self.schema or self.container.service_name
        url = service_database_url(config, service)
        engine = create_service_engine(url, schema=service, pool_size=1, max_overflow=1)
        self.interval = float(config.get("RELAY_INTERVAL", settings().relay_interval))
        self.publisher = OutboxPublisher(
            engine,
            service,
            config["AMQP_URI"],
            batch_size=int(config.get("RELAY_BATCH_SIZE", settings().relay_batch_size)),
            heartbeat=int(config.get("HEARTBEAT", 15)),
        )
        dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.notifications = Notifications(dsn, service)

    def start(self) -> None:
        self._running = True
        self.container.spawn_managed_thread(self._run, identifier="outbox-relay")

    def stop(self) -> None:
        self._running = False
        if self.publisher is not None:
            self.publisher.close()
            self.publisher.engine.dispose()
        if self.notifications is not None:
            self.notifications.close()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx) -> OutboxPublisher:
        return self.publisher

    def _run(self) -> None:
        backoff = self.interval
        failing = False
        while self._running:
            try:
                published = self.publisher.relay_once()
                if failing:
                    log.info("outbox relay of %s recovered", self.publisher.service)
                failing, backoff = False, self.interval
            except Exception as exc:  # noqa: BLE001 - keep relaying whatever went wrong
                if not failing:
                    log.warning(
                        "outbox relay of %s cannot publish (%s); retrying",
                        self.publisher.service,
                        exc,
                    )
                failing = True
                time.sleep(backoff)
                backoff = min(self.max_backoff, backoff * 2)
                continue
            if published < self.publisher.batch_size:
                self.notifications.wait(self.interval)
