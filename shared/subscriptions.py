"""Subscribing a service to other services' events, the nameko way (DESIGN §3).

``@subscribe({"orders": ("order.placed", …)}, "on_event")`` gives a service class one durable
``@event_handler`` per ``(source, event type)`` (named ``on_<source>_<type>``, so provisioning
declares and binds its queue before the first event), each handing the envelope to the class's
``on_event(envelope)``. A failure requeues the message (handlers must be idempotent:
``shared.consumer.apply_once``); a consumer also catches up through ``read_events``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from nameko.events import SERVICE_POOL, event_handler

T = TypeVar("T", bound=type)


def handler_name(source: str, event_type: str) -> str:
    """The method (and so the queue) name of one subscription."""
    return f"on_{source}_{event_type.replace('.', '_')}"


def _handler(source: str, event_type: str, target: str) -> Callable[..., Any]:
    def handle(self: Any, envelope: dict[str, Any]) -> None:
        getattr(self, target)(envelope)

    handle.__name__ = handle.__qualname__ = handler_name(source, event_type)
    handle.__doc__ = f"Hands {source}' {event_type} events to ``{target}``."
    return event_handler(
        source,
        event_type,
        handler_type=SERVICE_POOL,
        reliable_delivery=True,
        requeue_on_error=True,
    )(handle)


def subscribe(subscriptions: Mapping[str, Sequence[str]], target: str) -> Callable[[T], T]:
    """Class decorator: an event handler per subscribed event type, calling ``target``."""

    def decorate(cls: T) -> T:
        for source, types in subscriptions.items():
            for event_type in types:
                name = handler_name(source, event_type)
                if name in vars(cls):
                    raise TypeError(f"{cls.__name__}.{name} is already defined")
                setattr(cls, name, _handler(source, event_type, target))
        return cls

    return decorate
