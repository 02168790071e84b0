"""SQLAlchemy Core descriptions of the users schema's tables (created by the migrations in
``migrations/versions``; unqualified because connections use the ``users`` search path)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = MetaData()


def _ts(name: str, nullable: bool = True) -> Column:
    return Column(name, DateTime(timezone=True), nullable=nullable)


# -- read models (rebuilt from events) ----------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("email", Text, nullable=False),
    Column("name", Text, nullable=False),
    Column("phone", Text),
    Column("language", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("mfa_enabled", Boolean, nullable=False),
    _ts("created_at", False),
    _ts("updated_at", False),
    _ts("last_login_at"),
    _ts("locked_until"),
    Column("version", Integer, nullable=False),
    _ts("erased_at"),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("name", Text, nullable=False),
    Column("role", Text, nullable=False),
    Column("prefix", Text, nullable=False),
    _ts("created_at", False),
    Column("created_by", Text),
    _ts("revoked_at"),
    Column("revoked_by", Text),
    Column("version", Integer, nullable=False),
)

security_settings = Table(
    "security_settings",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", JSONB, nullable=False),
    _ts("updated_at", False),
)

READ_MODELS = (users, api_keys, security_settings)

# -- private state (never in events, not rebuilt) -----------------------------------------------

user_credentials = Table(
    "user_credentials",
    metadata,
    Column("user_id", UUID(as_uuid=False), primary_key=True),
    Column("password_hash", Text, nullable=False),
    _ts("updated_at", False),
)

user_totp = Table(
    "user_totp",
    metadata,
    Column("user_id", UUID(as_uuid=False), primary_key=True),
    # AES-GCM under a key derived from CMS_SECRET_KEY, bound to the user (totp.encrypt_secret)
    Column("secret_encrypted", LargeBinary, nullable=False),
    _ts("created_at", False),
    _ts("confirmed_at"),
    Column("last_used_step", BigInteger),
)

recovery_codes = Table(
    "recovery_codes",
    metadata,
    Column("user_id", UUID(as_uuid=False), primary_key=True),
    Column("code_hash", Text, primary_key=True),
    _ts("created_at", False),
    _ts("used_at"),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", UUID(as_uuid=False), primary_key=True),
    Column("user_id", UUID(as_uuid=False), nullable=False),
    _ts("created_at", False),
    _ts("last_refreshed_at"),
    _ts("revoked_at"),
    Column("revoked_reason", Text),
    Column("client_ip", Text),
    Column("user_agent", Text),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", Text, primary_key=True),
    Column("session_id", UUID(as_uuid=False), ForeignKey("sessions.id"), nullable=False),
    _ts("issued_at", False),
    _ts("expires_at", False),
    _ts("used_at"),
)

api_key_secrets = Table(
    "api_key_secrets",
    metadata,
    Column("api_key_id", UUID(as_uuid=False), primary_key=True),
    Column("key_hash", Text, nullable=False, unique=True),
    _ts("last_used_at"),
)

client_attempts = Table(
    "client_attempts",
    metadata,
    Column("id", BigInteger, primary_key=True),
    Column("bucket", Text, nullable=False),
    Column("client", Text, nullable=False),
    _ts("attempted_at", False),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", BigInteger, primary_key=True),
    _ts("at", False),
    Column("actor_id", Text),
    Column("actor_kind", Text),
    Column("actor_role", Text),
    Column("action", Text, nullable=False),
    Column("method", Text),
    Column("path", Text),
    Column("resource_type", Text),
    Column("resource_id", Text),
    Column("status", Integer),
    Column("ip", Text),
    Column("request_id", Text),
    _ts("recorded_at"),
    Column("entry_id", UUID(as_uuid=False), unique=True),  # the gateway's key (retries)
)
