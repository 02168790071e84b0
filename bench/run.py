"""``make bench`` / ``python -m bench [--quick]``: one benchmark run, start to finish.

1. a RabbitMQ virtual host and a database ``cms_bench_<random>`` of its own, provisioned;
2. N synthetic customers seeded with ``services/customers/seed.py``'s bulk path, as the
   customers role, straight into the database (the seeding rate is a figure of its own);
3. ``cms run`` on them, with an admin from CMS_ADMIN_EMAIL / CMS_ADMIN_PASSWORD and the
   per-address sign-in limit raised (CMS_LOGIN_RATE_LIMIT) so that the login phase measures
   sign-in rather than the limiter; then the outbox relay publishing the seeded events;
4. each phase for a fixed time with C concurrent clients in a closed loop (``bench/load.py``):
   the baselines, then the operations through the gateway, with the RSS of every CMS process
   sampled throughout;
5. ``bench/results/<UTC timestamp>.json`` and a markdown table on stdout;
6. always, also on Ctrl-C or a failure: the stack stopped (the whole process tree), the
   database dropped, the virtual host deleted.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import signal
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

from bench import results
from bench.load import OK, Measurement, Outcome, run_async, run_async_at_rate
from bench.system import (
    ROOT,
    CpuMeter,
    Sampler,
    SetupError,
    System,
    queued_messages,
    settle,
)

#: QUICK seeds few customers (seeding and carrying them through the relay and the consumers
#: took 40 of its 153 s with 10,000 on a slow machine); what it reports is the same set of
#: phases, shorter.
QUICK = {"customers": 3_000, "duration": 2.5, "warmup": 0.5}
#: Phases QUICK leaves out unless ``--only`` names them: the search target is judged at a
#: million customers only.
QUICK_SKIPS = frozenset({"search_customers_half"})
#: The longest wait for a quiet machine before a phase (``settle``): QUICK's short phases leave
#: less behind them, and it must stay under 2 minutes.
SETTLE_TIMEOUT = {"quick": 3.0, "full": 60.0}
FULL = {"customers": 1_000_000, "duration": 20.0, "warmup": 3.0}
CONCURRENCY = 8
#: The customer list page size the web UI asks for.
SEARCH_LIMIT = 20
#: Scale-out is measured by two runs: ``--processes 2`` and the default, compared with
#: ``python -m bench.compare`` (docs/performance.md).
NOT_MEASURED: list[str] = []
PROJECTION_LAG_P99_TARGET_MS = 1000.0
REBUILD_TARGET_PER_S = 20_000
REBUILD_TARGET_EVENTS = 1_000_000
PLACE_ORDER_VS_RPC_TARGET = 0.6
#: The writes measured again in an open loop at half the peak their closed loop reached.
WRITES = ("create_customer", "place_order", "pay_order")
WRITE_P99_TARGET_MS = 100.0
SEARCH_P95_TARGET_MS = 50.0
SEARCH_TARGET_CUSTOMERS = 1_000_000
RSS_TARGET_MB = 200.0

#: name → (group, what it measures); the order in which phases run.
PHASES: dict[str, tuple[str, str]] = {
    "healthz": ("baseline", "GET /healthz: gateway HTTP, no RPC"),
    "me": ("baseline", "GET /api/v1/me: HTTP + 2 RPCs to users (token check, get_user)"),
    "rpc_ping": ("baseline", "nameko RPC customers.ping() from another process, no HTTP"),
    "pg_insert_temp": ("baseline", "PostgreSQL 1-row INSERT, autocommit, temp table"),
    "pg_insert_logged": ("baseline", "PostgreSQL 1-row INSERT, autocommit, logged table"),
    "amqp_publish": ("baseline", "RabbitMQ persistent publish with confirm"),
    "login": ("operation", "POST /api/v1/auth/login (argon2id)"),
    "search_customers": ("operation", "GET /api/v1/customers?q=…&limit=<page size>"),
    "search_customers_half": ("operation", "GET /api/v1/customers?q=…, open loop at half the peak"),
    "customer_timeline": ("operation", "GET /api/v1/customers/{id}/timeline"),
    "create_customer": ("operation", "POST /api/v1/customers (force)"),
    "create_customer_half": ("operation", "POST /api/v1/customers, open loop at half the peak"),
    "place_order": ("operation", "POST /api/v1/orders (2 lines, 13 % tax)"),
    "place_order_half": ("operation", "POST /api/v1/orders, open loop at half the peak"),
    "pay_order": ("operation", "POST /api/v1/payments: sandbox card, Idempotency-Key"),
    "pay_order_half": ("operation", "POST /api/v1/payments, open loop at half the peak"),
    "list_orders": ("operation", "GET /api/v1/orders?limit=20"),
    "analytics_dashboard": ("operation", "GET /api/v1/analytics/overview?currency=CNY"),
    "projection_lag": ("derived", "event commit at the source → analytics projection applied"),
    "analytics_rebuild": ("operation", "POST /api/v1/analytics/rebuild, followed to the end"),
}


def log(message: str) -> None:
    print(f"[bench {datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


# -- before the stack: provision and seed ----------------------------------------------------


def seed(settings, count: int) -> dict[str, Any]:
    """``count`` customers through the bulk path of ``services/customers/seed.py``, its
    batches prepared by one process per core while this one inserts them."""
    from sqlalchemy.orm import Session

    from services.customers.seed import seed_customers
    from shared.db import create_service_engine

    engine = create_service_engine(
        settings.service_url("customers"), schema="customers", pool_size=1
    )
    started = time.perf_counter()
    reported = [started]

    def progress(done: int, total: int) -> None:
        now = time.perf_counter()
        if now - reported[0] >= 10 or done == total:
            reported[0] = now
            rate = done / (now - started)
            left = (total - done) / rate if rate else 0
            log(f"seeded {done:,}/{total:,} ({rate:,.0f}/s, about {left:,.0f} s left)")

    try:
        with Session(engine) as session:
            seeded = seed_customers(
                session, count, seed=0, progress=progress, workers=os.cpu_count() or 1
            )
    finally:
        engine.dispose()
    seconds = time.perf_counter() - started
    return {"customers": seeded, "seconds": round(seconds, 2), "per_s": round(seeded / seconds, 1)}


# -- while the stack runs: database look-ups -------------------------------------------------


def analyze(system: System) -> float:
    """``ANALYZE`` every table of the customers schema, as autovacuum would soon after a bulk
    load (the seed path analyzes only ``customers``; a server may run with autovacuum off).
    Returns the seconds it took."""
    connection = admin_connection(system)
    started = time.perf_counter()
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT format('%I.%I', schemaname, tablename) FROM pg_tables"
                " WHERE schemaname = 'customers'"
            )
            for (table,) in cursor.fetchall():
                cursor.execute(f"ANALYZE {table}")
    finally:
        connection.close()
    return round(time.perf_counter() - started, 2)


def count_customers(system: System) -> int:
    connection = admin_connection(system)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM customers.customers")
            return cursor.fetchone()[0]
    finally:
        connection.close()


def admin_connection(system: System):
    from bench.raw import _connect

    return _connect(system.database_url)


def wait_for_relay(system: System, timeout: float) -> dict[str, Any]:
    """Until the customers relay has published every event (its cursor at the last position)."""
    connection = admin_connection(system)
    try:
        with connection.cursor() as cursor:

            def positions() -> tuple[int, int]:
                cursor.execute(
                    "SELECT (SELECT coalesce(max(global_position), 0) FROM customers.events),"
                    " (SELECT published_position FROM customers.outbox_cursor"
                    "  WHERE relay = 'amqp')"
                )
                last, published = cursor.fetchone()
                return last, published or 0

            last, published = positions()
            start_published, started = published, time.perf_counter()
            reported = started
            while published < last and time.perf_counter() - started < timeout:
                time.sleep(0.5)
                last, published = positions()
                if time.perf_counter() - reported >= 10:
                    reported = time.perf_counter()
                    log(f"outbox relay: {published:,}/{last:,} events published")
            seconds = time.perf_counter() - started
            moved = published - start_published
            return {
                "events": moved,
                "seconds": round(seconds, 2),
                "per_s": round(moved / seconds, 1) if seconds > 0.5 else None,
                "caught_up": published >= last,
            }
    finally:
        connection.close()


#: The services that keep a projection of the customers' events (consumer_positions).
CUSTOMER_CONSUMERS = ("orders", "analytics", "webhooks")
#: A consumer whose position has not moved for this long is reported as stalled.
CONSUMER_STALL_S = 120.0


def wait_for_consumers(system: System, timeout: float) -> dict[str, Any]:
    """Until every service that projects the customers' events has caught up with the seeded
    ones (measuring while they catch up would measure their catch-up)."""
    connection = admin_connection(system)
    connection.autocommit = True
    figures: dict[str, Any] = {}
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT coalesce(max(global_position), 0) FROM customers.events")
            last = cursor.fetchone()[0]
            started = time.perf_counter()
            pending = set(CUSTOMER_CONSUMERS)
            reported = started
            progress: dict[str, tuple[int, float]] = {}
            while pending and time.perf_counter() - started < timeout:
                for schema in sorted(pending):
                    cursor.execute(
                        f"SELECT coalesce(min(position), 0) FROM {schema}.consumer_positions "  # noqa: S608
                        "WHERE source = 'customers'"
                    )
                    position = cursor.fetchone()[0]
                    seen, since = progress.get(schema, (-1, time.perf_counter()))
                    if position != seen:
                        progress[schema] = (position, time.perf_counter())
                    elif time.perf_counter() - since > CONSUMER_STALL_S:
                        pending.discard(schema)
                        figures[schema] = {"caught_up": False, "stalled_at": position}
                        continue
                    if position >= last:
                        pending.discard(schema)
                        seconds = time.perf_counter() - started
                        figures[schema] = {
                            "seconds": round(seconds, 1),
                            "per_s": round(last / seconds) if seconds > 1 else None,
                        }
                if time.perf_counter() - reported >= 10:
                    reported = time.perf_counter()
                    log(f"consumers still catching up on {last:,} customer events: {pending}")
                time.sleep(0.5)
            for schema in pending:
                figures.setdefault(schema, {"caught_up": False})
    finally:
        connection.close()
    return {"events": last, **figures}


def wait_for_queues(system: System, timeout: float) -> dict[str, Any]:
    """Until RabbitMQ has delivered what is queued for the services: a consumer that caught
    up in pages still receives (and skips) each queued delivery, which would load the
    machine during the phases."""
    started = reported = time.perf_counter()
    queued = queued_messages(system.name)
    # a few in flight (the services' own timers' RPCs) are not a backlog
    while queued is not None and queued > 20 and time.perf_counter() - started < timeout:
        if time.perf_counter() - reported >= 10:
            reported = time.perf_counter()
            log(f"RabbitMQ still delivering {queued:,} queued messages")
        time.sleep(1)
        queued = queued_messages(system.name)
    return {"seconds": round(time.perf_counter() - started, 1), "left": queued}


def sample_customers(system: System, size: int = 2000) -> list[dict[str, Any]]:
    """Random seeded customers (id, kind, name, e-mail text) to draw ids and terms from."""
    connection = admin_connection(system)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT id::text, kind, name, emails_text FROM customers.customers"
                " ORDER BY random() LIMIT %s",
                (size,),
            )
            return [
                {"id": row[0], "kind": row[1], "name": row[2], "emails": row[3]}
                for row in cursor.fetchall()
            ]
    finally:
        connection.close()


def search_terms(customers: list[dict[str, Any]], rng: random.Random) -> list[tuple[str, str]]:
    """``(tag, term)`` pairs, shuffled: two-character fragments of Chinese names (``cjk``),
    pinyin spellings of such fragments and of whole names (``pinyin``), and five-character
    fragments of e-mail addresses (``email``), all drawn from the seeded customers."""
    from services.customers.search import CJK_RUN, pinyin_tokens

    terms: list[tuple[str, str]] = []
    for customer in customers:
        name = customer["name"] or ""
        if customer["kind"] == "person" and CJK_RUN.fullmatch(name) and len(name) >= 2:
            start = rng.randrange(0, len(name) - 1)
            fragment = name[start : start + 2]
            terms.append(("cjk", fragment))
            spelled = name if rng.random() < 0.5 else fragment
            tokens = pinyin_tokens(spelled)
            if tokens:
                terms.append(("pinyin", max(tokens, key=len)))
        address = (customer["emails"] or "").split()[0] if customer["emails"] else ""
        # seeded addresses are user<index>.<8 random hex>@example.com: every customer has
        # "user" and most share their first digits, which real addresses do not, so the
        # fragment comes from the random part
        handle = address.split("@")[0].rpartition(".")[2]
        if len(handle) >= 5:
            start = rng.randrange(0, len(handle) - 4)
            terms.append(("email", handle[start : start + 5]))
    rng.shuffle(terms)
    return terms


# -- the phases ------------------------------------------------------------------------------


class Client:
    """The HTTP side of the bench: one aiohttp session (keep-alive, at most C connections)."""

    def __init__(self, url: str, concurrency: int):
        import aiohttp

        self.aiohttp = aiohttp
        self.session = aiohttp.ClientSession(
            base_url=url,
            connector=aiohttp.TCPConnector(limit=concurrency),
            timeout=aiohttp.ClientTimeout(total=30),
        )

    async def close(self) -> None:
        await self.session.close()

    async def call(
        self, method: str, path: str, expect: int, tag: str | None = None, **kwargs
    ) -> tuple[Outcome, bytes]:
        async with self.session.request(method, path, **kwargs) as response:
            body = await response.read()
            if response.status != expect:
                return Outcome(error=f"http {response.status}", tag=tag), body
            return (Outcome(tag=tag) if tag else OK), body

    async def login(self, email: str, password: str) -> str:
        outcome, body = await self.call(
            "POST", "/api/v1/auth/login", 200, json={"email": email, "password": password}
        )
        if outcome.error:
            raise SetupError(f"the bench admin cannot sign in ({outcome.error}): {body[:300]!r}")
        return json.loads(body)["access_token"]


def rpc_ping(system: System, concurrency: int, duration: float, warmup: float) -> dict[str, Any]:
    """The raw RPC baseline, from a process of its own (``bench/rpc_ping.py``)."""
    from shared.lifetime import die_with_parent

    process = subprocess.Popen(  # noqa: S603
        [
            sys.executable,
            "-m",
            "bench.rpc_ping",
            "--amqp-uri",
            system.amqp_uri or "",
            "--concurrency",
            str(concurrency),
            "--duration",
            str(duration),
            "--warmup",
            str(warmup),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent,  # it must not outlive the bench
    )
    try:
        out, err = process.communicate(timeout=duration + warmup + 120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    if process.returncode != 0:
        raise RuntimeError(f"bench.rpc_ping failed ({process.returncode}): {err[-2000:]}")
    return json.loads(out.strip().splitlines()[-1])


class Bench:
    def __init__(self, system: System, options: argparse.Namespace):
        self.system = system
        self.options = options
        self.rng = random.Random(options.seed)
        self.phases: list[dict[str, Any]] = []
        self.cpu = CpuMeter(system)
        self.customers: list[dict[str, Any]] = []

    def selected(self, name: str) -> bool:
        if self.options.only:
            return name in self.options.only
        return not (self.options.quick and name in QUICK_SKIPS)

    def settle(self) -> float:
        return settle(SETTLE_TIMEOUT["quick" if self.options.quick else "full"])

    def record(self, name: str, figures: dict[str, Any], cpu: dict[str, float], **extra) -> None:
        group, what = PHASES[name]
        phase = {"name": name, "group": group, "what": what, **figures, "cpu_percent": cpu}
        phase.update(extra)
        self.phases.append(phase)
        log(
            f"{name}: {figures.get('throughput_per_s')}/s, p50 {figures.get('p50_ms')} ms, "
            f"p95 {figures.get('p95_ms')} ms, p99 {figures.get('p99_ms')} ms, "
            f"errors {figures.get('errors')}"
        )

    def blocking(self, name: str, measure: Callable[[], Measurement | dict[str, Any]]) -> None:
        if not self.selected(name):
            return
        settled = self.settle()
        log(f"{name} (after {settled} s for the machine to settle) ...")
        cpu: dict[str, float] = {}
        with self.cpu.measure(cpu):
            outcome = measure()
        figures = outcome.summary() if isinstance(outcome, Measurement) else outcome
        self.record(name, figures, cpu, settled_s=settled)

    async def timed_at_half(self, name: str, request) -> None:
        """``name`` again, open loop, at half the throughput its closed loop reached."""
        half = f"{name}_half"
        peak = next((p for p in self.phases if p["name"] == name), None)
        if not self.selected(half) or not peak or not peak.get("throughput_per_s"):
            return
        rate = peak["throughput_per_s"] / 2
        settled = await asyncio.to_thread(self.settle)
        log(f"{half} at {rate:.1f}/s (after {settled} s for the machine to settle) ...")
        cpu: dict[str, float] = {}
        with self.cpu.measure(cpu):
            measurement = await run_async_at_rate(
                request, rate, self.options.duration, self.options.warmup
            )
        self.record(
            half, measurement.summary(), cpu, offered_per_s=round(rate, 1), settled_s=settled
        )

    async def timed(self, name: str, request, **extra) -> None:
        if not self.selected(name):
            return
        settled = await asyncio.to_thread(self.settle)
        log(f"{name} (after {settled} s for the machine to settle) ...")
        cpu: dict[str, float] = {}
        with self.cpu.measure(cpu):
            measurement = await run_async(
                request, self.options.concurrency, self.options.duration, self.options.warmup
            )
        self.record(name, measurement.summary(), cpu, settled_s=settled, **extra)

    def baselines_raw(self) -> None:
        from bench import raw

        c, d, w = self.options.concurrency, self.options.duration, self.options.warmup
        self.blocking("rpc_ping", lambda: rpc_ping(self.system, c, d, w))
        url = self.system.database_url
        self.blocking("pg_insert_temp", lambda: raw.pg_insert(url, c, d, w, temporary=True))
        self.blocking("pg_insert_logged", lambda: raw.pg_insert(url, c, d, w, temporary=False))
        self.blocking("amqp_publish", lambda: raw.amqp_publish(self.system.amqp_uri, c, d, w))

    async def http_phases(self, stage: str) -> None:
        client = Client(self.system.url, self.options.concurrency)
        try:
            if stage == "baselines":
                await self.http_baselines(client)
            else:
                await self.operations(client)
        finally:
            await client.close()

    async def http_baselines(self, client: Client) -> None:
        async def healthz(worker: int, iteration: int) -> Outcome:
            return (await client.call("GET", "/healthz", 200))[0]

        await self.timed("healthz", healthz)
        if self.selected("me"):
            headers = {"Authorization": f"Bearer {await self.token(client)}"}

            async def me(worker: int, iteration: int) -> Outcome:
                return (await client.call("GET", "/api/v1/me", 200, headers=headers))[0]

            await self.timed("me", me)

    async def token(self, client: Client) -> str:
        return await client.login(self.system.admin_email, self.system.admin_password)

    async def operations(self, client: Client) -> None:
        from services.customers.seed import synthetic_data

        credentials = {"email": self.system.admin_email, "password": self.system.admin_password}

        async def login(worker: int, iteration: int) -> Outcome:
            return (await client.call("POST", "/api/v1/auth/login", 200, json=credentials))[0]

        await self.timed("login", login)

        terms = search_terms(self.customers, self.rng) or [("none", "")]
        empty: dict[str, int] = defaultdict(int)
        sent: Counter = Counter()
        headers = {"Authorization": f"Bearer {await self.token(client)}"}

        async def search(worker: int, iteration: int) -> Outcome:
            tag, term = terms[(worker * 7919 + iteration * self.options.concurrency) % len(terms)]
            outcome, body = await client.call(
                "GET",
                "/api/v1/customers",
                200,
                tag=tag,
                headers=headers,
                params={"q": term, "limit": str(self.options.search_limit)},
            )
            sent[tag] += 1
            if not outcome.error and not json.loads(body).get("items"):
                empty[tag] += 1
            return outcome

        await self.timed(
            "search_customers",
            search,
            terms=dict(sorted(Counter(tag for tag, _ in terms).items())),
            what=f"GET /api/v1/customers?q=…&limit={self.options.search_limit}",
        )
        if self.phases and self.phases[-1]["name"] == "search_customers":
            phase = self.phases[-1]
            phase["term_examples"] = {
                tag: sorted({term for t, term in terms if t == tag})[:8]
                for tag in sorted({t for t, _ in terms})
            }
            phase["empty_results"] = {tag: empty.get(tag, 0) for tag in sorted(sent)}
            phase["requests_sent"] = dict(sorted(sent.items()))
        await self.timed_at_half("search_customers", search)

        ids = [customer["id"] for customer in self.customers] or ["00000000"]
        headers = {"Authorization": f"Bearer {await self.token(client)}"}

        async def timeline(worker: int, iteration: int) -> Outcome:
            customer_id = ids[(worker * 104729 + iteration * self.options.concurrency) % len(ids)]
            path = f"/api/v1/customers/{customer_id}/timeline"
            return (await client.call("GET", path, 200, headers=headers))[0]

        await self.timed("customer_timeline", timeline)

        headers = {"Authorization": f"Bearer {await self.token(client)}"}
        rng = random.Random(self.options.seed + 1)
        counter = iter(range(self.options.customers, 10**12))

        async def create(worker: int, iteration: int) -> Outcome:
            body = {**synthetic_data(rng, next(counter)), "force": True}
            return (
                await client.call("POST", "/api/v1/customers", 201, headers=headers, json=body)
            )[0]

        await self.timed("create_customer", create)
        await self.timed_at_half("create_customer", create)
        await self.commerce(client)

    async def commerce(self, client: Client) -> None:
        """Orders, payments and analytics (``bench/commerce.py``)."""
        from bench import commerce

        names = [name for name in PHASES if name.split("_")[0] in ("place", "pay", "list")]
        names += ["analytics_dashboard", "projection_lag", "analytics_rebuild"]
        if not any(self.selected(name) for name in names):
            return
        headers = {"Authorization": f"Bearer {await self.token(client)}"}
        ids = [customer["id"] for customer in self.customers]
        shop = commerce.Commerce(client, headers, ids, self.options.seed + 2)
        await shop.prepare()
        began = time.perf_counter()
        await self.timed("place_order", shop.place)
        await self.timed_at_half("place_order", shop.place)
        if self.selected("pay_order"):
            # both pay phases at up to 1.5 times the placing rate, with their warm-ups
            placed = next((p for p in self.phases if p["name"] == "place_order"), {})
            rate = placed.get("throughput_per_s") or 50.0
            seconds = self.options.duration + self.options.warmup
            concurrency = self.options.concurrency
            await shop.stock_up(int(rate * seconds * 2.5) + concurrency, concurrency)
        await self.timed("pay_order", shop.pay)
        await self.timed_at_half("pay_order", shop.pay)
        window = int(time.perf_counter() - began) + 5
        await self.timed("list_orders", shop.list_orders)
        await self.timed("analytics_dashboard", shop.dashboard)
        if self.selected("projection_lag"):
            await asyncio.sleep(2)  # the last payments' webhooks and events
            lag = await commerce.projection_lag(client, headers, window)
            self.record("projection_lag", lag, {}, orders=shop.placed, payments=shop.paid)
        if self.selected("analytics_rebuild"):
            log("analytics_rebuild ...")
            cpu: dict[str, float] = {}
            with self.cpu.measure(cpu):
                figures = await commerce.analytics_rebuild(
                    client, headers, timeout=max(600.0, self.options.customers / 1000)
                )
            figures["throughput_per_s"] = figures.get("events_per_second")  # events, not calls
            self.record("analytics_rebuild", figures, cpu)


# -- targets ---------------------------------------------------------------------------------


def targets(phases: list[dict[str, Any]], rss: dict[str, Any], customers: int) -> list[dict]:
    """The issue's targets that this run can speak to, each with the figure it measured."""
    by_name = {phase["name"]: phase for phase in phases}
    found: list[dict[str, Any]] = []
    search = by_name.get("search_customers")
    if search:
        at_scale = customers >= SEARCH_TARGET_CUSTOMERS
        half = by_name.get("search_customers_half")
        judged = half or search
        p95 = judged.get("p95_ms")
        measured = f"p95 {p95} ms with {customers:,}"
        if half:
            measured += (
                f" at {half.get('offered_per_s')}/s offered (half the peak); "
                f"{search.get('p95_ms')} ms at the peak ({search.get('throughput_per_s')}/s, "
                f"{search.get('concurrency')} clients)"
            )
        found.append(
            {
                "target": f"customer search p95 ≤ {SEARCH_P95_TARGET_MS:g} ms with 1,000,000",
                "measured": measured,
                "met": (
                    p95 is not None and p95 <= SEARCH_P95_TARGET_MS and not judged.get("errors")
                )
                if at_scale
                else None,
                "note": "; ".join(
                    note
                    for note, applies in (
                        ("open loop at half the closed loop's throughput, as for the writes", half),
                        (f"only {customers:,} customers seeded", not at_scale),
                    )
                    if applies
                )
                or None,
            }
        )
    for name in WRITES:
        half, peak = by_name.get(f"{name}_half"), by_name.get(name)
        if not half or not peak:
            continue
        p99 = half.get("p99_ms")
        found.append(
            {
                "target": f"{name} (a write) p99 ≤ {WRITE_P99_TARGET_MS:g} ms at half its peak",
                "measured": f"p99 {p99} ms at {half.get('offered_per_s')}/s offered "
                f"(peak {peak.get('throughput_per_s')}/s), {half.get('errors')} errors",
                "met": p99 is not None and p99 <= WRITE_P99_TARGET_MS and not half.get("errors"),
                "note": "open loop at half the closed loop's throughput",
            }
        )
    place, ping = by_name.get("place_order"), by_name.get("rpc_ping")
    if place and ping and ping.get("throughput_per_s"):
        share = place["throughput_per_s"] / ping["throughput_per_s"]
        found.append(
            {
                "target": f"place order ≥ {PLACE_ORDER_VS_RPC_TARGET:.0%} of the RPC no-op rate",
                "measured": f"{place['throughput_per_s']}/s = {share:.1%} of "
                f"{ping['throughput_per_s']}/s",
                "met": share >= PLACE_ORDER_VS_RPC_TARGET,
                "note": None,
            }
        )
    lag = by_name.get("projection_lag")
    if lag and lag.get("p99_ms") is not None:
        found.append(
            {
                "target": f"projection lag p99 ≤ {PROJECTION_LAG_P99_TARGET_MS:g} ms under load",
                "measured": f"p50 {lag['p50_ms']} ms, p99 {lag['p99_ms']} ms "
                f"over {lag.get('events')} events",
                "met": lag["p99_ms"] <= PROJECTION_LAG_P99_TARGET_MS,
                "note": "the order and payment phases, closed and open loop",
            }
        )
    rebuild = by_name.get("analytics_rebuild")
    if rebuild and rebuild.get("events_per_second"):
        enough = (rebuild.get("events") or 0) >= REBUILD_TARGET_EVENTS
        found.append(
            {
                "target": f"analytics rebuild ≥ {REBUILD_TARGET_PER_S:,} events/s over ≥ 1,000,000",
                "measured": f"{rebuild['events_per_second']:,.0f}/s over "
                f"{rebuild.get('events') or 0:,} events",
                "met": (rebuild["events_per_second"] >= REBUILD_TARGET_PER_S) if enough else None,
                "note": None if enough else "fewer than 1,000,000 events in this run",
            }
        )
    for process, figures in rss.items():
        found.append(
            {
                "target": f"{process}: RSS ≤ {RSS_TARGET_MB:g} MB",
                "measured": f"peak {figures['peak_mb']} MB",
                "met": figures["peak_mb"] <= RSS_TARGET_MB,
                "note": None,
            }
        )
    return found


# -- the run ---------------------------------------------------------------------------------


def machine(system: System) -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpus": psutil.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "loadavg_before": [round(value, 2) for value in os.getloadavg()],
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    with contextlib.suppress(Exception):
        connection = admin_connection(system)
        try:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT current_setting('server_version'), "
                    "current_setting('synchronous_commit'), current_setting('fsync'), "
                    "current_setting('shared_buffers'), current_setting('max_connections'), "
                    "current_setting('autovacuum')"
                )
                version, sync, fsync, buffers, connections, autovacuum = cursor.fetchone()
        finally:
            connection.close()
        info["postgresql"] = {
            "version": version,
            "synchronous_commit": sync,
            "fsync": fsync,
            "shared_buffers": buffers,
            "max_connections": connections,
            "autovacuum": autovacuum,
        }
    with contextlib.suppress(Exception):
        done = subprocess.run(
            ["rabbitmqctl", "-q", "version"],  # noqa: S607
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        info["rabbitmq"] = done.stdout.strip() or None
    return info


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__.split("\n\n")[0].strip("`")
    )
    parser.add_argument(
        "--quick", action="store_true", help="3,000 customers, 2.5 s phases: under 2 minutes"
    )
    parser.add_argument("--customers", type=int, help="customers to seed (1,000,000; quick 3,000)")
    parser.add_argument("--duration", type=float, help="measured seconds per phase (20; quick 2.5)")
    parser.add_argument(
        "--warmup", type=float, help="uncounted seconds before each phase (3; quick 0.5)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=CONCURRENCY, help=f"clients ({CONCURRENCY})"
    )
    parser.add_argument(
        "--processes",
        type=int,
        default=1,
        help="processes per service (cms run --processes; the gateway stays one): scale-out",
    )
    parser.add_argument("--only", help="comma-separated phases to run: " + ", ".join(PHASES))
    parser.add_argument(
        "--search-limit",
        type=int,
        default=SEARCH_LIMIT,
        help=f"page size of the searches ({SEARCH_LIMIT}, as the web UI asks)",
    )
    parser.add_argument("--seed", type=int, default=0, help="random seed of data and terms")
    parser.add_argument(
        "--keep-database",
        action="store_true",
        help="leave the seeded database behind for investigation (it is dropped otherwise)",
    )
    parser.add_argument(
        "--no-analyze",
        dest="analyze",
        action="store_false",
        help="skip the ANALYZE of the customers schema after seeding",
    )
    parser.add_argument(
        "--database",
        help="measure an existing bench database (one left by --keep-database) instead of "
        "seeding a new one; it is kept",
    )
    parser.add_argument("--output", type=Path, default=results.RESULTS_DIR, help="results folder")
    options = parser.parse_args(argv)
    defaults = QUICK if options.quick else FULL
    for key, value in defaults.items():
        if getattr(options, key) is None:
            setattr(options, key, value)
    if options.only:
        options.only = {name.strip() for name in options.only.split(",") if name.strip()}
        unknown = options.only - set(PHASES)
        if unknown:
            parser.error(f"unknown phases: {', '.join(sorted(unknown))}")
    if options.database and not options.database.startswith("cms_bench_"):
        parser.error("--database takes only a bench database (cms_bench_...): the bench writes")
    if not 1 <= options.search_limit <= 200:
        parser.error("--search-limit must be within 1..200")
    if not 1 <= options.processes <= 8:
        parser.error("--processes must be within 1..8")
    if options.concurrency < 1 or options.duration <= 0 or options.warmup < 0:
        parser.error("--concurrency must be ≥ 1, --duration > 0, --warmup ≥ 0")
    return options


def _stop_on_signals() -> None:
    """Ctrl-C, SIGTERM and SIGHUP all end the run through its teardown (a shell that starts
    the bench in the background may have left SIGINT ignored)."""

    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, handler)
    with contextlib.suppress(AttributeError, ValueError):
        signal.signal(signal.SIGHUP, handler)


def run(options: argparse.Namespace) -> dict[str, Any]:
    from shared.provision import provision

    started_at = datetime.now(UTC)
    clock = time.perf_counter()
    system = System.from_environment()
    system.keep_database = options.keep_database
    system.processes_per_service = options.processes
    if options.database:
        system.name, system.reuse_database = options.database, True
    result: dict[str, Any] = {
        "started_at": started_at.isoformat(),
        "git": results.git_state(),
        "config": {
            "quick": options.quick,
            "customers": options.customers,
            "concurrency": options.concurrency,
            "duration_s": options.duration,
            "warmup_s": options.warmup,
            "search_limit": options.search_limit,
            "seed": options.seed,
            "analyze_after_seeding": options.analyze,
            "only": sorted(options.only) if options.only else None,
            "database": system.name,
            "reused_database": bool(options.database),
            "vhost": system.name,
            "login_rate_limit": system.login_rate_limit,
            "cms_max_workers": int(os.environ.get("CMS_MAX_WORKERS") or 10),
            "processes_per_service": options.processes,
            "load_generator": "asyncio + aiohttp closed loop (bench/load.py); raw baselines "
            "from threads; RPC ping from a separate eventlet process",
        },
        "not_measured": NOT_MEASURED,
    }
    sampler: Sampler | None = None
    try:
        settings = system.prepare()
        log(f"database and vhost {system.name}; provisioning ...")
        begun = time.perf_counter()
        provision(settings)
        result["provision_s"] = round(time.perf_counter() - begun, 2)
        result["config"]["machine"] = machine(system)
        if options.database:
            options.customers = result["config"]["customers"] = count_customers(system)
            log(f"reusing {system.name} with {options.customers:,} customers (not seeded)")
        else:
            log(f"seeding {options.customers:,} customers ...")
            result["seeding"] = seed(settings, options.customers)
            log(
                f"seeded {options.customers:,} customers in {result['seeding']['seconds']} s "
                f"({result['seeding']['per_s']:,.0f}/s)"
            )
        if options.analyze:
            result["analyze_s"] = analyze(system)
            log(f"analyzed the customers schema in {result['analyze_s']} s")
        begun = time.perf_counter()
        system.start()
        result["startup_s"] = round(time.perf_counter() - begun, 2)
        log(f"CMS ready at {system.url} after {result['startup_s']} s")
        if options.database:
            system.add_admin()
        sampler = Sampler(system)
        sampler.start()
        result["relay"] = wait_for_relay(system, timeout=max(120.0, options.customers / 200))
        log(f"outbox relay: {result['relay']}")
        result["consumers"] = wait_for_consumers(
            system, timeout=max(120.0, options.customers / 100)
        )
        log(f"consumers of the customers' events: {result['consumers']}")
        result["queues"] = wait_for_queues(system, timeout=max(120.0, options.customers / 100))
        log(f"queued deliveries drained: {result['queues']}")
        bench = Bench(system, options)
        bench.customers = sample_customers(system)
        try:
            asyncio.run(bench.http_phases("baselines"))
            bench.baselines_raw()
            asyncio.run(bench.http_phases("operations"))
        finally:
            result["phases"] = bench.phases
        sampler.stop()
        sampler.sample()
        result["rss"] = sampler.figures()
        result["rss_samples"] = sampler.samples
        result["targets"] = targets(result["phases"], result["rss"], options.customers)
        result["config"]["machine"]["loadavg_after"] = [round(v, 2) for v in os.getloadavg()]
    except BaseException as exc:
        result["error"] = f"{type(exc).__name__}: {exc}"
        if sampler is not None:
            sampler.stop()
            result.setdefault("rss", sampler.figures())
        raise
    finally:
        kept = options.keep_database or options.database
        log(
            f"stopping CMS, deleting vhost {system.name}"
            + ("" if kept else ", dropping the database")
            + " ..."
        )
        problems = system.close()
        for problem in problems:
            log(f"teardown: {problem}")
        result["teardown_problems"] = problems
        result["finished_at"] = datetime.now(UTC).isoformat()
        result["total_s"] = round(time.perf_counter() - clock, 1)
        if result.get("phases") or "error" not in result:
            path = results.write_result(result, options.output)
            result["path"] = str(path)
            log(f"wrote {path}")
    return result


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    _stop_on_signals()
    try:
        result = run(options)
    except KeyboardInterrupt:
        log("interrupted: everything started was stopped and removed")
        return 130
    except SetupError as exc:
        log(str(exc))
        return 2
    print(results.markdown(result))
    if result.get("path"):
        print(f"results: {os.path.relpath(result['path'])}")
    return 0
