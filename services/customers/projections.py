"""Read models of the customers service, kept in the same transaction as each append and
rebuilt from the event log with :func:`rebuild`.

A ``customers`` row is a function of one stream: the aggregate folded from the stream's opened
events (:meth:`Customer.record`) plus its search columns (:func:`customer_row`). Commands
write the row of the aggregate they just changed; the rebuild folds every stream the same way,
so a rebuilt read model equals the live one. (An erased customer's sealed values open as None
and ``customer.erased`` sets the placeholders, live and rebuilt alike.)

``merges`` is folded event by event from the target's stream (ids only), and
``attribute_definitions`` from the ``attribute`` streams.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from sqlalchemy import Connection, delete, insert, select, text, update
from sqlalchemy.orm import Session

from services.customers import tables
from services.customers.domain import AttributeDefinition, Customer
from services.customers.events import (
    ATTRIBUTE_EVENTS,
    CUSTOMER_EVENTS,
    sealed_values,
)
from services.customers.personal import CustomerVault, open_event
from services.customers.search import contact_keys, emails_text, index_tokens, phones_text
from shared.events import RecordedEvent
from shared.eventstore import events_table
from shared.upsert import Upsert

log = logging.getLogger(__name__)

#: Advisory locks of the customers service are ``(LOCK_SPACE, n)`` pairs (the two-key form):
#: ``n = 0`` is the writers' lock, others lock natural keys (``UnitOfWork.lock_keys``).
LOCK_SPACE = zlib.crc32(b"cms.customers") - 2**31
#: Every writer (a command's ``UnitOfWork``, a seed batch) holds this lock shared for its
#: transaction; a rebuild takes it exclusively first. Commands lock rows, then append (the event
#: table's lock); a rebuild locks the whole read model and the event table: without one lock
#: that all take first, the two orders deadlock.
WRITERS_LOCK = 0
TAKE_WRITERS_LOCK = text("SELECT pg_advisory_xact_lock_shared(:space, :key)").bindparams(
    space=LOCK_SPACE, key=WRITERS_LOCK
)

REBUILD_BATCH = 500
#: ``order_count`` is the orders feed's: a new row starts at 0 and a write here keeps it.
_UPSERT_CUSTOMER = Upsert(tables.customers, ["id"], keep=["order_count"])
_UPSERT_DEFINITION = Upsert(tables.attribute_definitions, ["key"])

_EVENT_COLUMNS = (
    events_table.c.global_position,
    events_table.c.event_id,
    events_table.c.stream_type,
    events_table.c.stream_id,
    events_table.c.stream_version,
    events_table.c.event_type,
    events_table.c.schema_version,
    events_table.c.payload,
    events_table.c.metadata,
    events_table.c.occurred_at,
)


def recorded(row: Any) -> RecordedEvent:
    return RecordedEvent(
        global_position=row.global_position,
        event_id=row.event_id,
        stream_type=row.stream_type,
        stream_id=row.stream_id,
        stream_version=row.stream_version,
        type=row.event_type,
        schema_version=row.schema_version,
        payload=row.payload,
        metadata=row.metadata,
        occurred_at=row.occurred_at,
    )


def load_streams(
    conn: Connection, stream_ids: Sequence[str], types: Iterable[str] = CUSTOMER_EVENTS
) -> list[RecordedEvent]:
    """The (sealed) events of several streams, each in stream order."""
    rows = conn.execute(
        select(*_EVENT_COLUMNS)
        .where(events_table.c.stream_id.in_(list(stream_ids)))
        .where(events_table.c.event_type.in_(sorted(types)))
        .order_by(events_table.c.stream_id, events_table.c.stream_version)
    )
    return [recorded(row) for row in rows]


def subjects_of(events: Iterable[RecordedEvent]) -> set[str]:
    return {sealed["subject"] for event in events for sealed in sealed_values(event.payload)}


def merged_sources(events: Iterable[RecordedEvent]) -> set[str]:
    """The sources whose data these events absorbed (sealed under the sources' keys)."""
    return {
        str(event.payload["source_id"])
        for event in events
        if event.type == "customer.merged" and event.payload.get("absorbed")
    }


# -- customers ----------------------------------------------------------------------------------


def customer_row(customer: Customer) -> dict[str, Any]:
    """The read-model row of a customer (all but ``order_count``, which the orders feed
    keeps)."""
    row = customer.record()
    row.update(
        search_tokens=index_tokens(
            customer.name if not customer.erased else None, customer.company
        ),
        emails_text=emails_text(customer.emails),
        phones_text=phones_text(customer.phones),
        contact_keys=contact_keys(customer.emails, customer.phones),
    )
    return row


def upsert_customer(conn: Connection, customer: Customer) -> None:
    _UPSERT_CUSTOMER(conn, {**customer_row(customer), "order_count": 0})


def project_merge(conn: Connection, event: RecordedEvent) -> None:
    """Fold a merge event of a target's stream into ``merges`` (the source's copy of the same
    event is not needed: one row per merge)."""
    payload = event.payload
    if event.type not in ("customer.merged", "customer.merge_undone"):
        return
    if str(payload["customer_id"]) != str(payload["target_id"]):
        return
    actor = (event.metadata or {}).get("actor_id")
    if event.type == "customer.merged":
        conn.execute(
            insert(tables.merges).values(
                merge_id=str(payload["merge_id"]),
                target_id=str(payload["target_id"]),
                source_id=str(payload["source_id"]),
                merged_at=event.occurred_at,
                merged_by=actor,
            )
        )
    else:
        conn.execute(
            update(tables.merges)
            .where(tables.merges.c.merge_id == str(payload["merge_id"]))
            .values(undone_at=event.occurred_at, undone_by=actor)
        )


# -- attribute definitions --------------------------------------------------------------------


def upsert_definition(conn: Connection, definition: AttributeDefinition) -> None:
    _UPSERT_DEFINITION(conn, definition.record())


# -- rebuild ------------------------------------------------------------------------------------


def _stream_batches(conn: Connection, first_event: str) -> Iterator[list[str]]:
    """The ids of the streams that begin with ``first_event``, a batch at a time, in the order
    they began (an index range scan per batch, whatever the size of the log)."""
    last = 0
    while True:
        rows = conn.execute(
            select(events_table.c.global_position, events_table.c.stream_id)
            .where(events_table.c.event_type == first_event)
            .where(events_table.c.global_position > last)
            .order_by(events_table.c.global_position)
            .limit(REBUILD_BATCH)
        ).all()
        if not rows:
            return
        yield [row.stream_id for row in rows]
        last = rows[-1].global_position


def _group(events: Iterable[RecordedEvent]) -> dict[str, list[RecordedEvent]]:
    streams: dict[str, list[RecordedEvent]] = {}
    for event in events:
        streams.setdefault(event.stream_id, []).append(event)
    return streams


def rebuild(session: Session) -> int:
    """Empty the read models and replay every event into them, in one transaction. It takes
    the writers' lock exclusively (``uow.WRITERS_LOCK``: it waits for the commands in flight,
    the next ones wait for it), then the read models and the event table against any other
    writer; readers see the old rows until it commits. ``order_count`` is carried over.
    Returns the number of events replayed; the caller commits."""
    conn = session.connection()
    conn.execute(
        text("SELECT pg_advisory_xact_lock(:space, :key)"),
        {"space": LOCK_SPACE, "key": WRITERS_LOCK},
    )
    conn.execute(text("LOCK TABLE customers, merges, attribute_definitions IN EXCLUSIVE MODE"))
    conn.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
    conn.execute(
        text(
            "CREATE TEMPORARY TABLE rebuild_order_counts ON COMMIT DROP AS "
            "SELECT id, order_count FROM customers WHERE order_count <> 0"
        )
    )
    for table in tables.READ_MODELS:
        conn.execute(delete(table))
    replayed = 0
    for ids in _stream_batches(conn, "customer.registered"):
        events = load_streams(conn, ids)
        vault = CustomerVault(conn)
        vault.preload([*ids, *merged_sources(events)])
        rows = []
        for stream_id, stream in _group(events).items():
            opened = [open_event(vault, event) for event in stream]
            customer = Customer.from_events(stream_id, opened)
            if customer.exists:
                rows.append({**customer_row(customer), "order_count": 0})
            for event in stream:
                project_merge(conn, event)
        if rows:
            conn.execute(insert(tables.customers), rows)
        replayed += len(events)
    for ids in _stream_batches(conn, "attribute.defined"):
        events = load_streams(conn, ids, ATTRIBUTE_EVENTS)
        for stream in _group(events).values():
            definition = AttributeDefinition.from_events(stream[0].payload["key"], stream)
            upsert_definition(conn, definition)
        replayed += len(events)
    conn.execute(
        text(
            "UPDATE customers c SET order_count = o.order_count "
            "FROM rebuild_order_counts o WHERE o.id = c.id"
        )
    )
    log.info("rebuilt the customers read models from %d events", replayed)
    return replayed
