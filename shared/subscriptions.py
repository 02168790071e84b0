"""Subscribing a service to other services' events, the nameko way (DESIGN §3).

``@subscribe({"orders": ("order.placed", …)}, "on_event")`` gives a service class one durable
``@event_handler`` per ``(source, event type)`` (named ``on_<source>_<type>``, so provisioning
declares and binds its queue before the first event), each handing the envelope to the class's
``on_event(envelope)``. A failure requeues the message (handlers must be idempotent:
``shared.consumer.apply_once``); a consumer also catches up through ``read_events``.
Every handler here is a :class:`RetryingEventHandler` (``@durable_event_handler``): a
delivery that fails a second time goes back to its queue only after a pause, so a message
that cannot be applied (one that breaks its contract, or while the database is down) is
retried every few seconds and logged each time instead of spinning a core.
With ``consumer=`` (or ``@consumer_event_handler``) the handler is a
:class:`ConsumerEventHandler`, which acknowledges without a worker what that consumer has
applied already, and whose queue keeps at most :data:`BACKLOG_LIMIT` deliveries: such a
consumer takes every event from its source's log (catch-up), so a delivery is only a
doorbell, and a backlog past that (a bulk import, a consumer down for a day) is dropped from
the oldest end instead of filling RabbitMQ's memory and disk.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import eventlet
from nameko.events import SERVICE_POOL, EventHandler

from shared.consumer import ahead_of_known_cursor
from shared.db import Database

T = TypeVar("T", bound=type)


#: Seconds a delivery that failed before (``redelivered``) waits before it is requeued.
RETRY_PAUSE = 2.0


class RetryingEventHandler(EventHandler):
    """nameko's durable event handler, requeued on error, with a pause before a repeated
    failure goes back to the queue. nameko requeues at once, and RabbitMQ redelivers at
    once: one message that always fails would be retried as fast as a core allows, for as
    long as the service runs. The first failure is requeued at once (a lost race, a deadlock
    victim); a redelivered one waits :data:`RETRY_PAUSE` in its worker first, which holds
    that worker (and the message, unacknowledged) meanwhile."""

    def __init__(self, source_service: str, event_type: str, **kwargs: Any):
        kwargs.setdefault("handler_type", SERVICE_POOL)
        kwargs.setdefault("reliable_delivery", True)
        kwargs.setdefault("requeue_on_error", True)
        super().__init__(source_service, event_type, **kwargs)

    def handle_message_processed(self, message: Any, result: Any = None, exc_info: Any = None):
        if exc_info is not None and self.requeue_on_error:
            if (getattr(message, "delivery_info", None) or {}).get("redelivered"):
                eventlet.sleep(RETRY_PAUSE)
        super().handle_message_processed(message, result, exc_info)


def durable_event_handler(source_service: str, event_type: str, **kwargs: Any):
    """Decorator: ``@durable_event_handler("orders", "order.placed")`` (a
    :class:`RetryingEventHandler`)."""
    return RetryingEventHandler.decorator(source_service, event_type, **kwargs)


#: The most deliveries the queue of a :class:`ConsumerEventHandler` keeps; RabbitMQ drops the
#: oldest past it (``x-overflow: drop-head``: the newest stay, and the first of them that
#: arrives far ahead of the consumer's cursor starts a catch-up from the log). A constant, not
#: a setting: provisioning and every process must declare the queue with the same arguments.
BACKLOG_LIMIT = 10_000


class ConsumerEventHandler(RetryingEventHandler):
    """nameko's durable event handler (requeued on error) for deliveries that feed one
    idempotent consumer (``shared.consumer``): a delivery at or behind the cursor this
    process last committed for that consumer is already applied, so it is acknowledged here,
    without a worker (no green thread, no session, no dependencies). After a bulk import the
    queues hold one such delivery per event and consumer, which a catch-up in pages has
    applied already; a worker each was most of the consumers' CPU while they drained."""

    #: RabbitMQ arguments of the queue (``shared.provision`` declares it with the same)
    queue_arguments: Mapping[str, Any] = {"x-max-length": BACKLOG_LIMIT, "x-overflow": "drop-head"}

    def __init__(self, source_service: str, event_type: str, consumer: str, **kwargs: Any):
        super().__init__(source_service, event_type, **kwargs)
        self.consumer = consumer
        self._database: str | None = None

    def setup(self) -> None:
        super().setup()  # nameko builds the queue here, without arguments
        self.queue.queue_arguments = dict(self.queue_arguments)

    def _database_url(self) -> str | None:
        """The URL of the service's :class:`Database` engine, as ``shared.consumer`` keys the
        cursors it knows."""
        if self._database is None:
            for dependency in self.container.dependencies:
                if isinstance(dependency, Database) and dependency.engine is not None:
                    self._database = str(dependency.engine.url)
                    break
        return self._database

    def handle_message(self, body: Any, message: Any) -> None:
        database = self._database_url()
        if isinstance(body, Mapping) and database is not None:
            ahead = ahead_of_known_cursor(database, self.consumer, body)
            if ahead is not None and ahead <= 0:
                self.queue_consumer.ack_message(message)
                return
        super().handle_message(body, message)


def consumer_event_handler(source_service: str, event_type: str, consumer: str, **kwargs):
    """Decorator: ``@consumer_event_handler("customers", "customer.registered", CONSUMER)``."""
    return ConsumerEventHandler.decorator(source_service, event_type, consumer, **kwargs)


def handler_name(source: str, event_type: str) -> str:
    """The method (and so the queue) name of one subscription."""
    return f"on_{source}_{event_type.replace('.', '_')}"


def _handler(source: str, event_type: str, target: str, consumer: str | None) -> Callable[..., Any]:
    def handle(self: Any, envelope: dict[str, Any]) -> None:
        getattr(self, target)(envelope)

    handle.__name__ = handle.__qualname__ = handler_name(source, event_type)
    handle.__doc__ = f"Hands {source}' {event_type} events to ``{target}``."
    if consumer is not None:
        return consumer_event_handler(source, event_type, consumer)(handle)
    return durable_event_handler(source, event_type)(handle)


def subscribe(
    subscriptions: Mapping[str, Sequence[str]], target: str, consumer: str | None = None
) -> Callable[[T], T]:
    """Class decorator: an event handler per subscribed event type, calling ``target``
    (with ``consumer``, the ``shared.consumer`` name ``target`` applies events as: a
    :class:`ConsumerEventHandler`, which acknowledges what that consumer applied already)."""

    def decorate(cls: T) -> T:
        for source, types in subscriptions.items():
            for event_type in types:
                name = handler_name(source, event_type)
                if name in vars(cls):
                    raise TypeError(f"{cls.__name__}.{name} is already defined")
                setattr(cls, name, _handler(source, event_type, target, consumer))
        return cls

    return decorate
