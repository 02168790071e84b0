"""Who did what another service reports of a customer: the actor and request of each order and
payment event in ``customer_activity`` (from the event's metadata), so the timeline names who
placed an order or took a payment as it does for the customer's own events.

Rows written before keep nulls (the timeline then names no one); emptying the table and
catching up from position 0 fills them (``services.customers.activity``).

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        "ALTER TABLE customer_activity ADD COLUMN actor_id text, ADD COLUMN actor_kind text, "
        "ADD COLUMN request_id text"
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE customer_activity DROP COLUMN actor_id, DROP COLUMN actor_kind, "
        "DROP COLUMN request_id"
    )
