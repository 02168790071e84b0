"""Creates what the services need before they start: the database, one role and one schema per
service, the schemas' migrations, and the RabbitMQ exchanges and consumer queues.

Everything here is idempotent: run it on every start.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from amqp.exceptions import PreconditionFailed
from kombu import Connection
from nameko.events import SERVICE_POOL, EventHandler
from nameko.extensions import ENTRYPOINT_EXTENSIONS_ATTR
from nameko.rpc import get_rpc_exchange
from nameko.standalone.events import get_event_exchange
from psycopg2 import sql
from sqlalchemy import create_engine, text
from sqlalchemy.engine import URL
from sqlalchemy.pool import NullPool

from shared import migrations
from shared.config import SERVICES, Settings
from shared.db import EXTENSIONS_SCHEMA

log = logging.getLogger(__name__)


def _admin_engine(url: URL, database: str | None = None):
    target = url.set(database=database) if database else url
    return create_engine(target, poolclass=NullPool, isolation_level="AUTOCOMMIT")


def create_database(settings: Settings) -> bool:
    """Create the CMS database when it does not exist; True when it was created."""
    name = settings.database_name
    engine = _admin_engine(settings.admin_url, "postgres")
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
            ).scalar()
            if exists:
                return False
            conn.exec_driver_sql(
                sql.SQL("CREATE DATABASE {}")
                .format(sql.Identifier(name))
                .as_string(conn.connection.dbapi_connection)
            )
            return True
    finally:
        engine.dispose()


def drop_database(settings: Settings) -> None:
    engine = _admin_engine(settings.admin_url, "postgres")
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            conn.exec_driver_sql(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)")
                .format(sql.Identifier(settings.database_name))
                .as_string(raw)
            )
    finally:
        engine.dispose()


#: Extensions every service may use; installed once per database by the admin account.
EXTENSIONS = ("pg_trgm",)


def install_extensions(settings: Settings, roles: Iterable[str]) -> None:
    """Extensions live in their own schema, readable (not writable) by every service role."""
    engine = _admin_engine(settings.admin_url)
    try:
        with engine.connect() as conn:
            raw = conn.connection.dbapi_connection
            schema = sql.Identifier(EXTENSIONS_SCHEMA)
            conn.exec_driver_sql(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(schema).as_string(raw)
            )
            conn.exec_driver_sql(
                sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(schema).as_string(raw)
            )
            for extension in EXTENSIONS:
                try:
                    conn.exec_driver_sql(
                        sql.SQL("CREATE EXTENSION IF NOT EXISTS {} WITH SCHEMA {}")
                        .format(sql.Identifier(extension), schema)
                        .as_string(raw)
                    )
                except Exception as exc:
                    if "already exists" not in str(exc):
                        raise
            for role in roles:
                conn.exec_driver_sql(
                    sql.SQL("GRANT USAGE ON SCHEMA {} TO {}")
                    .format(schema, sql.Identifier(role))
                    .as_string(raw)
                )
    finally:
        engine.dispose()


#: The advisory lock (in the ``postgres`` database, which every provisioning run reaches, for an
#: advisory lock is per database) under which a run changes its roles. A role is one for the
#: whole PostgreSQL cluster: two runs at once (parallel test groups, each with a database of
#: its own) changing the same role's row at the same moment made PostgreSQL refuse one with
#: "tuple concurrently updated".
ROLES_LOCK = zlib.crc32(b"cms.provision.roles") - 2**31


@contextmanager
def _roles_locked(settings: Settings) -> Iterator[None]:
    engine = _admin_engine(settings.admin_url, "postgres")
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": ROLES_LOCK})
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ROLES_LOCK})
    finally:
        engine.dispose()


def create_role_and_schema(settings: Settings, service: str) -> None:
    """One login role per service that owns one schema of the same name; the database is
    closed to everyone else, so a role cannot read another service's schema."""
    role = settings.role_name(service)
    engine = _admin_engine(settings.admin_url)
    try:
        with _roles_locked(settings), engine.connect() as conn:
            raw = conn.connection.dbapi_connection

            def run(statement: sql.Composable, **params: object) -> None:
                conn.exec_driver_sql(statement.as_string(raw), params or None)

            exists = conn.execute(
                text("SELECT 1 FROM pg_roles WHERE rolname = :role"), {"role": role}
            ).scalar()
            if not exists:
                try:
                    run(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
                except Exception as exc:  # another provisioning run created it meanwhile
                    if "already exists" not in str(exc):
                        raise
            run(
                sql.SQL(
                    "ALTER ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
                ).format(sql.Identifier(role), sql.Literal(settings.role_password(service)))
            )
            run(
                sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(
                    sql.Identifier(settings.database_name)
                )
            )
            run(
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(settings.database_name), sql.Identifier(role)
                )
            )
            run(sql.SQL("REVOKE ALL ON SCHEMA public FROM PUBLIC"))
            run(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {} AUTHORIZATION {}").format(
                    sql.Identifier(service), sql.Identifier(role)
                )
            )
            run(sql.SQL("REVOKE ALL ON SCHEMA {} FROM PUBLIC").format(sql.Identifier(service)))
            run(
                sql.SQL("ALTER ROLE {} IN DATABASE {} SET search_path = {}, {}").format(
                    sql.Identifier(role),
                    sql.Identifier(settings.database_name),
                    sql.Identifier(service),
                    sql.Identifier(EXTENSIONS_SCHEMA),
                )
            )
    finally:
        engine.dispose()


def consumer_bindings(service: str) -> list[tuple[str, str, str, dict[str, Any]]]:
    """``(queue, source service, event type, queue arguments)`` for every ``@event_handler``
    of a service, named and declared exactly as the handler declares it, so the queues exist
    before the first event."""
    module = importlib.import_module(f"services.{service}.service")
    bindings = []
    for _, cls in inspect.getmembers(module, inspect.isclass):
        if getattr(cls, "name", None) != service:
            continue
        for method_name, method in inspect.getmembers(cls, callable):
            for entrypoint in getattr(method, ENTRYPOINT_EXTENSIONS_ATTR, ()):
                if (
                    isinstance(entrypoint, EventHandler)
                    and entrypoint.handler_type == SERVICE_POOL
                    and entrypoint.reliable_delivery
                ):
                    source, event_type = entrypoint.source_service, entrypoint.event_type
                    queue = f"evt-{source}-{event_type}--{service}.{method_name}"
                    arguments = dict(getattr(entrypoint, "queue_arguments", None) or {})
                    bindings.append((queue, source, event_type, arguments))
    return bindings


def declare_messaging(amqp_uri: str, services: Iterable[str] = SERVICES) -> None:
    """Declare the RPC exchange, every service's event exchange and every consumer's durable
    queue and binding. The RPC exchange is otherwise declared only by a service's RPC
    entrypoints as they start: a call made before any has (a replica's first catch-up) was a
    channel error, "no exchange 'nameko-rpc'", where with the exchange it is an unroutable
    call, which the caller takes as the service not running yet."""
    from kombu import Queue

    services = list(services)
    with Connection(amqp_uri, connect_timeout=5) as connection:
        channel = connection.channel()
        get_rpc_exchange({}).declare(channel=channel)
        for service in services:
            get_event_exchange(service, {}).declare(channel=channel)
        for service in services:
            for queue_name, source, event_type, arguments in consumer_bindings(service):
                queue = Queue(
                    queue_name,
                    exchange=get_event_exchange(source, {}),
                    routing_key=event_type,
                    durable=True,
                    auto_delete=False,
                    queue_arguments=arguments or None,
                )
                try:
                    queue.declare(channel=channel)
                except PreconditionFailed:
                    channel = _redeclare(connection, queue)


def _redeclare(connection: Connection, queue: Any) -> Any:
    """A queue declared before with other arguments (before consumers' queues were bounded):
    RabbitMQ refuses to change them, so it is deleted and declared anew on a new channel (the
    refusal closed the old one). Only queues of consumers that take every event from the
    source's log have arguments, so what the old queue held is read again from there."""
    channel = connection.channel()
    log.warning(
        "queue %s was declared with other arguments; deleting and declaring it again (its "
        "consumer catches up from the log)",
        queue.name,
    )
    channel.queue_delete(queue.name)
    queue.declare(channel=channel)
    return channel


def provision(settings: Settings, services: Iterable[str] = SERVICES, messaging: bool = True):
    """Database, roles, schemas, migrations and (optionally) exchanges and queues."""
    services = list(services)
    if create_database(settings):
        log.info("created database %s", settings.database_name)
    for service in services:
        create_role_and_schema(settings, service)
    install_extensions(settings, [settings.role_name(service) for service in services])
    for service in services:
        migrations.upgrade(service, settings.service_url(service))
    if messaging:
        declare_messaging(settings.amqp_uri, services)
