"""One command's unit of work: the session it runs in, the time it happens at, the metadata its
events carry, and the one way to record events (seal personal data + append + fold into the
aggregate + project, in the same transaction).

The caller decides when to commit, so one transaction may hold one command (an RPC) or, for a
bulk import, one row's create/update/upsert with ``import_id`` in the metadata.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.engine import Connection, Row
from sqlalchemy.orm import Session

from services.customers import tables
from services.customers.domain import AttributeDefinition, Change, Customer, attribute_stream_id
from services.customers.events import ATTRIBUTE_STREAM, CUSTOMER_EVENTS, CUSTOMER_STREAM, registry
from services.customers.personal import CustomerVault, open_event, seal_payload
from services.customers.projections import (
    LOCK_SPACE,
    TAKE_WRITERS_LOCK,
    load_streams,
    project_merge,
    upsert_customer,
    upsert_definition,
)
from shared.errors import NotFound
from shared.events import RecordedEvent, utcnow
from shared.eventstore import EventStore


def event_metadata(context: Any, actor: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
    """Who caused the events and which request they belong to: the worker context's request
    and correlation ids (``shared.context``), else the request id the actor came with."""
    meta: dict[str, Any] = dict(context.event_metadata(actor, **extra)) if context else {}
    if actor:
        meta.setdefault("actor_id", actor.get("id"))
        meta.setdefault("actor_kind", actor.get("kind"))
        if actor.get("request_id") and "request_id" not in meta:
            meta["request_id"] = actor["request_id"]
            meta.setdefault("correlation_id", actor["request_id"])
    meta.update({key: value for key, value in extra.items() if value is not None})
    return meta


def not_found(customer_id: str) -> NotFound:
    return NotFound("customer not found", {"resource_type": "customer", "resource_id": customer_id})


class UnitOfWork:
    def __init__(
        self,
        session: Session,
        metadata: dict[str, Any] | None = None,
        now: datetime | None = None,
        writing: bool = False,
    ):
        """``writing``: the transaction holds the writers' lock already (a bulk import's
        batch takes it once for all its rows)."""
        self.session = session
        self.metadata = metadata or {}
        self.now = now or utcnow()
        self.store = EventStore(session)
        self._vault: CustomerVault | None = None
        self._writing = writing
        #: a bulk import's batch: it never waits for a customer row (``lock_rows``)
        self._bulk = writing

    @property
    def conn(self) -> Connection:
        """The transaction's connection; its first use takes the writers' lock (shared)."""
        conn = self.session.connection()
        if not self._writing:
            conn.execute(TAKE_WRITERS_LOCK)
            self._writing = True
        return conn

    @property
    def vault(self) -> CustomerVault:
        """Subject keys of this transaction (cached per transaction: a key created in a
        transaction that rolls back must not be used after it)."""
        if self._vault is None:
            self._vault = CustomerVault(self.session)
        return self._vault

    def commit(self) -> None:
        self.session.commit()
        self._vault = None
        self._writing = False

    def rollback(self) -> None:
        self.session.rollback()
        self._vault = None
        self._writing = False

    # -- events ------------------------------------------------------------------------------

    def record(
        self,
        stream_type: str,
        stream_id: str,
        changes: Sequence[Change],
        expected_version: int | None,
    ) -> list[RecordedEvent]:
        """Append the events of ``changes`` with their personal fields sealed."""
        if not changes:
            return []
        self.conn  # noqa: B018 - the writers' lock, before anything is appended
        events = []
        for event_type, payload in changes:
            version = registry.latest_version(event_type)
            sealed = seal_payload(self.vault, event_type, version, payload)
            events.append(
                registry.new_event(event_type, sealed, version=version, occurred_at=self.now)
            )
        return self.store.append(stream_type, stream_id, events, expected_version, self.metadata)

    def record_customer(self, customer: Customer, changes: Sequence[Change]) -> None:
        """Append, fold the recorded events (opened, as a rebuild reads them) into
        ``customer``, and write its read-model row."""
        recorded = self.record(CUSTOMER_STREAM, customer.id, changes, customer.version)
        for event in recorded:
            opened = open_event(self.vault, event)
            customer.apply(opened.type, opened.payload, opened.occurred_at)
            project_merge(self.conn, event)
        if recorded:
            upsert_customer(self.conn, customer)

    def record_definition(self, definition: AttributeDefinition, changes: Sequence[Change]) -> None:
        recorded = self.record(
            ATTRIBUTE_STREAM, attribute_stream_id(definition.key), changes, definition.version
        )
        for event in recorded:
            definition.apply(event.type, event.payload, event.occurred_at)
        if recorded:
            upsert_definition(self.conn, definition)

    # -- loading and locking -----------------------------------------------------------------

    def lock_rows(self, customer_ids: Iterable[str]) -> dict[str, Row]:
        """The customers' read-model rows, locked for this transaction in id order (every
        command on a customer takes this lock first: they serialise and never deadlock).

        A transaction that holds the writers' lock already (``writing``: a bulk import's
        batch, which holds the event table) does not wait for a row at all: a command may
        hold that row and be waiting for the event table, and were the batch to wait even
        briefly (its ``lock_timeout``), PostgreSQL's deadlock check could end the command.
        It raises ``LockNotAvailable`` at once instead, and the batch is run again
        (``imports.retried``)."""
        ids = sorted(set(customer_ids))
        # not ``_writing``: reading ``self.conn`` sets that for every command
        rows = self.conn.execute(
            select(tables.customers)
            .where(tables.customers.c.id.in_(ids))
            .order_by(tables.customers.c.id)
            .with_for_update(nowait=self._bulk)
        ).all()
        return {str(row.id): row for row in rows}

    def load_customer(self, customer_id: str, until: datetime | None = None) -> Customer:
        """The aggregate folded from its opened events (up to ``until``, when given)."""
        events = load_streams(self.conn, [customer_id], CUSTOMER_EVENTS)
        if until is not None:
            events = [event for event in events if event.occurred_at <= until]
        return Customer.from_events(customer_id, [open_event(self.vault, e) for e in events])

    def load_definition(self, key: str) -> AttributeDefinition:
        stream = self.store.load_stream(attribute_stream_id(key))
        return AttributeDefinition.from_events(key, stream)

    def lock_definition(self, key: str) -> None:
        self.lock_keys([f"attribute:{key}"])

    def lock_keys(self, keys: Iterable[str]) -> None:
        """Transaction-scoped advisory locks on natural keys (contact keys, external ids,
        attribute keys), always in the same order: two commands claiming the same e-mail
        address serialise, and the second sees the first's customer."""
        numbers = [(zlib.crc32(key.encode()) - 2**31) or 1 for key in sorted(set(keys))]
        if numbers:  # one statement; the locks are taken in the order of the array
            self.conn.execute(
                text(
                    "SELECT count(pg_advisory_xact_lock(:space, key)) "
                    "FROM unnest(CAST(:keys AS integer[])) AS key"
                ),
                {"space": LOCK_SPACE, "keys": numbers},
            )
