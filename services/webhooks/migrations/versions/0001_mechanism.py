"""Event store, outbox cursor and consumer records of the webhooks schema.

Revision ID: 0001
Revises:
"""

from alembic import op

from shared.ddl import create_mechanism_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_mechanism_tables(op.execute)


def downgrade() -> None:
    raise NotImplementedError("the event log is never dropped")
