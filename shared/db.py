"""SQLAlchemy engines and the nameko dependency that hands each worker a session."""

from __future__ import annotations

import logging
import weakref

from nameko.extensions import DependencyProvider
from sqlalchemy import create_engine
from sqlalchemy.engine import URL, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from shared.config import settings

log = logging.getLogger(__name__)

#: Where provisioning installs PostgreSQL extensions (pg_trgm, ...) for every service to use.
EXTENSIONS_SCHEMA = "extensions"


def ensure_cooperative_psycopg2() -> bool:
    """Make psycopg2 yield to the eventlet hub while it waits on the server.

    psycopg2 is a C driver: without a wait callback every query blocks the whole process.
    ``eventlet.monkey_patch()`` (which ``nameko run`` and our ``cms serve`` call) installs one;
    this installs it too when the process is green but the patch came too late or partially.
    Returns True when queries are cooperative.
    """
    import psycopg2.extensions

    if psycopg2.extensions.get_wait_callback() is not None:
        return True
    from eventlet import patcher

    if not patcher.is_monkey_patched("socket"):
        return False
    from eventlet.support import psycopg2_patcher

    psycopg2_patcher.make_psycopg_green()
    return True


def create_service_engine(
    url: str | URL, schema: str | None = None, pool_size: int = 10, max_overflow: int = 2
) -> Engine:
    """An engine whose connections use ``schema`` as their search path."""
    ensure_cooperative_psycopg2()
    connect_args = {"application_name": f"cms-{schema or 'admin'}"}
    if schema:
        # No parallel workers by default: on a small machine starting two processes for each
        # search costs more than it saves (docs/performance.md, "What I saw" 3).
        # A GIN index's pending list is merged into the index by the write that finds it
        # over this limit: at PostgreSQL's 4 MB that write waited 19-240 ms (a customer's
        # eight GIN indexes at 200,000 rows), the p99 of creating a customer; a smaller list
        # is merged more often and each merge is short (docs/performance.md).
        current = settings()
        connect_args["options"] = (
            f"-c search_path={schema},{EXTENSIONS_SCHEMA} "
            f"-c max_parallel_workers_per_gather={current.db_parallel_workers} "
            f"-c gin_pending_list_limit={current.db_gin_pending_list_kb}kB"
        )
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=True,
        pool_recycle=1800,
        pool_timeout=10,
        connect_args=connect_args,
    )


def service_database_url(config: dict, service: str) -> str | URL:
    """The URL of ``service``'s role: ``DB_URIS`` in the nameko config wins (tests use it),
    otherwise the one derived from the environment."""
    uris = config.get("DB_URIS") or {}
    return uris.get(service) or settings().service_url(service)


class Database(DependencyProvider):
    """Gives each worker its own SQLAlchemy ``Session`` bound to the service's schema.

    The pool holds as many connections as nameko runs workers, so a busy service never waits
    for a connection it could have had. The worker commits explicitly; whatever it left open
    is rolled back and closed when the worker ends.
    """

    def __init__(self, schema: str | None = None):
        self.schema = schema
        self.engine: Engine | None = None
        self.sessionmaker: sessionmaker | None = None
        self.sessions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def setup(self) -> None:
        schema = self.schema or self.container.service_name
        config = self.container.config
        workers = int(config.get("max_workers", 10))
        self.engine = create_service_engine(
            service_database_url(config, schema), schema=schema, pool_size=workers
        )
        self.sessionmaker = sessionmaker(bind=self.engine, expire_on_commit=False)

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.dispose()

    def kill(self) -> None:
        self.stop()

    def get_dependency(self, worker_ctx) -> Session:
        session = self.sessionmaker()
        self.sessions[worker_ctx] = session
        return session

    def worker_teardown(self, worker_ctx) -> None:
        session = self.sessions.pop(worker_ctx, None)
        if session is not None:
            try:
                session.close()
            except DBAPIError:
                # the connection died under the worker (database restarted): the rollback of
                # close() fails. Drop the connection; an error raised here would end the whole
                # service container, not just this worker.
                log.warning("database connection lost; discarding it", exc_info=True)
                session.invalidate()
