"""Erasure: ``users.erased_at``, when the user's personal data was erased (``user.erased``).
The read model then holds placeholders instead of their name, e-mail address and phone
number; a rebuild from the log gives the same (their sealed values open as null).

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE users ADD COLUMN erased_at timestamptz")


def downgrade() -> None:
    op.execute("ALTER TABLE users DROP COLUMN erased_at")
