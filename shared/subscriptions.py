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
With ``batched=True`` a handler takes a list of envelopes: under load, the deliveries of the
last ``CMS_CONSUMER_BATCH_MS`` are applied together (``shared.consumer.apply_all_once``), so a
busy consumer pays one worker and one transaction per batch instead of one per event.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any, TypeVar

import eventlet
from eventlet.event import Event
from nameko.events import SERVICE_POOL, EventHandler
from nameko.exceptions import ContainerBeingKilled

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
    that worker (and the message, unacknowledged) meanwhile.

    With ``batched=True`` the method takes a *list* of envelopes. A delivery to an idle
    handler starts a worker at once; under load, a handler starts a batch at most once per
    ``batch_interval`` (:data:`BATCH_INTERVAL`, ``CMS_CONSUMER_BATCH_MS``), and each batch
    takes the deliveries that arrived since, unacknowledged meanwhile (at most
    :data:`MAX_BATCH`, and never more than the channel's prefetch, ``CMS_MAX_WORKERS``). A
    busy consumer so pays for its worker, its transaction and its commit once per batch
    instead of once per event, for an event applied up to ``batch_interval`` later. A batch
    that is already as large as the prefetch allows starts without waiting for the rest of
    the interval: RabbitMQ sends no more until it is acknowledged, so waiting would only cap
    the handler at a prefetch per interval (100 events/s; docs/performance.md). One
    worker per handler runs at a time; every delivery of a batch is acknowledged after it,
    or requeued with the rest when it fails. A redelivered message is applied alone, so one
    that can never be applied holds up no other."""

    def __init__(self, source_service: str, event_type: str, batched: bool = False, **kwargs):
        kwargs.setdefault("handler_type", SERVICE_POOL)
        kwargs.setdefault("reliable_delivery", True)
        kwargs.setdefault("requeue_on_error", True)
        super().__init__(source_service, event_type, **kwargs)
        self.batched = batched
        self._waiting: list[tuple[Any, Any]] = []
        self._applying = False
        self._last_start = 0.0
        self._full: Event | None = None
        self.batch_interval = BATCH_INTERVAL

    def setup(self) -> None:
        super().setup()
        configured = self.container.config.get("CONSUMER_BATCH_INTERVAL")
        if configured is not None:
            self.batch_interval = float(configured)

    def handle_message(self, body: Any, message: Any) -> None:
        if not self.batched:
            super().handle_message(body, message)
            return
        self._waiting.append((body, message))
        if not self._applying:
            self._applying = True
            self._apply_waiting_in_turn()
        elif self._full is not None and len(self._waiting) >= self._capacity:
            if not self._full.ready():
                self._full.send()  # as many as the channel will deliver: start the batch now

    @property
    def _capacity(self) -> int:
        """The most deliveries that can wait at once: the channel's prefetch (nameko's
        ``max_workers``), at most :data:`MAX_BATCH`."""
        return min(self.container.max_workers, MAX_BATCH)

    def _apply_waiting_in_turn(self) -> None:
        """The next batch, now if the last one started ``batch_interval`` ago or more or if
        it is full already, else once that much has passed or it fills up (meanwhile more
        deliveries join it)."""
        delay = self._last_start + self.batch_interval - time.monotonic()
        if delay <= 0 or len(self._waiting) >= self._capacity:
            self._apply_waiting()
            return
        self._full = Event()
        try:
            self.container.spawn_managed_thread(partial(self._apply_waiting, delay))
        except ContainerBeingKilled:  # the broker takes back what is waiting
            self._applying = False

    def _apply_waiting(self, delay: float = 0.0) -> None:
        """Start a worker for the next batch of waiting deliveries (in one green thread at a
        time: ``_applying`` stays set from the first delivery until the batch's result is
        handled)."""
        if delay > 0 and self._full is not None:
            with eventlet.Timeout(delay, False):
                self._full.wait()
        self._full = None
        batch = _next_batch(self._waiting)
        self._applying = bool(batch)
        if not batch:
            return
        self._last_start = time.monotonic()
        messages = [message for _, message in batch]
        try:
            self.container.spawn_worker(
                self,
                ([body for body, _ in batch],),
                {},
                context_data=self.unpack_message_headers(messages[0]),
                handle_result=partial(self._handle_batch_result, messages),
            )
        except ContainerBeingKilled:
            for message in messages:
                self.queue_consumer.requeue_message(message)
            self._applying = False

    def _handle_batch_result(self, messages: list, worker_ctx, result=None, exc_info=None):
        if exc_info is not None and self.requeue_on_error and any(map(_redelivered, messages)):
            eventlet.sleep(RETRY_PAUSE)
        for message in messages:
            EventHandler.handle_message_processed(self, message, result, exc_info)
        if not self._waiting:
            self._applying = False
            return result, exc_info
        # Not from here: this worker still holds its pool slot and its dependencies (a
        # database session, maybe a lock in it), and the next worker may have to wait for
        # a free slot.
        try:
            self.container.spawn_managed_thread(self._apply_waiting_in_turn)
        except ContainerBeingKilled:  # the broker takes back what is waiting
            self._applying = False
        return result, exc_info

    def handle_message_processed(self, message: Any, result: Any = None, exc_info: Any = None):
        if exc_info is not None and self.requeue_on_error and _redelivered(message):
            eventlet.sleep(RETRY_PAUSE)
        super().handle_message_processed(message, result, exc_info)


#: Seconds between the starts of two batches of one ``batched`` handler, unless the nameko
#: config says otherwise (``CONSUMER_BATCH_INTERVAL``, from ``CMS_CONSUMER_BATCH_MS``).
BATCH_INTERVAL = 0.1

#: The most deliveries one batch of a ``batched`` handler takes (the channel's prefetch,
#: ``CMS_MAX_WORKERS``, is usually the tighter bound).
MAX_BATCH = 100


def _redelivered(message: Any) -> bool:
    return bool((getattr(message, "delivery_info", None) or {}).get("redelivered"))


def _next_batch(waiting: list[tuple[Any, Any]]) -> list[tuple[Any, Any]]:
    """Take the next batch off ``waiting``: a redelivered message alone, else the deliveries
    before the next redelivered one, at most :data:`MAX_BATCH`."""
    if not waiting:
        return []
    if _redelivered(waiting[0][1]):
        return [waiting.pop(0)]
    size = 1
    while size < min(len(waiting), MAX_BATCH) and not _redelivered(waiting[size][1]):
        size += 1
    batch = waiting[:size]
    del waiting[:size]
    return batch


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


def _handler(
    source: str, event_type: str, target: str, consumer: str | None, batched: bool
) -> Callable[..., Any]:
    def handle(self: Any, envelope: Any) -> None:
        getattr(self, target)(envelope)

    handle.__name__ = handle.__qualname__ = handler_name(source, event_type)
    handle.__doc__ = f"Hands {source}' {event_type} events to ``{target}``."
    if consumer is not None:
        return consumer_event_handler(source, event_type, consumer, batched=batched)(handle)
    return durable_event_handler(source, event_type, batched=batched)(handle)


def subscribe(
    subscriptions: Mapping[str, Sequence[str]],
    target: str,
    consumer: str | None = None,
    batched: bool = False,
) -> Callable[[T], T]:
    """Class decorator: an event handler per subscribed event type, calling ``target``
    (with ``consumer``, the ``shared.consumer`` name ``target`` applies events as: a
    :class:`ConsumerEventHandler`, which acknowledges what that consumer applied already).
    With ``batched``, ``target`` takes a list of envelopes (see :class:`RetryingEventHandler`)
    and applies them together (``shared.consumer.apply_all_once``)."""

    def decorate(cls: T) -> T:
        for source, types in subscriptions.items():
            for event_type in types:
                name = handler_name(source, event_type)
                if name in vars(cls):
                    raise TypeError(f"{cls.__name__}.{name} is already defined")
                setattr(cls, name, _handler(source, event_type, target, consumer, batched))
        return cls

    return decorate
