"""A customer's segment may be cleared (the analytics service's ``segment.cleared``):
``customer_segments.segment`` is null then, and the row keeps the event's position so that an
older ``segment.changed`` delivered late does not bring the segment back.

Revision ID: 0006
Revises: 0005
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE customer_segments ALTER COLUMN segment DROP NOT NULL")


def downgrade() -> None:
    op.execute("DELETE FROM customer_segments WHERE segment IS NULL")
    op.execute("ALTER TABLE customer_segments ALTER COLUMN segment SET NOT NULL")
