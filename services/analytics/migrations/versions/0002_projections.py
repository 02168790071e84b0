"""Analytics projections: the fact tables folded from customers, orders and payments events,
the derived per-customer figures and RFM segments, freshness samples and rebuild runs
(services/analytics/tables.py).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from services.analytics.tables import SERVICE_DDL, projection_ddl

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    for statement in (*projection_ddl(), *SERVICE_DDL):
        op.execute(statement)


def downgrade() -> None:
    for table in (
        "rebuilds",
        "freshness",
        "customer_rfm",
        "customer_stats",
        "refunds",
        "payments",
        "order_payments",
        "order_lines",
        "orders",
        "customers",
    ):
        op.execute(f"DROP TABLE {table}")
