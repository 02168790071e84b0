"""Idempotency keys of placed orders (``Idempotency-Key`` on ``POST /orders``).

Revision ID: 0003
Revises: 0002
"""

from alembic import op

from shared.ddl import create_idempotency_keys

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_idempotency_keys(op.execute)


def downgrade() -> None:
    op.execute("DROP TABLE idempotency_keys")
