"""RPC calls with a deadline.

nameko's RPC proxies wait for ever by default (DESIGN §4). Every call made through
:class:`Rpc` has a timeout; a service that does not answer in time, or has no consumer at all,
becomes :class:`ServiceUnavailable`, which the gateway answers as 503.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import Any

import eventlet
from nameko.exceptions import RemoteError, UnknownService
from nameko.extensions import DependencyProvider
from nameko.rpc import MethodProxy, ReplyListener
from nameko.rpc import Rpc as RpcEntrypoint

from shared.errors import ServiceUnavailable
from shared.outages import BROKER_OUTAGES

#: Errors a service raises when its database is gone or refuses for a while (SQLAlchemy and
#: psycopg2 names, as they cross RPC): the caller gets a 503, not an internal error.
DATABASE_OUTAGES = frozenset(
    {"OperationalError", "InterfaceError", "DisconnectionError", "InvalidatePoolError"}
)


class RpcClient:
    """Calls any service's RPC methods by name from inside a worker."""

    def __init__(self, worker_ctx, reply_listener: ReplyListener, timeout: float):
        self.worker_ctx = worker_ctx
        self.reply_listener = reply_listener
        self.timeout = timeout

    def call_async(self, service: str, method: str, /, *args: Any, **kwargs: Any):
        proxy = MethodProxy(self.worker_ctx, service, method, self.reply_listener)
        try:
            return proxy.call_async(*args, **kwargs)
        except UnknownService as exc:
            raise ServiceUnavailable(
                f"the {service} service is not running", {"service": service}
            ) from exc
        except BROKER_OUTAGES as exc:
            raise ServiceUnavailable(
                f"the message broker did not take the request for {service}: {exc}",
                {"service": service, "code": "broker_unavailable"},
            ) from exc

    def wait(self, reply, service: str, method: str, timeout: float | None = None) -> Any:
        timeout = self.timeout if timeout is None else timeout
        try:
            with eventlet.Timeout(timeout):
                return reply.result()
        except RemoteError as exc:
            if exc.exc_type in DATABASE_OUTAGES:
                raise ServiceUnavailable(
                    f"the {service} service cannot use its database right now; try again",
                    {"service": service},
                ) from None
            raise
        except eventlet.Timeout:
            self._forget(reply)
            raise ServiceUnavailable(
                f"the {service} service did not answer {method} within {timeout:g} s",
                {"service": service},
            ) from None

    def call(
        self, service: str, method: str, /, *args: Any, timeout: float | None = None, **kwargs: Any
    ) -> Any:
        reply = self.call_async(service, method, *args, **kwargs)
        return self.wait(reply, service, method, timeout)

    def read_events(
        self,
        source: str,
        after_position: int,
        limit: int,
        types: Sequence[str] | None = None,
        timeout: float | None = None,
        payload_fields: Sequence[str] | None = None,
    ) -> list[dict[str, Any]]:
        """A page of ``source``'s event envelopes for a catch-up, as ``read_events`` returns
        them, through ``read_events_json``: the source's database renders the page as JSON
        text and the source passes it on, so only this side decodes it. ``payload_fields``:
        only those top-level fields of each payload."""
        page = self.call(
            source,
            "read_events_json",
            after_position=after_position,
            limit=limit,
            types=list(types) if types else None,
            timeout=timeout,
            **({"payload_fields": list(payload_fields)} if payload_fields is not None else {}),
        )
        return json.loads(page)

    def _forget(self, reply) -> None:
        """Drop the reply event of a call we gave up on, so it does not pile up."""
        pending = self.reply_listener._reply_events
        for correlation_id, event in list(pending.items()):
            if event is reply.reply_event:
                pending.pop(correlation_id, None)

    def ping_all(self, services: Iterable[str], timeout: float | None = None) -> dict[str, Any]:
        """Ping several services at once; maps each to its answer or to the error text."""
        timeout = self.timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        replies: dict[str, Any] = {}
        results: dict[str, Any] = {}
        for service in services:
            try:
                replies[service] = self.call_async(service, "ping")
            except ServiceUnavailable as exc:
                results[service] = exc
        for service, reply in replies.items():
            try:
                remaining = max(0.01, deadline - time.monotonic())
                results[service] = self.wait(reply, service, "ping", remaining)
            except Exception as exc:  # noqa: BLE001 - reported per service
                results[service] = exc
        return results


class Rpc(DependencyProvider):
    """Injects an :class:`RpcClient` whose calls time out after ``timeout`` seconds
    (default: the ``RPC_TIMEOUT`` config key, else ``CMS_RPC_TIMEOUT``)."""

    reply_listener = ReplyListener()

    def __init__(self, timeout: float | None = None):
        self.timeout = timeout

    def setup(self) -> None:
        if self.timeout is None:
            from shared.config import settings

            self.timeout = float(self.container.config.get("RPC_TIMEOUT", settings().rpc_timeout))

    def get_dependency(self, worker_ctx) -> RpcClient:
        return RpcClient(worker_ctx, self.reply_listener, self.timeout)


def refuse_redelivered_requests() -> None:
    """Serve RPCs at most once: a request that RabbitMQ delivers again (its first consumer
    died before acknowledging it, e.g. a SIGKILLed process) may have been carried out already,
    and running a command twice would, say, place an order twice while the caller sees one.
    Such a request is answered with a 503 (``code: interrupted``) instead; the caller decides
    (a write with an Idempotency-Key can be retried safely). Called by ``shared.serve`` for
    every service process."""
    if getattr(RpcEntrypoint, "_cms_at_most_once", False):
        return
    original = RpcEntrypoint.handle_message

    def handle_message(self, body, message):
        if (getattr(message, "delivery_info", None) or {}).get("redelivered"):
            service = self.container.service_name
            raise ServiceUnavailable(
                f"the {service} service was interrupted while it had this request: it may or "
                "may not have been carried out; check before trying again",
                {"service": service, "code": "interrupted"},
            )
        return original(self, body, message)

    RpcEntrypoint.handle_message = handle_message
    RpcEntrypoint._cms_at_most_once = True
