"""An index on the customers merged into others: the per-customer figures of a batch of events
find the orders of the customers merged into a survivor through it.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

from services.analytics.tables import MERGED_INDEX

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # a database made at 0002 since this index joined projection_ddl has it already
    op.execute(MERGED_INDEX.format(s="").replace("CREATE INDEX", "CREATE INDEX IF NOT EXISTS"))


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS customers_merged_idx")
