"""Payments read models, the order replica, idempotency keys, provider webhook records, and
the sandbox provider's own tables (its card vault, its ledger = settlement report, and the
webhooks it is to deliver).

Revision ID: 0002
Revises: 0001
"""

from alembic import op

from shared.ddl import create_idempotency_keys

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DDL = (
    # what payments knows about each order (fed by orders.events, or orders.get_order)
    """
    CREATE TABLE order_replica (
        order_id uuid PRIMARY KEY,
        customer_id uuid NOT NULL,
        currency char(3) NOT NULL,
        total bigint NOT NULL CHECK (total >= 0),
        status text NOT NULL,
        source_version integer NOT NULL DEFAULT 0,
        updated_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE payments (
        id uuid PRIMARY KEY,
        order_id uuid NOT NULL,
        customer_id uuid NOT NULL,
        method text NOT NULL,
        provider text NOT NULL,
        amount bigint NOT NULL CHECK (amount > 0),
        currency char(3) NOT NULL,
        status text NOT NULL,
        captured_amount bigint NOT NULL DEFAULT 0,
        refunded_amount bigint NOT NULL DEFAULT 0,
        capture_method text NOT NULL DEFAULT 'automatic',
        card_token text,
        card_brand text,
        card_last4 char(4),
        provider_reference text,
        next_action jsonb,
        failure_reason text,
        reference text,
        refunds jsonb NOT NULL DEFAULT '[]'::jsonb,
        expires_at timestamptz,
        created_by text,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL
    )
    """,
    "CREATE INDEX payments_order_idx ON payments (order_id, created_at)",
    "CREATE INDEX payments_pending_idx ON payments (expires_at) WHERE status = 'pending'",
    "CREATE UNIQUE INDEX payments_provider_ref_idx ON payments (provider, provider_reference)",
    # money movements CMS recorded (what reconciliation compares with the provider's report)
    """
    CREATE TABLE payment_movements (
        id bigserial PRIMARY KEY,
        payment_id uuid NOT NULL,
        kind text NOT NULL CHECK (kind IN ('capture', 'refund')),
        refund_id uuid,
        provider text NOT NULL,
        provider_reference text,
        method text NOT NULL,
        amount bigint NOT NULL,
        currency char(3) NOT NULL,
        occurred_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX payment_movements_day_idx ON payment_movements (occurred_at)",
    # a provider's webhook event applied once (by the provider's event id)
    """
    CREATE TABLE provider_webhook_events (
        provider text NOT NULL,
        event_id text NOT NULL,
        event_type text NOT NULL,
        payment_id uuid,
        outcome text NOT NULL,
        received_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (provider, event_id)
    )
    """,
    # -- the sandbox provider's own side (a simulation of an external processor) --------------
    """
    CREATE TABLE sandbox_cards (
        token text PRIMARY KEY,
        brand text NOT NULL,
        last4 char(4) NOT NULL,
        exp_month integer NOT NULL,
        exp_year integer NOT NULL,
        behaviour text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    """
    CREATE TABLE sandbox_ledger (
        reference text PRIMARY KEY,
        kind text NOT NULL CHECK (kind IN ('charge', 'refund')),
        charge_reference text,
        merchant_reference text NOT NULL,
        method text NOT NULL,
        amount bigint NOT NULL,
        currency char(3) NOT NULL,
        status text NOT NULL,
        failure_reason text,
        created_at timestamptz NOT NULL DEFAULT now(),
        settled_at timestamptz
    )
    """,
    "CREATE INDEX sandbox_ledger_settled_idx ON sandbox_ledger (settled_at)",
    """
    CREATE TABLE sandbox_webhooks (
        event_id text PRIMARY KEY,
        body text NOT NULL,
        deliver_after timestamptz NOT NULL,
        delivered_at timestamptz,
        attempts integer NOT NULL DEFAULT 0,
        last_error text,
        cancelled boolean NOT NULL DEFAULT false,
        charge_reference text NOT NULL,
        ledger_status text
    )
    """,
    """CREATE INDEX sandbox_webhooks_due_idx ON sandbox_webhooks (deliver_after)
       WHERE delivered_at IS NULL AND NOT cancelled""",
)


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)
    create_idempotency_keys(op.execute)


def downgrade() -> None:
    for table in (
        "sandbox_webhooks",
        "sandbox_ledger",
        "sandbox_cards",
        "provider_webhook_events",
        "idempotency_keys",
        "payment_movements",
        "payments",
        "order_replica",
    ):
        op.execute(f"DROP TABLE {table}")
