"""A published segment may be cleared (``segment.cleared``): ``published_segments.segment`` is
null for a customer who had a segment and no longer has any; the row keeps the stream's
version for the next event.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE published_segments ALTER COLUMN segment DROP NOT NULL")


def downgrade() -> None:
    op.execute("DELETE FROM published_segments WHERE segment IS NULL")
    op.execute("ALTER TABLE published_segments ALTER COLUMN segment SET NOT NULL")
