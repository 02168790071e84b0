"""SQLAlchemy Core descriptions of the orders schema's tables (created by the migrations in
``migrations/versions``; unqualified because connections use the ``orders`` search path).

``products`` and ``orders`` are read models kept in the same transaction as the events they
come from; ``customers`` is the replica of the customers service's records (ids, status,
owner) fed by its events; ``order_imports`` is the state of historical imports.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()


def _ts(name: str, nullable: bool = True) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


products = Table(
    "products",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("sku", Text, nullable=False, unique=True),
    Column("name", Text, nullable=False),
    Column("category", Text),
    Column("brand", Text),
    Column("price", BigInteger, nullable=False),
    Column("currency", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("version", Integer, nullable=False),
    _ts("created_at", False),
    _ts("updated_at", False),
)

orders = Table(
    "orders",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("number", Text, nullable=False, unique=True),
    Column("customer_id", UUID(as_uuid=False), nullable=False),
    Column("currency", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("lines", JSONB, nullable=False),
    Column("product_ids", ARRAY(UUID(as_uuid=False)), nullable=False),
    Column("subtotal", BigInteger, nullable=False),
    Column("order_discount", BigInteger, nullable=False),
    Column("tax_rate", Integer, nullable=False),
    Column("tax", BigInteger, nullable=False),
    Column("total", BigInteger, nullable=False),
    Column("paid_amount", BigInteger, nullable=False),
    Column("ever_paid", Boolean, nullable=False),
    Column("source", Text, nullable=False),
    Column("external_id", Text, unique=True),
    Column("delivery_address", JSONB),  # sealed under the customer's key
    Column("notes", JSONB),  # sealed under the customer's key
    _ts("placed_at", False),
    _ts("created_at", False),
    _ts("updated_at", False),
    Column("version", Integer, nullable=False),
    Column("last_position", BigInteger, nullable=False),
)

customers = Table(
    "customers",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("status", Text, nullable=False),
    Column("status_version", Integer, nullable=False),
    Column("owner_id", Text),
    Column("owner_version", Integer, nullable=False),
    Column("merged_into", UUID(as_uuid=False)),
    Column("previous_status", Text),
    _ts("updated_at", False),
)

order_imports = Table(
    "order_imports",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("filename", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("columns", JSONB, nullable=False),
    Column("total_rows", Integer, nullable=False),
    Column("processed_rows", Integer, nullable=False),
    Column("last_row", Integer, nullable=False),
    Column("created", Integer, nullable=False),
    Column("skipped", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("rejections", JSONB, nullable=False),
    Column("actor_id", Text),
    Column("error", Text),
    _ts("started_at", False),
    _ts("updated_at", False),
    _ts("finished_at"),
)

READ_MODELS = (products, orders)
