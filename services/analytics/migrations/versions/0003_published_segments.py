"""The segment each customer was last published in (``segment.changed`` events).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE TABLE published_segments (
            customer_id text PRIMARY KEY,
            segment text NOT NULL,
            version integer NOT NULL
        )
        """
    )


def downgrade() -> None:
    op.execute("DROP TABLE published_segments")
