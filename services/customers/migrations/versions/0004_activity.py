"""Customer activity: the orders and payments of each customer, as the customers service learns
them from the orders and payments services' events (DESIGN §3), for the timeline and the
``has_orders`` filter.

A projection of other services' events, rebuilt by emptying it and catching up from position 0
of their ``read_events`` (``services.customers.activity.rebuild``).

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
)


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TABLE IF EXISTS customer_activity")
