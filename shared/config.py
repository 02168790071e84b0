"""Settings read from environment variables, with defaults that work on a developer machine.

Every setting is documented in the README ("Configuration"). Settings that only one service
uses live in that service's own ``config.py``, built the same way (read once, validated,
documented); nothing else reads ``os.environ`` for CMS settings.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, field
from functools import lru_cache

from sqlalchemy.engine import URL, make_url

#: The services that make up CMS, in the order they are provisioned and started.
SERVICES: tuple[str, ...] = (
    "users",
    "customers",
    "orders",
    "payments",
    "analytics",
    "webhooks",
)

DEV_SECRET_KEY = "cms-development-secret-key-change-me"  # noqa: S105 - dev default, documented


def _env(name: str, default: str) -> str:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _env_int(name: str, default: int, minimum: int | None = None) -> int:
    raw = _env(name, str(default))
    try:
        value = int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from exc
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def _env_float(name: str, default: float) -> float:
    raw = _env(name, str(default))
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number, got {raw!r}") from exc


def normalise_database_url(url: str) -> str:
    """Force the psycopg2 driver: SQLAlchemy 2.1 maps ``postgresql://`` to psycopg 3,
    which eventlet cannot make cooperative (DESIGN §4)."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres", "postgresql+psycopg"):
        parsed = parsed.set(drivername="postgresql+psycopg2")
    return parsed.render_as_string(hide_password=False)


@dataclass(frozen=True)
class Settings:
    """A snapshot of the configuration."""

    database_url: str
    amqp_uri: str
    secret_key: str
    gateway_host: str
    gateway_port: int
    max_workers: int
    rpc_timeout: float
    auth_cache_seconds: float
    amqp_heartbeat: int
    relay_interval: float
    relay_batch_size: int
    log_level: str
    role_prefix: str
    trusted_proxies: tuple[str, ...] = ()
    max_body_bytes: int = 1024 * 1024
    db_parallel_workers: int = 0
    db_gin_pending_list_kb: int = 256
    consumer_batch_ms: int = 100
    db_passwords: dict[str, str] = field(default_factory=dict)

    @property
    def admin_url(self) -> URL:
        """The URL of the account that creates the database, roles and schemas."""
        return make_url(self.database_url)

    @property
    def database_name(self) -> str:
        return self.admin_url.database or "cms"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.gateway_host}:{self.gateway_port}"

    def role_name(self, service: str) -> str:
        """The PostgreSQL role that owns ``service``'s schema."""
        return f"{self.role_prefix}{service}"

    def role_password(self, service: str) -> str:
        """The password of a service's role: ``CMS_DB_PASSWORD_<SERVICE>`` when set, otherwise
        derived from the secret key so that every process of one deployment agrees on it."""
        explicit = self.db_passwords.get(service)
        if explicit:
            return explicit
        digest = hmac.new(self.secret_key.encode(), f"db-role:{service}".encode(), hashlib.sha256)
        return digest.hexdigest()[:32]

    def service_url(self, service: str) -> URL:
        """The URL a service connects with: same server and database, its own role."""
        return self.admin_url.set(
            username=self.role_name(service), password=self.role_password(service)
        )

    def nameko_config(self, **overrides: object) -> dict:
        """The nameko configuration every service process runs with."""
        config: dict = {
            "AMQP_URI": self.amqp_uri,
            "max_workers": self.max_workers,
            "parent_calls_tracked": 10,
            "HEARTBEAT": self.amqp_heartbeat,
            "WEB_SERVER_ADDRESS": f"{self.gateway_host}:{self.gateway_port}",
            "serializer": "json",
            "TRUSTED_PROXIES": list(self.trusted_proxies),
            "MAX_BODY_BYTES": self.max_body_bytes,
            "CONSUMER_BATCH_INTERVAL": self.consumer_batch_ms / 1000,
        }
        config.update(overrides)
        return config


def load_settings() -> Settings:
    """Read the settings from the environment now (no caching)."""
    return Settings(
        database_url=normalise_database_url(
            _env("CMS_DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/cms")
        ),
        amqp_uri=_env("CMS_AMQP_URI", "pyamqp://guest:guest@127.0.0.1:5672/"),
        secret_key=_env("CMS_SECRET_KEY", DEV_SECRET_KEY),
        gateway_host=_env("CMS_GATEWAY_HOST", "127.0.0.1"),
        gateway_port=_env_int("CMS_GATEWAY_PORT", 8000),
        max_workers=_env_int("CMS_MAX_WORKERS", 10),
        rpc_timeout=_env_float("CMS_RPC_TIMEOUT", 5.0),
        auth_cache_seconds=_env_float("CMS_AUTH_CACHE_SECONDS", 2.0),
        amqp_heartbeat=_env_int("CMS_AMQP_HEARTBEAT", 15),
        relay_interval=_env_float("CMS_RELAY_INTERVAL", 1.0),
        relay_batch_size=_env_int("CMS_RELAY_BATCH_SIZE", 500),
        log_level=_env("CMS_LOG_LEVEL", "INFO").upper(),
        role_prefix=_env("CMS_DB_ROLE_PREFIX", "cms_"),
        trusted_proxies=tuple(
            part.strip() for part in _env("CMS_TRUSTED_PROXIES", "").split(",") if part.strip()
        ),
        max_body_bytes=_env_int("CMS_MAX_BODY_BYTES", 1024 * 1024),
        db_parallel_workers=_env_int("CMS_DB_PARALLEL_WORKERS", 0),
        # PostgreSQL refuses less than 64 kB, and would refuse every connection
        db_gin_pending_list_kb=_env_int("CMS_DB_GIN_PENDING_LIST_KB", 256, minimum=64),
        consumer_batch_ms=_env_int("CMS_CONSUMER_BATCH_MS", 100, minimum=0),
        db_passwords={
            service: os.environ[f"CMS_DB_PASSWORD_{service.upper()}"]
            for service in SERVICES
            if os.environ.get(f"CMS_DB_PASSWORD_{service.upper()}")
        },
    )


@lru_cache(maxsize=1)
def settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()
