"""The base every event-sourced CMS service is built on: its database session, its outbox
relay, and the RPCs every service answers (``ping``, ``read_events`` and
``read_events_json``)."""

from __future__ import annotations

import os
import socket
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate
from nameko.rpc import rpc

from shared.context import RequestContext
from shared.db import Database
from shared.errors import BadRequest
from shared.eventstore import MAX_READ_LIMIT, EventStore
from shared.outbox import OutboxRelay
from shared.schemas import as_instance
from shared.sealing import Vault, open_sealed_values


class PageRequest(Schema):
    after_position = fields.Integer(load_default=0, validate=validate.Range(min=0))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=MAX_READ_LIMIT))
    types = fields.List(fields.String(), load_default=None, allow_none=True)


class ReadEventsJsonRequest(PageRequest):
    payload_fields = fields.List(
        fields.String(validate=validate.Length(min=1, max=100)),
        load_default=None,
        allow_none=True,
        validate=validate.Length(max=100),
    )


class ReadEventsRequest(PageRequest):
    open_sealed = fields.Boolean(load_default=False)


def load_rpc_payload(schema: Schema | type[Schema], payload: dict[str, Any]) -> dict[str, Any]:
    """Validate an RPC's arguments; a bad one is a :class:`BadRequest` naming the field."""
    try:
        return as_instance(schema).load(payload)
    except ValidationError as exc:
        raise BadRequest.for_fields(exc.messages) from exc


class EventSourcedService:
    """Mixin for nameko service classes: ``class OrdersService(EventSourcedService)`` with
    ``name = "orders"`` gets a session on the ``orders`` schema, the outbox relay publishing
    to ``orders.events``, the caller's request context (``self.context``), and the ``ping``
    and ``read_events`` RPCs."""

    name: str
    db = Database()
    outbox = OutboxRelay()
    context = RequestContext()

    @rpc
    def ping(self) -> dict[str, Any]:
        """Answers when the service is up and its database reachable."""
        position = EventStore(self.db).last_position()
        return {
            "service": self.name,
            "status": "ok",
            "last_position": position,
            "process": f"{socket.gethostname()}:{os.getpid()}",  # which of N processes answered
        }

    @rpc
    def read_events(
        self,
        after_position: int = 0,
        limit: int = 100,
        types: list[str] | None = None,
        open_sealed: bool = False,
    ) -> list[dict[str, Any]]:
        """Events after ``after_position`` in commit order, as envelopes: the catch-up and
        rebuild feed for any projection. With ``open_sealed`` (for a caller entitled to the
        personal data), sealed values are opened, and those of an erased subject read
        ``{"$erased": {"subject": id}}``."""
        args = load_rpc_payload(
            ReadEventsRequest(),
            {
                "after_position": after_position,
                "limit": limit,
                "types": types,
                "open_sealed": open_sealed,
            },
        )
        opening = args.pop("open_sealed")
        events = EventStore(self.db).read_events(**args)
        envelopes = [event.envelope(self.name) for event in events]
        if opening:
            vault = Vault(self.db)
            envelopes = [
                {**envelope, "payload": open_sealed_values(vault, envelope["payload"])}
                for envelope in envelopes
            ]
            self.db.rollback()
        return envelopes

    @rpc
    def read_events_json(
        self,
        after_position: int = 0,
        limit: int = 100,
        types: list[str] | None = None,
        payload_fields: list[str] | None = None,
    ) -> str:
        """``read_events`` (sealed values stay sealed) as one JSON array text that the
        database renders and this service hands on without decoding it: the page read of
        catch-ups and rebuilds (``shared.rpc.RpcClient.read_events``). ``payload_fields``
        keeps only those top-level fields of each payload."""
        args = load_rpc_payload(
            ReadEventsJsonRequest(),
            {
                "after_position": after_position,
                "limit": limit,
                "types": types,
                "payload_fields": payload_fields,
            },
        )
        try:
            return EventStore(self.db).read_envelopes_json(self.name, **args)
        finally:
            self.db.rollback()
