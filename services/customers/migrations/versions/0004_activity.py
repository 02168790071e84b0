"""What other services' events say about customers (DESIGN §3): their orders and payments
(``customer_activity``, from the orders and payments services, for the timeline and the
``has_orders`` filter) and their marketing segment (``customer_segments``, from the analytics
service, for the ``segment`` filter).

Projections of other services' events, rebuilt by emptying them and catching up from position
0 of those services' ``read_events`` (``services.customers.activity`` / ``segments``).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

DDL = (
    """
    CREATE TABLE customer_activity (
        event_id uuid PRIMARY KEY,
        customer_id uuid NOT NULL,
        source text NOT NULL,
        position bigint NOT NULL,
        type text NOT NULL,
        at timestamptz NOT NULL,
        order_id uuid,
        summary jsonb NOT NULL
    )
    """,
    "CREATE INDEX customer_activity_customer_at_idx ON customer_activity (customer_id, at, event_id)",
    "CREATE INDEX customer_activity_order_idx ON customer_activity (order_id)",
    """
    CREATE TABLE customer_segments (
        customer_id uuid PRIMARY KEY,
        segment text NOT NULL,
        scores jsonb NOT NULL,
        as_of timestamptz NOT NULL,
        position bigint NOT NULL
    )
    """,
    "CREATE INDEX customer_segments_segment_idx ON customer_segments (segment, customer_id)",
)


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS customer_segments")
    op.execute("DROP TABLE IF EXISTS customer_activity")
