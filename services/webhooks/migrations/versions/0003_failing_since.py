"""An endpoint's ``failing_since``: when it last started failing (NULL after a success). It
is paused when it has failed this long without one success, not after a count of attempts.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE endpoints ADD COLUMN failing_since timestamptz")
    # an endpoint failing now has failed since at least its oldest failing pending delivery
    op.execute(
        """
        UPDATE endpoints e SET failing_since = (
            SELECT min(d.first_attempt_at) FROM deliveries d
            WHERE d.endpoint_id = e.id AND d.status = 'pending' AND d.last_error IS NOT NULL)
        WHERE e.consecutive_failures > 0
        """
    )


def downgrade() -> None:
    op.execute("ALTER TABLE endpoints DROP COLUMN failing_since")
