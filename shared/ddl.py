"""DDL of the mechanism tables every service schema holds: the event log (which is also the
outbox), the relay's cursor, the idempotent consumer's records, and the per-subject keys
that seal personal data inside events (shared/sealing.py).

Called from each service's first migration, running as the service's own role with the
service's schema as search path.
"""

from __future__ import annotations

MECHANISM_DDL: tuple[str, ...] = (
    """
    CREATE TABLE events (
        global_position bigint PRIMARY KEY,
        event_id uuid NOT NULL UNIQUE,
        stream_type text NOT NULL,
        stream_id text NOT NULL,
        stream_version integer NOT NULL CHECK (stream_version > 0),
        event_type text NOT NULL,
        schema_version integer NOT NULL CHECK (schema_version > 0),
        payload jsonb NOT NULL,
        metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
        occurred_at timestamptz NOT NULL,
        recorded_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT events_stream_version_unique UNIQUE (stream_id, stream_version)
    )
    """,
    "CREATE SEQUENCE events_global_position_seq OWNED BY events.global_position",
    """ALTER TABLE events ALTER COLUMN global_position
       SET DEFAULT nextval('events_global_position_seq')""",
    "CREATE INDEX events_type_position_idx ON events (event_type, global_position)",
    """
    CREATE FUNCTION events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'events are append-only: % is not allowed', TG_OP;
    END;
    $$
    """,
    """CREATE TRIGGER events_no_update_or_delete BEFORE UPDATE OR DELETE ON events
       FOR EACH ROW EXECUTE FUNCTION events_append_only()""",
    """CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
       FOR EACH STATEMENT EXECUTE FUNCTION events_append_only()""",
    """
    CREATE TABLE outbox_cursor (
        relay text PRIMARY KEY,
        published_position bigint NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "INSERT INTO outbox_cursor (relay, published_position) VALUES ('amqp', 0)",
    """
    CREATE TABLE processed_events (
        consumer text NOT NULL,
        event_id uuid NOT NULL,
        source text NOT NULL,
        position bigint,
        processed_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, event_id)
    )
    """,
    """
    CREATE TABLE subject_keys (
        subject_id text PRIMARY KEY,
        key bytea,
        created_at timestamptz NOT NULL DEFAULT now(),
        destroyed_at timestamptz,
        CHECK ((key IS NULL) = (destroyed_at IS NOT NULL))
    )
    """,
    """
    CREATE TABLE consumer_positions (
        consumer text NOT NULL,
        source text NOT NULL,
        position bigint NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (consumer, source)
    )
    """,
)


def create_mechanism_tables(execute) -> None:
    """Create the tables above with ``execute`` (alembic's ``op.execute``, or a connection's)."""
    for statement in MECHANISM_DDL:
        execute(statement)


IDEMPOTENCY_DDL = (
    """
    CREATE TABLE idempotency_keys (
        principal text NOT NULL,
        key text NOT NULL,
        operation text NOT NULL,
        body_hash text NOT NULL,
        response jsonb NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (principal, key)
    )
    """,
    "CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at)",
)


def create_idempotency_keys(execute) -> None:
    """The ``idempotency_keys`` table of ``shared.idempotency``, in a migration of each service
    that takes Idempotency-Keys (payments 0002, orders 0003)."""
    for statement in IDEMPOTENCY_DDL:
        execute(statement)
