"""Backups of the CMS database: every service schema, in one PostgreSQL custom-format dump.

``backup`` runs ``pg_dump --format=custom`` over the service schemas (tables, event logs,
sequences, triggers, grants, owners, and each schema's alembic version table), as the admin
account of ``CMS_DATABASE_URL``. ``restore`` brings a dump back into an *empty* database: it
creates the database, the service roles and the shared extensions first (the same steps as
``cms provision``), then ``pg_restore``s the schemas with their owners, and finally runs the
migrations, so a dump of an older version comes back at the current one. The event logs are
the truth; ``rebuild_read_models`` replays them into the read models of every service that
has a ``projections.rebuild(session)``.

Mechanism only: nothing here knows a service's tables.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
from collections.abc import Iterable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from shared import migrations
from shared.config import SERVICES, Settings
from shared.db import create_service_engine


class BackupError(RuntimeError):
    """A backup or restore that cannot go on; the message says why."""


def _tool(name: str) -> str:
    found = shutil.which(name)
    if not found:
        raise BackupError(
            f"{name} is not installed (Debian: apt-get install postgresql-client); it must "
            "be of the server's major version or newer"
        )
    return found


def _libpq_env(url: URL) -> tuple[list[str], dict[str, str]]:
    """Connection options for the PostgreSQL tools, the password in the environment."""
    args = ["--host", url.host or "127.0.0.1", "--port", str(url.port or 5432)]
    if url.username:
        args += ["--username", url.username]
    env = dict(os.environ)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return args, env


def _admin_engine(settings: Settings, database: str | None = None):
    url = settings.admin_url.set(database=database or settings.database_name)
    return create_engine(url, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def present_schemas(settings: Settings, services: Iterable[str] = SERVICES) -> list[str]:
    """The service schemas that exist in the database and hold at least one table."""
    engine = _admin_engine(settings)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT DISTINCT schemaname FROM pg_tables WHERE schemaname = ANY(:names)"),
                {"names": list(services)},
            ).scalars()
            found = set(rows)
    finally:
        engine.dispose()
    return [service for service in services if service in found]


def backup(settings: Settings, path: str | Path, services: Iterable[str] = SERVICES) -> dict:
    """Dump every service schema into ``path`` (custom format); returns what was dumped."""
    schemas = present_schemas(settings, services)
    if not schemas:
        raise BackupError(f"database {settings.database_name} has no CMS schema to back up")
    args, env = _libpq_env(settings.admin_url)
    command = [_tool("pg_dump"), *args, "--format=custom", "--file", str(path)]
    for schema in schemas:
        command += ["--schema", schema]
    command.append(settings.database_name)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"pg_dump failed: {done.stderr.strip()}")
    return {"database": settings.database_name, "schemas": schemas, "path": str(path)}


def _dumped_schemas(path: Path) -> list[str]:
    listing = subprocess.run(  # noqa: S603
        [_tool("pg_restore"), "--list", str(path)], capture_output=True, text=True, check=False
    )
    if listing.returncode != 0:
        raise BackupError(f"not a CMS backup ({path}): {listing.stderr.strip()}")
    schemas = []
    for line in listing.stdout.splitlines():
        parts = line.split()
        # "<id>; <oid> <oid> SCHEMA - <name> <owner>"
        if len(parts) >= 6 and parts[3] == "SCHEMA" and parts[5] in SERVICES:
            schemas.append(parts[5])
    if not schemas:
        raise BackupError(f"{path} holds no CMS schema")
    return schemas


def restore(settings: Settings, path: str | Path) -> dict:
    """Restore a dump made by :func:`backup` into the (empty or missing) database of
    ``settings``, with every service role and grant as ``cms provision`` makes them."""
    from shared import provision

    path = Path(path)
    if not path.is_file():
        raise BackupError(f"no such file: {path}")
    schemas = _dumped_schemas(path)
    provision.create_database(settings)
    occupied = present_schemas(settings)
    if occupied:
        raise BackupError(
            f"database {settings.database_name} is not empty (schemas {', '.join(occupied)} "
            "hold tables): restore into a new database (set CMS_DATABASE_URL)"
        )
    for service in SERVICES:
        provision.create_role_and_schema(settings, service)
    provision.install_extensions(settings, [settings.role_name(s) for s in SERVICES])
    args, env = _libpq_env(settings.admin_url)
    # --clean drops the empty schemas just made, so the dump recreates them with its owners
    command = [
        _tool("pg_restore"),
        *args,
        "--dbname",
        settings.database_name,
        "--clean",
        "--if-exists",
        "--exit-on-error",
        "--single-transaction",
        str(path),
    ]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise BackupError(f"pg_restore failed: {done.stderr.strip()}")
    for service in SERVICES:
        # grants and search paths again (the dump's schemas replaced the provisioned ones),
        # then the migrations: an older dump comes back at the current version
        provision.create_role_and_schema(settings, service)
        migrations.upgrade(service, settings.service_url(service))
    return {"database": settings.database_name, "schemas": schemas}


def rebuildable(services: Iterable[str] = SERVICES) -> list[str]:
    """Services whose read models can be replayed from their own event log, in process: those
    with ``services.<name>.projections.rebuild(session)``."""
    found = []
    for service in services:
        try:
            module = importlib.import_module(f"services.{service}.projections")
        except ImportError:
            continue
        if callable(getattr(module, "rebuild", None)):
            found.append(service)
    return found


def rebuild_read_models(settings: Settings, services: Iterable[str] | None = None) -> dict:
    """Replay each service's events into its read models (as the service's own role);
    returns the number of events replayed per service."""
    replayed = {}
    for service in rebuildable(SERVICES if services is None else services):
        module = importlib.import_module(f"services.{service}.projections")
        engine = create_service_engine(settings.service_url(service), schema=service, pool_size=1)
        try:
            with Session(engine) as session:
                replayed[service] = module.rebuild(session)
                session.commit()
        finally:
            engine.dispose()
    return replayed
