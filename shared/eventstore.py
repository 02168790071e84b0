"""The append-only event store kept in each service's own schema (DESIGN §2).

Appends take an ``EXCLUSIVE`` lock on the ``events`` table for the rest of the transaction,
the technique of the ``eventsourcing`` library's PostgreSQL recorder: global positions are
drawn only while the lock is held, so they become visible in the order they were assigned and
a reader paging by ``global_position`` can never skip an event whose transaction committed
late. Plain readers are not blocked (``EXCLUSIVE`` conflicts only with writers).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Integer,
    MetaData,
    Table,
    Text,
    func,
    insert,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from shared.errors import BadRequest, ConcurrencyError
from shared.events import NewEvent, RecordedEvent

metadata = MetaData()

#: Unqualified: each service's connections use its own schema as search path.
events_table = Table(
    "events",
    metadata,
    Column("global_position", BigInteger, primary_key=True),
    Column("event_id", UUID(as_uuid=True), nullable=False, unique=True),
    Column("stream_type", Text, nullable=False),
    Column("stream_id", Text, nullable=False),
    Column("stream_version", Integer, nullable=False),
    Column("event_type", Text, nullable=False),
    Column("schema_version", Integer, nullable=False),
    Column("payload", JSONB, nullable=False),
    Column("metadata", JSONB, nullable=False),
    Column("occurred_at", DateTime(timezone=True), nullable=False),
)

MAX_READ_LIMIT = 1000

#: Sent (inside the appending transaction, so only on commit) to wake the outbox relay. The
#: channel is per schema: channels are database-wide, and one service's commit must not wake
#: every other service's relay (that cost five empty polls per event; docs/performance.md).
NOTIFY_CHANNEL_PREFIX = "cms_events_"

#: The statement an append runs: the channel of the schema the connection writes to.
NOTIFY_SQL = "SELECT pg_notify('" + NOTIFY_CHANNEL_PREFIX + "' || current_schema(), '')"


#: An append's first round trip (docs/performance.md), four statements in one:
#: - the lock that makes positions follow commit order;
#: - the flush wait: whatever the transaction set before (a consumer's ``NO_FLUSH_WAIT``),
#:   an append commits only once its WAL is flushed, for a published event must never vanish;
#: - the relay's notification, which PostgreSQL delivers at commit and drops on rollback, so
#:   sending it before the rows are written changes nothing;
#: - the stream's current version (the last statement's result is what comes back).
_BEGIN_APPEND = text(
    "; ".join(
        (
            "LOCK TABLE events IN EXCLUSIVE MODE",
            "SET LOCAL synchronous_commit TO ON",
            NOTIFY_SQL,
            "SELECT coalesce(max(stream_version), 0) FROM events WHERE stream_id = :stream_id",
        )
    )
)

#: ``RecordedEvent.envelope`` rendered by PostgreSQL as JSON text (same keys, values and time
#: format), for the paths that only hand an event on: the outbox relay and page reads. They
#: then pass the text along instead of decoding the JSONB columns into Python objects and
#: encoding them again, which was most of the customers process's CPU after a bulk import
#: (docs/performance.md). ``:source`` is the service's name.
_ENVELOPE_JSON = """json_build_object(
    'event_id', event_id, 'type', event_type, 'schema_version', schema_version,
    'source', CAST(:source AS text), 'stream_type', stream_type, 'stream_id', stream_id,
    'stream_version', stream_version, 'position', global_position,
    'occurred_at', to_char(occurred_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS')
        || CASE WHEN extract(microseconds FROM occurred_at)::bigint % 1000000 = 0 THEN ''
           ELSE to_char(occurred_at AT TIME ZONE 'UTC', '.US') END || 'Z',
    'metadata', metadata, 'payload', {payload})::text"""

ENVELOPE_JSON = _ENVELOPE_JSON.format(payload="payload")

#: A payload cut down to the top-level fields a reader names (``payload_fields``).
PAYLOAD_SUBSET = (
    "(SELECT coalesce(jsonb_object_agg(key, value), '{}'::jsonb) "
    "FROM jsonb_each(payload) WHERE key = ANY(:payload_fields))"
)


def notify_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which ``schema``'s appends announce themselves."""
    return NOTIFY_CHANNEL_PREFIX + schema


_COLUMNS = (
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


def _recorded(row: Any) -> RecordedEvent:
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


class EventStore:
    """Append to and read from the ``events`` table through a session or connection.

    The store never commits: the caller commits the append together with whatever read
    models it updated, so state and events (which are the outbox) land atomically.
    """

    def __init__(self, bind: Session | Connection):
        self.bind = bind

    def _connection(self) -> Connection:
        return self.bind.connection() if isinstance(self.bind, Session) else self.bind

    def append(
        self,
        stream_type: str,
        stream_id: str,
        events: Sequence[NewEvent],
        expected_version: int | None,
        metadata: dict[str, Any] | None = None,
    ) -> list[RecordedEvent]:
        """Append ``events`` to a stream that must be at ``expected_version`` (0: new stream;
        None: wherever it is). Raises :class:`ConcurrencyError` when it is not."""
        if not events:
            return []
        conn = self._connection()
        current = conn.execute(_BEGIN_APPEND, {"stream_id": stream_id}).scalar_one()
        if expected_version is not None and current != expected_version:
            raise ConcurrencyError.for_stream(stream_id, expected_version, current)
        meta = dict(metadata or {})
        rows = [
            {
                "event_id": event.event_id,
                "stream_type": stream_type,
                "stream_id": stream_id,
                "stream_version": current + index,
                "event_type": event.type,
                "schema_version": event.schema_version,
                "payload": event.payload,
                "metadata": meta,
                "occurred_at": event.occurred_at,
            }
            for index, event in enumerate(events, start=1)
        ]
        result = conn.execute(
            insert(events_table).returning(*_COLUMNS, sort_by_parameter_order=True), rows
        )
        return [_recorded(row) for row in result]

    def load_stream(self, stream_id: str, after_version: int = 0) -> list[RecordedEvent]:
        """Every event of one stream after ``after_version``, in stream order."""
        rows = self._connection().execute(
            select(*_COLUMNS)
            .where(events_table.c.stream_id == stream_id)
            .where(events_table.c.stream_version > after_version)
            .order_by(events_table.c.stream_version)
        )
        return [_recorded(row) for row in rows]

    def stream_version(self, stream_id: str) -> int:
        return (
            self._connection()
            .execute(
                select(func.coalesce(func.max(events_table.c.stream_version), 0)).where(
                    events_table.c.stream_id == stream_id
                )
            )
            .scalar_one()
        )

    def read_events(
        self, after_position: int = 0, limit: int = 100, types: Sequence[str] | None = None
    ) -> list[RecordedEvent]:
        """Events after ``after_position`` in position order, at most ``limit`` of them."""
        self._page_filter(after_position, limit, types)
        query = (
            select(*_COLUMNS)
            .where(events_table.c.global_position > after_position)
            .order_by(events_table.c.global_position)
            .limit(limit)
        )
        if types:
            query = query.where(events_table.c.event_type.in_(list(types)))
        return [_recorded(row) for row in self._connection().execute(query)]

    def _page_filter(self, after_position: int, limit: int, types: Sequence[str] | None):
        if after_position < 0:
            raise BadRequest.for_fields({"after_position": ["Must be 0 or more."]})
        if not 1 <= limit <= MAX_READ_LIMIT:
            raise BadRequest.for_fields({"limit": [f"Must be between 1 and {MAX_READ_LIMIT}."]})
        where = "global_position > :after" + (" AND event_type = ANY(:types)" if types else "")
        return where, {"after": after_position, "limit": limit, "types": list(types or ())}

    def read_envelopes_json(
        self,
        source: str,
        after_position: int = 0,
        limit: int = 100,
        types: Sequence[str] | None = None,
        payload_fields: Sequence[str] | None = None,
    ) -> str:
        """What ``read_events`` returns, as envelopes of ``source``, rendered by PostgreSQL as
        one JSON array text. ``payload_fields``: only these top-level fields of each payload
        (a reader that needs an id or two of a large payload need not carry the rest)."""
        where, params = self._page_filter(after_position, limit, types)
        envelope = ENVELOPE_JSON
        if payload_fields is not None:
            envelope = _ENVELOPE_JSON.format(payload=PAYLOAD_SUBSET)
            params["payload_fields"] = list(payload_fields)
        return (
            self._connection()
            .execute(
                text(
                    # only constant SQL is formatted in: the values are bound
                    "SELECT '[' || coalesce(string_agg(envelope, ',' ORDER BY global_position), "  # noqa: S608
                    f"'') || ']' FROM (SELECT global_position, {envelope} AS envelope "
                    f"FROM events WHERE {where} ORDER BY global_position LIMIT :limit) page"
                ),
                {**params, "source": source},
            )
            .scalar_one()
        )

    def read_for_publishing(self, source: str, after_position: int, limit: int) -> list[Any]:
        """The outbox relay's page: each event's position, id, type, the request and
        correlation ids of its metadata, and its envelope as JSON text (``body``)."""
        return list(
            self._connection().execute(
                text(
                    "SELECT global_position, event_id, event_type, "  # noqa: S608 - constant SQL
                    "metadata->>'request_id' AS request_id, "
                    "metadata->>'correlation_id' AS correlation_id, "
                    f"{ENVELOPE_JSON} AS body FROM events WHERE global_position > :after "
                    "ORDER BY global_position LIMIT :limit"
                ),
                {"after": after_position, "limit": limit, "source": source},
            )
        )

    def last_position(self) -> int:
        return (
            self._connection()
            .execute(select(func.coalesce(func.max(events_table.c.global_position), 0)))
            .scalar_one()
        )
