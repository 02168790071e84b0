"""Webhook endpoints, one delivery per (endpoint, event), and every delivery attempt.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DDL = (
    """
    CREATE TABLE endpoints (
        id uuid PRIMARY KEY,
        url text NOT NULL,
        description text NOT NULL DEFAULT '',
        event_types text[] NOT NULL,
        fields text[],
        secret text NOT NULL,
        active boolean NOT NULL DEFAULT true,
        paused_at timestamptz,
        paused_reason text,
        consecutive_failures integer NOT NULL DEFAULT 0,
        version integer NOT NULL DEFAULT 1,
        created_by text,
        created_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE deliveries (
        id uuid PRIMARY KEY,
        endpoint_id uuid NOT NULL REFERENCES endpoints (id) ON DELETE CASCADE,
        event_id uuid NOT NULL,
        source text NOT NULL,
        position bigint NOT NULL,
        stream_id text NOT NULL,
        event_type text NOT NULL,
        envelope jsonb NOT NULL,
        status text NOT NULL DEFAULT 'pending'
            CHECK (status IN ('pending', 'delivered', 'failed')),
        attempts integer NOT NULL DEFAULT 0,
        next_attempt_at timestamptz NOT NULL DEFAULT now(),
        lease_until timestamptz,
        first_attempt_at timestamptz,
        last_attempt_at timestamptz,
        last_status_code integer,
        last_error text,
        delivered_at timestamptz,
        created_at timestamptz NOT NULL DEFAULT now(),
        CONSTRAINT deliveries_once UNIQUE (endpoint_id, event_id)
    )
    """,
    """CREATE INDEX deliveries_due_idx ON deliveries (next_attempt_at)
       WHERE status = 'pending'""",
    """CREATE INDEX deliveries_stream_idx ON deliveries (endpoint_id, source, stream_id, position)
       WHERE status = 'pending'""",
    "CREATE INDEX deliveries_endpoint_idx ON deliveries (endpoint_id, created_at DESC, id)",
    """
    CREATE TABLE attempts (
        id bigserial PRIMARY KEY,
        delivery_id uuid NOT NULL REFERENCES deliveries (id) ON DELETE CASCADE,
        attempted_at timestamptz NOT NULL DEFAULT now(),
        status_code integer,
        error text,
        duration_ms integer NOT NULL,
        resent boolean NOT NULL DEFAULT false
    )
    """,
    "CREATE INDEX attempts_delivery_idx ON attempts (delivery_id, id)",
)


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    for table in ("attempts", "deliveries", "endpoints"):
        op.execute(f"DROP TABLE {table}")
