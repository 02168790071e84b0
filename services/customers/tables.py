"""SQLAlchemy Core descriptions of the customers schema's tables (created by the migrations in
``migrations/versions``; unqualified because connections use the ``customers`` search path).

The first three are read models, rebuilt from ``events`` at will (``projections.rebuild``),
except ``customers.order_count``, which the orders feed keeps (``activity``; a rebuild carries it
over).
``imports`` and ``import_rejections`` are the state of bulk imports (not rebuilt)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, DateTime, Integer, MetaData, Table, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

metadata = MetaData()


def _ts(name: str, nullable: bool = True) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


customers = Table(
    "customers",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("kind", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("company", Text),
    Column("emails", JSONB, nullable=False),
    Column("phones", JSONB, nullable=False),
    Column("addresses", JSONB, nullable=False),
    Column("preferred_channel", Text),
    Column("language", Text, nullable=False),
    Column("preferences", JSONB, nullable=False),
    Column("tags", ARRAY(Text), nullable=False),
    Column("attributes", JSONB, nullable=False),
    Column("owner_id", Text),
    Column("source", Text),
    Column("external_id", Text),
    Column("consents", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("merged_into", UUID(as_uuid=False)),
    Column("order_count", Integer, nullable=False),
    _ts("created_at", False),
    _ts("updated_at", False),
    _ts("erased_at"),
    Column("version", Integer, nullable=False),
    # search columns (services.customers.search)
    Column("search_tokens", ARRAY(Text), nullable=False),
    Column("emails_text", Text, nullable=False),
    Column("phones_text", Text, nullable=False),
    Column("contact_keys", ARRAY(Text), nullable=False),
)

merges = Table(
    "merges",
    metadata,
    Column("merge_id", UUID(as_uuid=False), primary_key=True),
    Column("target_id", UUID(as_uuid=False), nullable=False),
    Column("source_id", UUID(as_uuid=False), nullable=False),
    _ts("merged_at", False),
    Column("merged_by", Text),
    _ts("undone_at"),
    Column("undone_by", Text),
)

attribute_definitions = Table(
    "attribute_definitions",
    metadata,
    Column("key", Text, primary_key=True),
    Column("type", Text, nullable=False),
    Column("label", Text, nullable=False),
    Column("options", JSONB),
    Column("version", Integer, nullable=False),
    _ts("created_at", False),
    _ts("updated_at", False),
)

READ_MODELS = (customers, merges, attribute_definitions)

# -- what orders' and payments' events say about a customer (services.customers.activity) --

customer_activity = Table(
    "customer_activity",
    metadata,
    Column("event_id", UUID(as_uuid=False), primary_key=True),
    Column("customer_id", UUID(as_uuid=False), nullable=False),
    Column("source", Text, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("type", Text, nullable=False),
    _ts("at", False),
    Column("order_id", UUID(as_uuid=False)),
    Column("summary", JSONB, nullable=False),
    Column("actor_id", Text),
    Column("actor_kind", Text),
    Column("request_id", Text),
)

# -- bulk imports: state of the import process, not read models (services.customers.imports) --

imports = Table(
    "imports",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("filename", Text, nullable=False),
    Column("mode", Text, nullable=False),
    Column("match_on", Text, nullable=False),
    Column("columns", JSONB, nullable=False),
    Column("mapping", JSONB, nullable=False),
    Column("status", Text, nullable=False),
    Column("total_rows", Integer, nullable=False),
    Column("processed_rows", Integer, nullable=False),
    Column("last_row", Integer, nullable=False),
    Column("created", Integer, nullable=False),
    Column("updated", Integer, nullable=False),
    Column("unchanged", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("revert_conflicts", Integer),
    Column("actor_id", Text),
    Column("actor_role", Text),
    Column("error", Text),
    _ts("started_at", False),
    _ts("updated_at", False),
    _ts("finished_at"),
    _ts("reverted_at"),
    Column("reverted_by", Text),
)

import_rejections = Table(
    "import_rejections",
    metadata,
    Column("import_id", UUID(as_uuid=False), primary_key=True),
    Column("row_number", Integer, primary_key=True),
    Column("reasons", JSONB, nullable=False),
    Column("row_values", JSONB, nullable=False),
    _ts("rejected_at", False),
)

customer_segments = Table(
    "customer_segments",
    metadata,
    Column("customer_id", UUID(as_uuid=False), primary_key=True),
    Column("segment", Text),  # null: cleared (segment.cleared)
    Column("scores", JSONB, nullable=False),
    _ts("as_of", False),
    Column("position", BigInteger, nullable=False),
)
