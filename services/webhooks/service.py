"""nameko entrypoints of the webhooks service: admin RPCs for endpoints and their delivery log,
a consumer of every other service's events, and the deliverer (services/webhooks/delivery.py).

It never slows the services whose events it delivers: it is a process of its own, reading
their events from the bus and through their ``read_events`` RPC.
"""

from __future__ import annotations

import logging
from typing import Any

from eventlet.semaphore import Semaphore
from nameko.dependency_providers import Config
from nameko.rpc import rpc
from nameko.timer import timer

from services.webhooks import config as webhook_config
from services.webhooks.delivery import Deliverer
from services.webhooks.endpoints import Endpoints, purge_delivered
from services.webhooks.ingest import CONSUMER, behind, ingest, ingest_run
from services.webhooks.schemas import DeliveryQuery, EndpointChanges, EndpointCreate
from shared.config import SERVICES
from shared.consumer import already_applied
from shared.errors import CmsError, Forbidden, ServiceUnavailable
from shared.rpc import Rpc
from shared.service import EventSourcedService, load_rpc_payload
from shared.subscriptions import consumer_event_handler

log = logging.getLogger(__name__)

NAME = "webhooks"
#: Every service whose events may be delivered.
SOURCES = tuple(service for service in SERVICES if service != NAME)
READ_TIMEOUT = 30.0
#: One catch-up per source at a time in this process.
_catching_up = {source: Semaphore() for source in SOURCES}
#: Set by a live message that found a catch-up of its source running: that catch-up reads
#: once more before it ends, so the message's event is not left for the periodic one.
_again = dict.fromkeys(SOURCES, False)
#: The events of those messages, by position: the running one takes them directly when
#: they follow its cursor (workers receive neighbouring events at the same moment), and
#: reads the source's log only for what is still missing.
_waiting: dict[str, dict[int, dict[str, Any]]] = {source: {} for source in SOURCES}
#: Beyond this many (a backlog), the running catch-up reads the log instead.
MAX_WAITING = 1000

#: Errors meant for the caller (``CmsError``) are expected: nameko logs them as warnings.
api = rpc(expected_exceptions=(CmsError,))


def _require_admin(actor: dict[str, Any]) -> None:
    if (actor or {}).get("role") != "admin":
        raise Forbidden("only admins manage webhooks", {"code": "admin_only"})


def _live_handler(source: str):
    def handle(self, envelopes: list[dict[str, Any]]) -> None:
        self.on_events(source, envelopes)

    handle.__name__ = handle.__qualname__ = f"on_{source}_events"
    handle.__doc__ = f"Every event of {source} ('#', in batches): catch up on them."
    return consumer_event_handler(source, "#", CONSUMER, batched=True)(handle)


class WebhooksService(EventSourcedService):
    """Delivers every service's events to the HTTPS endpoints admins register."""

    name = NAME
    rpc_client = Rpc()
    config = Config()
    deliverer = Deliverer()

    def _settings(self):
        return webhook_config.load(self.config)

    def _endpoints(self) -> Endpoints:
        return Endpoints(self.db, self._settings())

    # -- consuming -------------------------------------------------------------------------------

    def _fetch(self, source: str):
        def fetch(after: int, limit: int) -> list[dict[str, Any]]:
            return self.rpc_client.read_events(source, after, limit, timeout=READ_TIMEOUT)

        return fetch

    def on_events(self, source: str, envelopes: list[dict[str, Any]]) -> None:
        """Live messages (a batch): the ones whose events directly follow the consumer's
        cursor are taken as they are, a run of them in one transaction. Any other says only
        that ``source`` has something new: catch up on it. One catch-up per source runs at a
        time in this process; messages that find one running leave their events to it and
        ask it to look once more, and return at once (waiting would park every worker
        behind it, and the service would stop answering RPCs while a backlog arrives). If
        the source does not answer, the periodic catch-up will bring the events."""
        waiting = _waiting[source]
        for envelope in envelopes:
            position = int(envelope.get("position") or 0)
            if position and len(waiting) < MAX_WAITING:
                if not already_applied(self.db, CONSUMER, envelope):
                    waiting[position] = envelope
        _again[source] = True
        lock = _catching_up[source]
        if not lock.acquire(blocking=False):
            return
        created = 0
        try:
            while _again[source]:
                _again[source] = False
                taken = self._take_waiting(source)
                if taken is None:  # something is missing: read the log
                    waiting.clear()
                    taken = ingest(self.db, source, self._fetch(source))
                created += taken
        except ServiceUnavailable as exc:
            log.warning("webhooks could not catch up on %s now: %s", source, exc)
        finally:
            lock.release()
        if created:
            self.deliverer.wake()

    def _take_waiting(self, source: str) -> int | None:
        """Take the waiting events of ``source`` that follow the cursor one after another, a
        run at a time; None when one of them does not and the cursor is behind it (the
        caller reads the log instead)."""
        created = 0
        waiting = _waiting[source]
        while waiting:
            run = [waiting.pop(min(waiting))]
            while int(run[-1]["position"]) + 1 in waiting:
                run.append(waiting.pop(int(run[-1]["position"]) + 1))
            run = [envelope for envelope in run if not already_applied(self.db, CONSUMER, envelope)]
            if not run:
                continue
            taken = ingest_run(self.db, source, run)
            if taken is None:
                if behind(self.db, source, int(run[-1]["position"])):
                    return None
                continue  # another process took them
            created += taken
        return created

    @timer(interval=webhook_config.load().catch_up_interval, eager=True)
    def catch_up(self) -> None:
        """Catch up on every source (at start and every CATCH_UP_INTERVAL seconds): events the
        bus did not bring (a queue not bound yet, this service down) are delivered all the same."""
        created = 0
        for source in SOURCES:
            try:
                with _catching_up[source]:
                    created += ingest(self.db, source, self._fetch(source))
            except CmsError as exc:
                log.warning("webhooks could not catch up on %s: %s", source, exc)
        if created:
            self.deliverer.wake()

    @timer(interval=3600)
    def housekeeping(self) -> None:
        """Hourly: the delivery log forgets deliveries that succeeded ``LOG_DAYS`` ago."""
        purged = purge_delivered(self.db, self._settings().log_days)
        if purged:
            log.info("webhooks purged %d delivered deliveries from the log", purged)

    # -- endpoints -------------------------------------------------------------------------------

    @api
    def create_endpoint(self, actor, data) -> dict[str, Any]:
        _require_admin(actor)
        return self._endpoints().create(actor, load_rpc_payload(EndpointCreate(), data))

    @api
    def list_endpoints(self, actor) -> list[dict[str, Any]]:
        _require_admin(actor)
        return self._endpoints().list()

    @api
    def get_endpoint(self, actor, endpoint_id) -> dict[str, Any]:
        _require_admin(actor)
        return self._endpoints().get(endpoint_id)

    @api
    def update_endpoint(self, actor, endpoint_id, changes, expected_version=None) -> dict:
        _require_admin(actor)
        changes = load_rpc_payload(EndpointChanges(), changes)
        return self._endpoints().update(endpoint_id, changes, expected_version)

    @api
    def resume_endpoint(self, actor, endpoint_id) -> dict[str, Any]:
        _require_admin(actor)
        resumed = self._endpoints().resume(endpoint_id)
        self.deliverer.wake()
        return resumed

    @api
    def delete_endpoint(self, actor, endpoint_id) -> None:
        _require_admin(actor)
        self._endpoints().delete(endpoint_id)

    # -- the delivery log ------------------------------------------------------------------------

    @api
    def list_deliveries(self, actor, endpoint_id, **query) -> dict[str, Any]:
        _require_admin(actor)
        args = load_rpc_payload(DeliveryQuery(), query)
        return self._endpoints().deliveries(endpoint_id, **args)

    @api
    def get_delivery(self, actor, endpoint_id, delivery_id) -> dict[str, Any]:
        _require_admin(actor)
        return self._endpoints().delivery(endpoint_id, delivery_id)

    @api
    def resend_delivery(self, actor, endpoint_id, delivery_id) -> dict[str, Any]:
        _require_admin(actor)
        resent = self._endpoints().resend(endpoint_id, delivery_id)
        self.deliverer.wake()
        return resent


for _source in SOURCES:
    setattr(WebhooksService, f"on_{_source}_events", _live_handler(_source))
del _source
