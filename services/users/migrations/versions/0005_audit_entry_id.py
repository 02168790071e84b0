"""Audit entries keyed by the gateway: ``entry_id`` makes recording one idempotent, so the
gateway can retry an entry the users service did not confirm (a broker outage) without
writing it twice.

Revision ID: 0005
Revises: 0004
"""

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute("ALTER TABLE audit_log ADD COLUMN entry_id uuid")
    op.execute("CREATE UNIQUE INDEX audit_log_entry_id_key ON audit_log (entry_id)")


def downgrade() -> None:
    op.execute("DROP INDEX audit_log_entry_id_key")
    op.execute("ALTER TABLE audit_log DROP COLUMN entry_id")
