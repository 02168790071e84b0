"""Customers read models: the customer list with its search columns, merges, and attribute
definitions. All rebuilt from ``events`` at will (``python -m services.customers.rebuild``).

Search (DESIGN §5): ``search_tokens`` (CJK unigrams and bigrams, pinyin, words; computed in
Python) has a GIN index, so a two-character Chinese name is an index lookup; pg_trgm indexes
(from the ``extensions`` schema) serve partial Latin names, companies, e-mail addresses and
phone numbers of three characters or more. ``contact_keys`` (``email:<address>``,
``phone:<E.164>``) finds duplicates on create, and matches for imports.

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
    CREATE TABLE customers (
        id uuid PRIMARY KEY,
        kind text NOT NULL,
        name text NOT NULL,
        company text,
        emails jsonb NOT NULL DEFAULT '[]'::jsonb,
        phones jsonb NOT NULL DEFAULT '[]'::jsonb,
        addresses jsonb NOT NULL DEFAULT '[]'::jsonb,
        preferred_channel text,
        language text NOT NULL,
        preferences jsonb NOT NULL DEFAULT '{}'::jsonb,
        tags text[] NOT NULL DEFAULT '{}',
        attributes jsonb NOT NULL DEFAULT '{}'::jsonb,
        owner_id text,
        source text,
        external_id text,
        consents jsonb NOT NULL DEFAULT '{}'::jsonb,
        status text NOT NULL,
        merged_into uuid,
        order_count integer NOT NULL DEFAULT 0,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        erased_at timestamptz,
        version integer NOT NULL,
        search_tokens text[] NOT NULL DEFAULT '{}',
        emails_text text NOT NULL DEFAULT '',
        phones_text text NOT NULL DEFAULT '',
        contact_keys text[] NOT NULL DEFAULT '{}'
    )
    """,
    "CREATE INDEX customers_search_tokens_idx ON customers USING gin (search_tokens)",
    "CREATE INDEX customers_name_trgm_idx ON customers USING gin (lower(name) gin_trgm_ops)",
    """CREATE INDEX customers_company_trgm_idx
       ON customers USING gin (lower(company) gin_trgm_ops)""",
    "CREATE INDEX customers_emails_trgm_idx ON customers USING gin (emails_text gin_trgm_ops)",
    "CREATE INDEX customers_phones_trgm_idx ON customers USING gin (phones_text gin_trgm_ops)",
    "CREATE INDEX customers_contact_keys_idx ON customers USING gin (contact_keys)",
    "CREATE INDEX customers_tags_idx ON customers USING gin (tags)",
    "CREATE INDEX customers_consents_idx ON customers USING gin (consents jsonb_path_ops)",
    "CREATE UNIQUE INDEX customers_external_id_key ON customers (external_id)",
    "CREATE INDEX customers_created_idx ON customers (created_at, id)",
    "CREATE INDEX customers_status_created_idx ON customers (status, created_at, id)",
    "CREATE INDEX customers_status_updated_idx ON customers (status, updated_at, id)",
    "CREATE INDEX customers_status_name_idx ON customers (status, name, id)",
    "CREATE INDEX customers_owner_created_idx ON customers (owner_id, status, created_at, id)",
    "CREATE INDEX customers_merged_into_idx ON customers (merged_into) WHERE merged_into IS NOT NULL",
    """
    CREATE TABLE merges (
        merge_id uuid PRIMARY KEY,
        target_id uuid NOT NULL,
        source_id uuid NOT NULL,
        merged_at timestamptz NOT NULL,
        merged_by text,
        undone_at timestamptz,
        undone_by text
    )
    """,
    "CREATE INDEX merges_target_idx ON merges (target_id) WHERE undone_at IS NULL",
    "CREATE INDEX merges_source_idx ON merges (source_id)",
    """
    CREATE TABLE attribute_definitions (
        key text PRIMARY KEY,
        type text NOT NULL,
        label text NOT NULL,
        options jsonb,
        version integer NOT NULL,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
)


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    for table in ("attribute_definitions", "merges", "customers"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
