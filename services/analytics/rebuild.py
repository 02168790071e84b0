"""Rebuild every analytics projection from the sources' ``read_events`` while the live
system keeps running: ``cms analytics rebuild`` (this module's ``main``), or the admin API
(``start_rebuild`` RPC, which runs the same code in the service).

1. Create a shadow generation of every projection table (``<table>__next``).
2. Read each source's events in pages of 1,000 (the next page is fetched while the current
   one is applied) and fold them into the shadow tables with multi-row upserts; the derived
   per-customer figures and RFM segments are computed once at the end, set-based.
3. Swap: take the projections' write lock (live applies wait), apply what the sources
   committed since, replace the live tables by the shadow ones (rename, in one transaction:
   readers see either generation whole), and move the live consumer's cursor forward.

Only one rebuild runs at a time (a session advisory lock).
"""

from __future__ import annotations

import argparse
import json
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine

from services.analytics.consumer import APPLY_LOCK, CONSUMER, lock
from services.analytics.projector import (
    PAYLOAD_FIELDS,
    SUBSCRIPTIONS,
    Projector,
    refresh_customer_stats,
    refresh_rfm,
)
from services.analytics.tables import PROJECTION_TABLES, index_names, projection_ddl
from shared.errors import Conflict

SHADOW = "__next"
PAGE = 1000
REBUILD_LOCK = APPLY_LOCK + 1

Fetch = Callable[[str, int, int, Sequence[str]], Sequence[dict[str, Any]]]
Progress = Callable[[int, int, int], None]  # (positions done, positions total, events)


#: Pages fetched ahead per source (the sources answer in parallel while pages are applied).
#: Two keep the fold busy as well as eight did (22,450 and 22,850 events/s against 21,900
#: and 22,850 in ``python -m services.analytics.bench 20000``) with 11-16 MB less at the peak.
AHEAD = 2


class Prefetch:
    """Every source's pages after position 0, each fetched ahead in a thread of its own."""

    def __init__(self, fetch: Fetch):
        self.queues: dict[str, queue.Queue] = {}
        for source, types in SUBSCRIPTIONS.items():
            pages: queue.Queue = queue.Queue(maxsize=AHEAD)
            self.queues[source] = pages
            threading.Thread(
                target=self._produce, args=(fetch, source, types, pages), daemon=True
            ).start()

    @staticmethod
    def _produce(fetch: Fetch, source: str, types: Sequence[str], pages: queue.Queue) -> None:
        position = 0
        try:
            while True:
                page = fetch(source, position, PAGE, types)
                pages.put(page)
                if len(page) < PAGE:
                    break
                position = int(page[-1]["position"])
        except Exception as exc:  # noqa: BLE001 - handed to the consumer
            pages.put(exc)
        pages.put(None)

    def pages(self, source: str):
        pages = self.queues[source]
        while (page := pages.get()) is not None:
            if isinstance(page, Exception):
                raise page
            yield page


class RpcFetch:
    """``fetch(source, after, limit, types)`` over nameko RPC from any thread (a standalone
    proxy per thread, since one proxy must not serve two threads at once)."""

    def __init__(self, config: dict[str, Any], timeout: float = 60.0):
        self.config, self.timeout = config, timeout
        self.local = threading.local()
        self.proxies: list[Any] = []

    def _cluster(self):
        cluster = getattr(self.local, "cluster", None)
        if cluster is None:
            from nameko.standalone.rpc import ClusterRpcProxy

            proxy = ClusterRpcProxy(self.config, timeout=self.timeout)
            self.proxies.append(proxy)
            cluster = self.local.cluster = proxy.start()
        return cluster

    def __call__(self, source: str, after: int, limit: int, types: Sequence[str]):
        fields = PAYLOAD_FIELDS.get(source)
        page = getattr(self._cluster(), source).read_events_json(
            after_position=after,
            limit=limit,
            types=list(types),
            **({"payload_fields": list(fields)} if fields else {}),
        )
        return json.loads(page)

    def totals(self) -> dict[str, int]:
        """Each source's last position (for the progress bar)."""
        cluster = self._cluster()
        return {
            source: int(getattr(cluster, source).ping()["last_position"] or 0)
            for source in SUBSCRIPTIONS
        }

    def close(self) -> None:
        for proxy in self.proxies:
            try:
                proxy.stop()
            except Exception:  # noqa: BLE001, S110 - closing what may be gone already
                pass


def _swap(cursor) -> None:
    for table in PROJECTION_TABLES:
        cursor.execute(f"DROP TABLE {table}")
    for table in PROJECTION_TABLES:
        cursor.execute(f"ALTER TABLE {table}{SHADOW} RENAME TO {table}")
    for shadow, live in zip(index_names(SHADOW), index_names(""), strict=True):
        cursor.execute(f"ALTER INDEX {shadow} RENAME TO {live}")


def rebuild(
    engine: Engine,
    fetch: Fetch,
    totals: dict[str, int] | None = None,
    progress: Progress | None = None,
    as_of: date | None = None,
    rebuild_id: str | None = None,
) -> dict[str, Any]:
    """Rebuild into shadow tables, then swap them in. ``fetch(source, after, limit, types)``
    reads a source's events; ``totals`` (each source's last position) scale the progress."""
    rebuild_id = rebuild_id or str(uuid.uuid4())
    as_of = as_of or datetime.now(UTC).date()
    totals = totals or {}
    total = sum(totals.values())
    started = time.monotonic()
    guard = engine.raw_connection()
    try:
        with guard.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", (REBUILD_LOCK,))
            if not cursor.fetchone()[0]:
                raise Conflict("a rebuild of the analytics projections is running already")
        guard.commit()
        _record(engine, rebuild_id, "running", 0, total)
        connection = engine.raw_connection()
        try:
            positions, events = _load(engine, connection, fetch, totals, total, progress)
            with connection.cursor() as cursor:
                refresh_customer_stats(cursor, SHADOW)
                refresh_rfm(cursor, as_of, SHADOW)
            connection.commit()
            events += _catch_up_and_swap(connection, fetch, positions, as_of)
        except BaseException:
            connection.rollback()
            raise
        finally:
            connection.close()
    except Exception as exc:
        _record(engine, rebuild_id, "failed", 0, total, error=str(exc))
        raise
    finally:
        with guard.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (REBUILD_LOCK,))
        guard.commit()
        guard.close()
    seconds = max(time.monotonic() - started, 1e-6)
    _record(engine, rebuild_id, "succeeded", events, total, rate=events / seconds)
    if progress:
        progress(total, total, events)
    return {
        "id": rebuild_id,
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds, 1),
        "positions": positions,
    }


def _load(engine, connection, fetch, totals, total, progress) -> tuple[dict[str, int], int]:
    """Fold every source's events into the shadow tables: one thread and connection per
    source (the sources' events touch disjoint tables, so they never wait on each other)."""
    with connection.cursor() as cursor:
        for table in reversed(PROJECTION_TABLES):
            cursor.execute(f"DROP TABLE IF EXISTS {table}{SHADOW}")
        for statement in projection_ddl(SHADOW):
            cursor.execute(statement)
    connection.commit()
    positions = dict.fromkeys(SUBSCRIPTIONS, 0)
    counts = dict.fromkeys(SUBSCRIPTIONS, 0)
    failures: list[BaseException] = []
    guard = threading.Lock()
    prefetch = Prefetch(fetch)

    def load(source: str) -> None:
        own = engine.raw_connection()
        try:
            for page in prefetch.pages(source):
                with own.cursor() as cursor:
                    Projector(cursor, SHADOW).apply(page, derive=False)
                own.commit()
                with guard:
                    counts[source] += len(page)
                    if page:
                        positions[source] = int(page[-1]["position"])
                    if progress:
                        done = sum(min(positions[s], totals.get(s, 0)) for s in SUBSCRIPTIONS)
                        progress(done, total, sum(counts.values()))
        except BaseException as exc:  # noqa: BLE001 - raised again by the caller
            own.rollback()
            failures.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=load, args=(source,)) for source in SUBSCRIPTIONS]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return positions, sum(counts.values())


def _catch_up_and_swap(connection, fetch, positions: dict[str, int], as_of: date) -> int:
    """Under the write lock: the events committed since the load, then the swap."""
    events = 0
    with connection.cursor() as cursor:
        lock(cursor)
        touched: set[str] = set()
        for source, types in SUBSCRIPTIONS.items():
            while True:
                page = fetch(source, positions[source], PAGE, types)
                if not page:
                    break
                touched |= Projector(cursor, SHADOW).apply(page, derive=False)
                positions[source] = int(page[-1]["position"])
                events += len(page)
                if len(page) < PAGE:
                    break
        if touched:
            refresh_customer_stats(cursor, SHADOW, touched)
            refresh_rfm(cursor, as_of, SHADOW)
        _swap(cursor)
        for source, position in positions.items():
            cursor.execute(
                "INSERT INTO consumer_positions (consumer, source, position) VALUES (%s, %s, %s) "
                "ON CONFLICT (consumer, source) DO UPDATE SET "
                "position = GREATEST(consumer_positions.position, EXCLUDED.position), "
                "updated_at = now()",
                (CONSUMER, source, position),
            )
    connection.commit()
    return events


def _record(engine, rebuild_id, status, events, total, rate=None, error=None) -> None:
    connection = engine.raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                """INSERT INTO rebuilds (id, status, events, total, events_per_second, error,
                                         finished_at)
                   VALUES (%(id)s, %(status)s, %(events)s, %(total)s, %(rate)s, %(error)s,
                           CASE WHEN %(status)s = 'running' THEN NULL ELSE now() END)
                   ON CONFLICT (id) DO UPDATE SET status = EXCLUDED.status,
                       events = GREATEST(rebuilds.events, EXCLUDED.events),
                       total = EXCLUDED.total, events_per_second = EXCLUDED.events_per_second,
                       error = EXCLUDED.error, finished_at = EXCLUDED.finished_at""",
                {
                    "id": rebuild_id,
                    "status": status,
                    "events": events,
                    "total": total,
                    "rate": rate,
                    "error": error,
                },
            )
        connection.commit()
    finally:
        connection.close()


def get_rebuild(cursor, rebuild_id: str) -> dict[str, Any] | None:
    cursor.execute(
        "SELECT id, status, requested_by, started_at, finished_at, events, total, "
        "events_per_second, error FROM rebuilds WHERE id = %s",
        (rebuild_id,),
    )
    row = cursor.fetchone()
    if row is None:
        return None
    names = (
        "id",
        "status",
        "requested_by",
        "started_at",
        "finished_at",
        "events",
        "total",
        "events_per_second",
        "error",
    )
    out = dict(zip(names, row, strict=True))
    for key in ("id", "started_at", "finished_at"):
        if out[key] is not None:
            out[key] = str(out[key]) if key == "id" else out[key].isoformat()
    return out


# -- command line ------------------------------------------------------------------------------


def _bar(done: int, total: int, events: int) -> None:
    width = 40
    filled = width * min(done, total) // max(total, 1)
    bar = "#" * filled + "-" * (width - filled)
    print(f"\r[{bar}] {events} events", end="", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    """``cms analytics rebuild``: rebuild in this process, reading the running services'
    ``read_events`` over RPC, with a progress bar on the terminal."""
    from shared.config import settings
    from shared.db import create_service_engine

    parser = argparse.ArgumentParser(prog="cms analytics rebuild")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    current = settings()
    engine = create_service_engine(
        current.service_url("analytics"), schema="analytics", pool_size=2
    )
    fetch = RpcFetch({"AMQP_URI": current.amqp_uri})
    try:
        result = rebuild(engine, fetch, fetch.totals(), None if args.quiet else _bar)
    finally:
        fetch.close()
        engine.dispose()
    if not args.quiet:
        print(file=sys.stderr)
    print(
        f"analytics projections rebuilt from {result['events']} events in "
        f"{result['seconds']} s ({result['events_per_second']} events/s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
