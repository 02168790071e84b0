"""Orders read models (products, orders), the customer replica and historical imports.

``products`` and ``orders`` are rebuilt from ``events`` at will; ``customers`` from the
customers service's ``read_events``.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DDL = (
    """
    CREATE TABLE products (
        id uuid PRIMARY KEY,
        sku text NOT NULL UNIQUE,
        name text NOT NULL,
        category text,
        brand text,
        price bigint NOT NULL CHECK (price >= 0),
        currency char(3) NOT NULL,
        active boolean NOT NULL,
        version integer NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX products_name_idx ON products (lower(name), id)",
    "CREATE INDEX products_category_idx ON products (category)",
    "CREATE SEQUENCE order_number_seq",
    """
    CREATE TABLE orders (
        id uuid PRIMARY KEY,
        number text NOT NULL UNIQUE,
        customer_id uuid NOT NULL,
        currency char(3) NOT NULL,
        status text NOT NULL,
        lines jsonb NOT NULL,
        product_ids uuid[] NOT NULL DEFAULT '{}',
        subtotal bigint NOT NULL,
        order_discount bigint NOT NULL,
        tax_rate integer NOT NULL,
        tax bigint NOT NULL,
        total bigint NOT NULL,
        paid_amount bigint NOT NULL,
        ever_paid boolean NOT NULL,
        source text NOT NULL,
        external_id text UNIQUE,
        delivery_address jsonb,
        notes jsonb,
        placed_at timestamptz NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        version integer NOT NULL,
        last_position bigint NOT NULL
    )
    """,
    "CREATE INDEX orders_placed_idx ON orders (placed_at DESC, id DESC)",
    "CREATE INDEX orders_customer_idx ON orders (customer_id, placed_at DESC, id DESC)",
    "CREATE INDEX orders_status_idx ON orders (status, placed_at DESC, id DESC)",
    "CREATE INDEX orders_total_idx ON orders (total)",
    "CREATE INDEX orders_products_idx ON orders USING gin (product_ids)",
    """
    CREATE TABLE customers (
        id uuid PRIMARY KEY,
        status text NOT NULL,
        status_version integer NOT NULL,
        owner_id text,
        owner_version integer NOT NULL,
        merged_into uuid,
        previous_status text,
        updated_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX customers_owner_idx ON customers (owner_id)",
    """
    CREATE TABLE order_imports (
        id uuid PRIMARY KEY,
        filename text NOT NULL,
        status text NOT NULL,
        columns jsonb NOT NULL,
        total_rows integer NOT NULL,
        processed_rows integer NOT NULL DEFAULT 0,
        last_row integer NOT NULL DEFAULT 0,
        created integer NOT NULL DEFAULT 0,
        skipped integer NOT NULL DEFAULT 0,
        rejected integer NOT NULL DEFAULT 0,
        rejections jsonb NOT NULL DEFAULT '[]'::jsonb,
        actor_id text,
        error text,
        started_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        finished_at timestamptz
    )
    """,
    "CREATE INDEX events_order_stream_idx ON events (stream_type, global_position)",
)


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    for table in ("order_imports", "customers", "orders", "products"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    op.execute("DROP SEQUENCE IF EXISTS order_number_seq")
    op.execute("DROP INDEX IF EXISTS events_order_stream_idx")
