"""Bulk imports: the state of each import process and the rows it rejected.

``imports`` holds one row per import (its options, the column mapping decided when it began,
its status and counters, updated with every batch in the batch's transaction). The customer
changes an import makes are ordinary events of the customers' streams with ``import_id`` (and
``import_row``) in their metadata; ``events_import_id_idx`` finds them again when the import is
reverted. Neither table is a read model: a rebuild leaves them alone.

``import_rejections`` keeps each rejected row's cells (personal data, in plain text) and the
reasons, for the import's report. Erasing a customer does not find them: they are deleted when
their import is reverted and, by the service's housekeeping, 30 days after they were written.

Revision ID: 0003
Revises: 0002
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

DDL = (
    """
    CREATE TABLE imports (
        id uuid PRIMARY KEY,
        filename text NOT NULL,
        mode text NOT NULL CHECK (mode IN ('create', 'update', 'upsert')),
        match_on text NOT NULL CHECK (match_on IN ('email', 'phone', 'external_id')),
        columns jsonb NOT NULL,
        mapping jsonb NOT NULL,
        status text NOT NULL
            CHECK (status IN ('running', 'completed', 'failed', 'reverted')),
        total_rows integer NOT NULL,
        processed_rows integer NOT NULL DEFAULT 0,
        last_row integer NOT NULL DEFAULT 0,
        created integer NOT NULL DEFAULT 0,
        updated integer NOT NULL DEFAULT 0,
        unchanged integer NOT NULL DEFAULT 0,
        rejected integer NOT NULL DEFAULT 0,
        revert_conflicts integer,
        actor_id text,
        actor_role text,
        error text,
        started_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        finished_at timestamptz,
        reverted_at timestamptz,
        reverted_by text
    )
    """,
    "CREATE INDEX imports_started_idx ON imports (started_at, id)",
    "CREATE INDEX imports_actor_started_idx ON imports (actor_id, started_at, id)",
    "CREATE INDEX imports_running_idx ON imports (updated_at) WHERE status = 'running'",
    """
    CREATE TABLE import_rejections (
        import_id uuid NOT NULL REFERENCES imports (id) ON DELETE CASCADE,
        row_number integer NOT NULL,
        reasons jsonb NOT NULL,
        row_values jsonb NOT NULL,
        rejected_at timestamptz NOT NULL,
        PRIMARY KEY (import_id, row_number)
    )
    """,
    "CREATE INDEX import_rejections_rejected_at_idx ON import_rejections (rejected_at)",
    """CREATE INDEX events_import_id_idx ON events ((metadata ->> 'import_id'), stream_id)
       WHERE metadata ? 'import_id'""",
)


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP INDEX IF EXISTS events_import_id_idx")
    for table in ("import_rejections", "imports"):
        op.execute(f"DROP TABLE IF EXISTS {table}")
