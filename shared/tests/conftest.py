"""Fixtures for the mechanism tests: an AMQP listener bound to a service's event exchange."""

import queue
import uuid
from urllib.parse import urlsplit

import eventlet
import pytest
from kombu import Connection, Queue
from nameko.standalone.events import get_event_exchange


class ExchangeListener:
    """A plain kombu consumer (not nameko) on ``<service>.events`` with routing key ``#``."""

    def __init__(self, amqp_uri: str, service: str):
        self.connection = Connection(amqp_uri)
        self.messages: queue.Queue = queue.Queue()
        self.queue = Queue(
            f"test-listener-{uuid.uuid4().hex[:8]}",
            exchange=get_event_exchange(service, {}),
            routing_key="#",
            exclusive=True,
            auto_delete=True,
        )
        self.consumer = self.connection.Consumer(
            [self.queue], callbacks=[self._on_message], accept=["json"]
        )
        self.consumer.consume()
        self.thread = eventlet.spawn(self._loop)

    def _on_message(self, body, message):
        self.messages.put((body, message))
        message.ack()

    def _loop(self):
        while True:
            try:
                self.connection.drain_events(timeout=0.2)
            except TimeoutError:
                continue
            except OSError:
                return

    def collect(self, wanted, timeout: float = 10.0) -> list:
        """Messages whose body satisfies ``wanted(body)``, until ``timeout`` passes quietly."""
        found = []
        deadline = eventlet.Timeout(timeout, False)
        with deadline:
            while True:
                try:
                    body, message = self.messages.get(timeout=1.0)
                except queue.Empty:
                    if found:
                        break
                    continue
                if wanted(body):
                    found.append((body, message))
        return found

    def close(self):
        self.thread.kill()
        self.connection.release()


@pytest.fixture
def listen(amqp_uri):
    listeners = []

    def make(service: str) -> ExchangeListener:
        listener = ExchangeListener(amqp_uri, service)
        listeners.append(listener)
        return listener

    yield make
    for listener in listeners:
        listener.close()


@pytest.fixture
def amqp_address(amqp_uri):
    parts = urlsplit(amqp_uri)
    return parts.hostname, parts.port or 5672
