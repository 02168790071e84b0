"""Users read models, credentials, sessions, API keys, client rate limits and the audit log.

Two kinds of tables live here:
- read models, rebuilt from ``events`` at will (``services.users.projections.rebuild``):
  ``users``, ``api_keys``, ``security_settings``;
- private state that events deliberately never carry (secrets, and bookkeeping too frequent to
  be events): ``user_credentials``, ``user_totp``, ``recovery_codes``, ``sessions``,
  ``refresh_tokens``, ``api_key_secrets``, ``client_attempts``; plus ``audit_log``, an
  append-only journal of its own.

Revision ID: 0002
Revises: 0001
"""

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

DDL = (
    # -- read models -------------------------------------------------------------------------
    """
    CREATE TABLE users (
        id uuid PRIMARY KEY,
        email text NOT NULL,
        name text NOT NULL,
        phone text,
        language text NOT NULL,
        role text NOT NULL,
        active boolean NOT NULL,
        mfa_enabled boolean NOT NULL DEFAULT false,
        created_at timestamptz NOT NULL,
        updated_at timestamptz NOT NULL,
        last_login_at timestamptz,
        locked_until timestamptz,
        version integer NOT NULL
    )
    """,
    "CREATE UNIQUE INDEX users_email_key ON users (lower(email))",
    "CREATE INDEX users_created_idx ON users (created_at, id)",
    "CREATE INDEX users_role_active_idx ON users (role, active)",
    """
    CREATE TABLE api_keys (
        id uuid PRIMARY KEY,
        name text NOT NULL,
        role text NOT NULL,
        prefix text NOT NULL,
        created_at timestamptz NOT NULL,
        created_by text,
        revoked_at timestamptz,
        revoked_by text,
        version integer NOT NULL
    )
    """,
    "CREATE INDEX api_keys_created_idx ON api_keys (created_at DESC, id DESC)",
    """
    CREATE TABLE security_settings (
        key text PRIMARY KEY,
        value jsonb NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    # -- private state (never in events) -----------------------------------------------------
    """
    CREATE TABLE user_credentials (
        user_id uuid PRIMARY KEY,
        password_hash text NOT NULL,
        updated_at timestamptz NOT NULL
    )
    """,
    """
    CREATE TABLE user_totp (
        user_id uuid PRIMARY KEY,
        secret text NOT NULL,
        created_at timestamptz NOT NULL,
        confirmed_at timestamptz,
        last_used_step bigint
    )
    """,
    """
    CREATE TABLE recovery_codes (
        user_id uuid NOT NULL,
        code_hash text NOT NULL,
        created_at timestamptz NOT NULL,
        used_at timestamptz,
        PRIMARY KEY (user_id, code_hash)
    )
    """,
    """
    CREATE TABLE sessions (
        id uuid PRIMARY KEY,
        user_id uuid NOT NULL,
        created_at timestamptz NOT NULL,
        last_refreshed_at timestamptz,
        revoked_at timestamptz,
        revoked_reason text,
        client_ip text,
        user_agent text
    )
    """,
    "CREATE INDEX sessions_user_live_idx ON sessions (user_id) WHERE revoked_at IS NULL",
    """
    CREATE TABLE refresh_tokens (
        token_hash text PRIMARY KEY,
        session_id uuid NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
        issued_at timestamptz NOT NULL,
        expires_at timestamptz NOT NULL,
        used_at timestamptz
    )
    """,
    "CREATE INDEX refresh_tokens_session_idx ON refresh_tokens (session_id)",
    "CREATE INDEX refresh_tokens_expires_idx ON refresh_tokens (expires_at)",
    """
    CREATE TABLE api_key_secrets (
        api_key_id uuid PRIMARY KEY,
        key_hash text NOT NULL UNIQUE,
        last_used_at timestamptz
    )
    """,
    """
    CREATE TABLE client_attempts (
        id bigserial PRIMARY KEY,
        bucket text NOT NULL,
        client text NOT NULL,
        attempted_at timestamptz NOT NULL
    )
    """,
    "CREATE INDEX client_attempts_lookup_idx ON client_attempts (bucket, client, attempted_at)",
    "CREATE INDEX client_attempts_age_idx ON client_attempts (attempted_at)",
    # -- audit log: append-only --------------------------------------------------------------
    """
    CREATE TABLE audit_log (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL,
        actor_id text,
        actor_kind text,
        actor_role text,
        action text NOT NULL,
        method text,
        path text,
        resource_type text,
        resource_id text,
        status integer,
        ip text,
        request_id text,
        recorded_at timestamptz NOT NULL DEFAULT now()
    )
    """,
    "CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC)",
    "CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at DESC, id DESC)",
    "CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC, id DESC)",
    """CREATE INDEX audit_log_resource_idx
       ON audit_log (resource_type, resource_id, at DESC, id DESC)""",
    """
    CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION 'audit_log is append-only: % is not allowed', TG_OP;
    END;
    $$
    """,
    """CREATE TRIGGER audit_log_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_log
       FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
       FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
)


def upgrade() -> None:
    for statement in DDL:
        op.execute(statement)


def downgrade() -> None:
    for table in (
        "client_attempts",
        "api_key_secrets",
        "refresh_tokens",
        "sessions",
        "recovery_codes",
        "user_totp",
        "user_credentials",
        "security_settings",
        "api_keys",
        "users",
    ):
        op.execute(f"DROP TABLE IF EXISTS {table}")
    # audit_log is kept: like the event log it is never dropped.
