"""The analytics projections' tables, defined once for the live generation and for the shadow
generation a rebuild fills (``suffix="__next"``) before swapping it in.

Fact tables (one row per source record, folded from its events in any order):

- ``customers``: status and merges (``merged_into``: the surviving customer of a merge).
- ``orders`` and ``order_lines``: the order as last placed/edited, its status.
- ``order_payments``: ``order.payment_applied`` events (revenue of imported orders).
- ``payments`` and ``refunds``.

Derived tables (recomputed from the facts by set-based SQL):

- ``customer_stats``: per customer and currency (purchases, total spent, first and last
  purchase, average order value, favourite categories and products).
- ``customer_rfm``: RFM scores and the named segment, per customer and currency.

Every column that an event sets carries the stream version that set it, so an event arriving
late never overwrites a newer one (see projector.py).
"""

from __future__ import annotations

#: The tables a rebuild regenerates, in creation order.
PROJECTION_TABLES: tuple[str, ...] = (
    "customers",
    "orders",
    "order_lines",
    "order_payments",
    "payments",
    "refunds",
    "customer_stats",
    "customer_rfm",
)


#: The customers merged into others, to find a survivor's absorbed orders by index.
MERGED_INDEX = (
    "CREATE INDEX customers{s}_merged_idx ON customers{s} (merged_into) "
    "WHERE merged_into IS NOT NULL"
)


def projection_ddl(suffix: str = "") -> list[str]:
    """CREATE statements of every projection table (and its named indexes) with ``suffix``."""
    s = suffix
    return [
        f"""
        CREATE TABLE customers{s} (
            customer_id text PRIMARY KEY,
            registered_at timestamptz,
            status text,
            status_version integer NOT NULL DEFAULT 0,
            merged_into text,
            merge_version integer NOT NULL DEFAULT 0
        )
        """,
        MERGED_INDEX.format(s=s),
        f"""
        CREATE TABLE orders{s} (
            order_id text PRIMARY KEY,
            customer_id text,
            currency text,
            number text,
            placed_at timestamptz,
            source text,
            total bigint,
            lines_version integer NOT NULL DEFAULT 0,
            status text,
            status_version integer NOT NULL DEFAULT 0
        )
        """,
        f"CREATE INDEX orders{s}_customer_idx ON orders{s} (customer_id)",
        f"CREATE INDEX orders{s}_placed_idx ON orders{s} (placed_at)",
        f"""
        CREATE TABLE order_lines{s} (
            order_id text NOT NULL,
            line_id text NOT NULL,
            product_id text,
            sku text,
            name text,
            category text,
            brand text,
            quantity integer NOT NULL,
            line_total bigint NOT NULL,
            PRIMARY KEY (order_id, line_id)
        )
        """,
        f"""
        CREATE TABLE order_payments{s} (
            event_id text PRIMARY KEY,
            order_id text NOT NULL,
            payment_id text,
            kind text NOT NULL,
            amount bigint NOT NULL,
            currency text NOT NULL
        )
        """,
        f"CREATE INDEX order_payments{s}_order_idx ON order_payments{s} (order_id)",
        f"""
        CREATE TABLE payments{s} (
            payment_id text PRIMARY KEY,
            order_id text,
            customer_id text,
            method text,
            provider text,
            amount bigint,
            currency text,
            status text,
            status_version integer NOT NULL DEFAULT 0,
            attempted_at timestamptz,
            captured_amount bigint,
            captured_at timestamptz
        )
        """,
        f"CREATE INDEX payments{s}_attempted_idx ON payments{s} (attempted_at)",
        f"CREATE INDEX payments{s}_captured_idx ON payments{s} (captured_at)",
        f"""
        CREATE TABLE refunds{s} (
            refund_id text PRIMARY KEY,
            payment_id text NOT NULL,
            order_id text,
            customer_id text,
            method text,
            amount bigint NOT NULL,
            currency text NOT NULL,
            refunded_at timestamptz NOT NULL
        )
        """,
        f"CREATE INDEX refunds{s}_at_idx ON refunds{s} (refunded_at)",
        f"""
        CREATE TABLE customer_stats{s} (
            customer_id text NOT NULL,
            currency text NOT NULL,
            orders integer NOT NULL,
            total_spent bigint NOT NULL,
            first_purchase timestamptz NOT NULL,
            last_purchase timestamptz NOT NULL,
            average_order_value bigint NOT NULL,
            favourite_categories text[] NOT NULL,
            favourite_products text[] NOT NULL,
            PRIMARY KEY (customer_id, currency)
        )
        """,
        f"CREATE INDEX customer_stats{s}_spent_idx ON customer_stats{s} (currency, total_spent)",
        f"""
        CREATE TABLE customer_rfm{s} (
            currency text NOT NULL,
            customer_id text NOT NULL,
            as_of date NOT NULL,
            recency_days integer NOT NULL,
            frequency integer NOT NULL,
            monetary bigint NOT NULL,
            r smallint NOT NULL,
            f smallint NOT NULL,
            m smallint NOT NULL,
            segment text NOT NULL,
            PRIMARY KEY (currency, customer_id)
        )
        """,
        f"""CREATE INDEX customer_rfm{s}_segment_idx
            ON customer_rfm{s} (currency, segment, customer_id)""",
    ]


def index_names(suffix: str = "") -> list[str]:
    """The named indexes and primary keys of the tables, to rename on a swap."""
    names = []
    for statement in projection_ddl(suffix):
        words = statement.split()
        if words[:2] == ["CREATE", "INDEX"]:
            names.append(words[2])
    names += [f"{table}{suffix}_pkey" for table in PROJECTION_TABLES]
    return names


#: Tables outside the rebuild: measurements and the rebuild runs themselves.
SERVICE_DDL: tuple[str, ...] = (
    """
    CREATE TABLE freshness (
        id bigserial PRIMARY KEY,
        applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
        source text NOT NULL,
        event_type text NOT NULL,
        path text NOT NULL,
        lag_ms double precision NOT NULL
    )
    """,
    "CREATE INDEX freshness_applied_idx ON freshness (applied_at)",
    """
    CREATE TABLE rebuilds (
        id uuid PRIMARY KEY,
        status text NOT NULL,
        requested_by text,
        started_at timestamptz NOT NULL DEFAULT now(),
        finished_at timestamptz,
        events bigint NOT NULL DEFAULT 0,
        total bigint NOT NULL DEFAULT 0,
        events_per_second double precision,
        error text
    )
    """,
)
