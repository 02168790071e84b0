"""Per-service schema migrations with alembic.

Each service keeps its revisions in ``services/<name>/migrations/versions`` and its alembic
version table in its own schema. Migrations run as the service's own role, so everything they
create belongs to that role and lives in that schema.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import command, context
from alembic.config import Config
from sqlalchemy import create_engine
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from shared.db import EXTENSIONS_SCHEMA


def migrations_dir(service: str) -> Path:
    spec = importlib.util.find_spec(f"services.{service}")
    if spec is None or not spec.submodule_search_locations:
        raise LookupError(f"no package services.{service}")
    return Path(next(iter(spec.submodule_search_locations))) / "migrations"


def run_env(schema: str) -> None:
    """The body of every service's ``migrations/env.py``."""
    connection = context.config.attributes["connection"]
    context.configure(connection=connection, version_table_schema=schema)
    with context.begin_transaction():
        context.run_migrations()


def alembic_config(service: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir(service)))
    return config


def upgrade(service: str, url: str | URL, revision: str = "head") -> None:
    """Bring ``service``'s schema to ``revision``, connected as the service's role."""
    engine = create_engine(
        url,
        poolclass=NullPool,
        connect_args={"options": f"-c search_path={service},{EXTENSIONS_SCHEMA}"},
    )
    try:
        with engine.begin() as connection:
            config = alembic_config(service)
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    finally:
        engine.dispose()
