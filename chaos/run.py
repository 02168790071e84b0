"""Chaos run: sustained orders and cash payments through the gateway while RabbitMQ restarts,
every service process is SIGKILLed and started again, and PostgreSQL restarts; then the
invariants are checked and printed.

    python -m chaos                 # make chaos: the real servers restart (see --faults)
    python -m chaos --quick --faults proxy   # the reduced run of the test suite

``--faults real`` restarts the local RabbitMQ (``rabbitmqctl stop_app`` / ``start_app``) and
PostgreSQL (``pg_ctlcluster --skip-systemctl-redirect <version> main restart``): everything
else using them on this machine sees the outage too. ``--faults proxy`` routes this system's
connections through TCP proxies and cuts those instead (the services see the same thing: every
connection dropped, new ones refused for a while), so it can run beside other work.

The system runs on a database and a RabbitMQ virtual host of its own, dropped afterwards.
"""

import eventlet

eventlet.monkey_patch()

import argparse  # noqa: E402
import contextlib  # noqa: E402
import dataclasses  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter, defaultdict  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote, urlsplit, urlunsplit  # noqa: E402

import requests  # noqa: E402
from kombu import Connection, Exchange, Queue  # noqa: E402
from sqlalchemy import create_engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from chaos.proxy import ProxyProcess  # noqa: E402
from shared.config import SERVICES, load_settings  # noqa: E402
from shared.lifetime import die_with_parent  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RPC_TIMEOUT = 5.0
#: a response later than this is a hang (the gateway answers 503 after RPC_TIMEOUT)
HANG_AFTER = RPC_TIMEOUT * 2 + 5
ADMIN_EMAIL = "chaos-admin@example.com"
ADMIN_PASSWORD = "Chaos-Monkey-Passphrase-7"


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _rabbitmqctl(*args: str, check: bool = True) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=check, capture_output=True)


# --- the system under test -------------------------------------------------------------------


@dataclasses.dataclass
class System:
    """Every service and the gateway as processes of this script (so a killed one can be
    started again), on their own database and virtual host."""

    env: dict
    url: str
    processes: dict = dataclasses.field(default_factory=dict)
    died: dict = dataclasses.field(default_factory=dict)  # name → exit code, before its SIGKILL

    def spawn(self, name: str) -> None:
        self.processes[name] = subprocess.Popen(
            [sys.executable, "-m", "shared.serve", name],
            cwd=ROOT,
            env=self.env,
            preexec_fn=die_with_parent,
        )

    def start(self) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "shared.cli", "provision"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise SystemExit(f"provisioning failed: {done.stderr}")
        for name in ("gateway", *SERVICES):
            self.spawn(name)
        self.wait_ready(120)

    def wait_ready(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with contextlib.suppress(requests.RequestException):
                if requests.get(f"{self.url}/readyz", timeout=5).status_code == 200:
                    return
            time.sleep(0.5)
        raise SystemExit(f"the system is not ready after {seconds:g} s")

    def kill_and_restart(self, name: str) -> None:
        process = self.processes[name]
        if process.poll() is not None:  # it ended by itself before its turn: that is a failure
            self.died[name] = process.returncode
        process.send_signal(signal.SIGKILL)
        process.wait()
        time.sleep(1)
        self.spawn(name)

    def stop(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.terminate()
        for process in self.processes.values():
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()


class Faults:
    """Restarts of the broker and the database: real ones, or cuts of this system's proxies."""

    def __init__(self, mode: str, pg_proxy=None, amqp_proxy=None):
        self.mode, self.pg_proxy, self.amqp_proxy = mode, pg_proxy, amqp_proxy

    def restart_rabbitmq(self, down: float) -> None:
        if self.mode == "real":
            _rabbitmqctl("stop_app")
            time.sleep(down)
            _rabbitmqctl("start_app")
        else:
            self.amqp_proxy.cut()
            time.sleep(down)
            self.amqp_proxy.restore()

    def restart_postgresql(self, down: float) -> None:
        if self.mode == "real":
            version = sorted(os.listdir("/etc/postgresql"))[-1]
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"],
                check=True,
                capture_output=True,
            )
        else:
            self.pg_proxy.cut()
            time.sleep(down)
            self.pg_proxy.restore()


# --- the load --------------------------------------------------------------------------------


@dataclasses.dataclass
class Outcome:
    kind: str  # "order" | "payment"
    request_id: str
    status: int | None  # None: no HTTP answer (connection refused or reset)
    seconds: float
    body: dict | None = None
    idempotency_key: str | None = None
    order_id: str | None = None
    error: str | None = None
    started: str = ""  # wall clock, to find the request in the services' logs


class Load:
    def __init__(self, url: str, token: str, customers: list[str], products: list[dict]):
        self.url, self.token = url, token
        self.customers, self.products = customers, products
        self.outcomes: list[Outcome] = []
        self.running = True

    def _call(self, kind: str, path: str, body: dict, headers: dict | None = None) -> Outcome:
        request_id = f"chaos-{kind}-{uuid.uuid4().hex}"
        started_at = time.strftime("%H:%M:%S")
        started = time.monotonic()
        try:
            response = requests.post(
                self.url + path,
                json=body,
                timeout=HANG_AFTER + 30,
                headers={
                    "Authorization": f"Bearer {self.token}",
                    "X-Request-ID": request_id,
                    **(headers or {}),
                },
            )
            try:
                answer = response.json()
            except ValueError:
                answer = {"text": response.text[:200]}
            outcome = Outcome(kind, request_id, response.status_code, 0, answer)
        except requests.RequestException as exc:
            outcome = Outcome(kind, request_id, None, 0, error=type(exc).__name__)
        outcome.seconds = time.monotonic() - started
        outcome.started = started_at
        self.outcomes.append(outcome)
        return outcome

    def worker(self) -> None:
        while self.running:
            customer = random.choice(self.customers)
            product = random.choice(self.products)
            body = {
                "customer_id": customer,
                "lines": [{"product_id": product["id"], "quantity": random.randint(1, 3)}],
            }
            # placed with an Idempotency-Key, retried with the same key until it gets a
            # definite answer, as a careful client does: one order per key
            key = f"chaos-order-{uuid.uuid4().hex}"
            for _ in range(8):
                placed = self._call("order", "/api/v1/orders", body, {"Idempotency-Key": key})
                placed.idempotency_key = key
                if placed.status is not None and placed.status < 500:
                    break
                time.sleep(1)
            if placed.status != 201:
                time.sleep(0.3)
                continue
            order = placed.body
            # paid in one or two cash payments; each with an Idempotency-Key, retried with the
            # same key until it gets a definite answer (as a careful client does)
            first = order["total"] if random.random() < 0.5 else order["total"] // 2
            for amount in (first, order["total"] - first):
                if amount <= 0:
                    continue
                key = f"chaos-{uuid.uuid4().hex}"
                for _ in range(8):
                    paid = self._call(
                        "payment",
                        "/api/v1/payments/manual",
                        {
                            "order_id": order["id"],
                            "method": "cash",
                            "amount": amount,
                            "currency": order["currency"],
                        },
                        headers={"Idempotency-Key": key},
                    )
                    paid.idempotency_key, paid.order_id = key, order["id"]
                    if paid.status is not None and paid.status < 500:
                        break
                    time.sleep(1)


# --- outside subscriber ----------------------------------------------------------------------


def declare_subscriber(amqp_uri: str, name: str) -> list[Queue]:
    queues = []
    with Connection(amqp_uri, connect_timeout=5) as connection:
        channel = connection.channel()
        for service in SERVICES:
            exchange = Exchange(f"{service}.events", type="topic", durable=True)
            queue = Queue(f"{name}-{service}", exchange=exchange, routing_key="#", durable=True)
            queue(channel).declare()
            queues.append(queue)
    return queues


def drain(amqp_uri: str, queues: list[Queue], expected: set[str], seconds: float) -> Counter:
    seen: Counter = Counter()
    deadline = time.monotonic() + seconds
    with Connection(amqp_uri, connect_timeout=5) as connection:

        def on_message(body, message):
            seen[body.get("event_id")] += 1
            message.ack()

        with connection.Consumer(queues, accept=["json"], callbacks=[on_message]):
            while not expected <= set(seen) and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError, OSError):
                    connection.drain_events(timeout=1)
            # a little longer, to see duplicates that are still on their way
            end = time.monotonic() + 2
            while time.monotonic() < end:
                with contextlib.suppress(TimeoutError, OSError):
                    connection.drain_events(timeout=0.5)
    return seen


# --- checks ----------------------------------------------------------------------------------


def events(database_url: str) -> dict[str, list[dict]]:
    engine = create_engine(database_url)
    found = {}
    try:
        with engine.connect() as conn:
            for service in SERVICES:
                if not conn.execute(
                    text("SELECT to_regclass(:t)"), {"t": f'"{service}".events'}
                ).scalar():
                    continue
                rows = conn.execute(
                    text(
                        f"SELECT event_id::text AS event_id, event_type, stream_id::text AS "
                        f'stream_id, payload, metadata FROM "{service}".events '
                        "ORDER BY global_position"
                    )
                ).mappings()
                found[service] = [dict(row) for row in rows]
    finally:
        engine.dispose()
    return found


class Report:
    def __init__(self):
        self.lines: list[tuple[bool, str]] = []

    def check(self, ok: bool, text_: str) -> None:
        self.lines.append((ok, text_))
        log(("PASS " if ok else "FAIL ") + text_)

    @property
    def ok(self) -> bool:
        return all(ok for ok, _ in self.lines)


def get(url: str, token: str, path: str) -> dict:
    for _ in range(30):
        with contextlib.suppress(requests.RequestException):
            response = requests.get(
                url + path, headers={"Authorization": f"Bearer {token}"}, timeout=15
            )
            if response.status_code == 200:
                return response.json()
        time.sleep(1)
    raise RuntimeError(f"GET {path} does not answer 200")


def all_pages(url: str, token: str, path: str) -> list[dict]:
    items, cursor = [], None
    while True:
        separator = "&" if "?" in path else "?"
        page = get(
            url, token, f"{path}{separator}limit=200" + (f"&cursor={cursor}" if cursor else "")
        )
        items.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return items


def verify(system: System, token: str, load: Load, subscriber, known: set[str]) -> Report:
    report = Report()
    url, database_url = system.url, system.env["CMS_DATABASE_URL"]
    outcomes = load.outcomes
    statuses = Counter(o.status for o in outcomes)
    log(f"requests: {len(outcomes)}; statuses: {dict(statuses)}")
    hangs = [o for o in outcomes if o.seconds > HANG_AFTER]
    hung = [
        (o.kind, o.status, round(o.seconds, 1), o.error, o.request_id, o.started) for o in hangs
    ]
    report.check(
        not hangs,
        f"no request hung (all answered within {HANG_AFTER:g} s): {len(hangs)} did {hung[:3]}",
    )
    errors = [o for o in outcomes if o.status is not None and o.status >= 500 and o.status != 503]
    report.check(not errors, f"no 5xx but 503: {[(o.status, o.body) for o in errors][:3]}")
    unavailable = [o for o in outcomes if o.status == 503]
    bad_503 = [
        o for o in unavailable if not isinstance(o.body, dict) or o.body.get("status") != 503
    ]
    report.check(not bad_503, f"every 503 is a problem response ({len(unavailable)} during faults)")

    # settle: orders whose payments all succeeded become paid
    orders_ok = {o.body["id"]: o for o in outcomes if o.kind == "order" and o.status == 201}
    payments_ok = [o for o in outcomes if o.kind == "payment" and o.status == 201]
    deadline = time.monotonic() + 120
    while True:
        orders = {oid: get(url, token, f"/api/v1/orders/{oid}") for oid in orders_ok}
        payments = {
            oid: all_pages(url, token, f"/api/v1/payments?order_id={oid}") for oid in orders_ok
        }
        captured = {
            oid: sum(
                p["amount"]
                for p in items
                if p["status"] in ("captured", "refunded", "partially_refunded")
            )
            for oid, items in payments.items()
        }
        mismatched = [oid for oid in orders if orders[oid]["paid_amount"] != captured[oid]]
        if not mismatched or time.monotonic() > deadline:
            break
        time.sleep(2)
    report.check(
        bool(orders_ok), f"orders placed with 2xx: {len(orders_ok)}; payments: {len(payments_ok)}"
    )
    report.check(
        not mismatched,
        "each order's paid amount equals the sum of its captured payments "
        f"({len(mismatched)} differ)",
    )

    logged = events(database_url)
    per_request = Counter(
        (e["metadata"].get("request_id"), e["event_type"]) for rows in logged.values() for e in rows
    )
    # the attempts of one order share its Idempotency-Key; its order.placed event carries the
    # request id of the attempt that placed it
    attempts = defaultdict(list)
    for o in outcomes:
        if o.kind == "order":
            attempts[o.idempotency_key].append(o)
    placed = {
        key: sum(per_request[(o.request_id, "order.placed")] for o in tries)
        for key, tries in attempts.items()
    }
    twice = [
        o.idempotency_key
        for o in outcomes
        if o.kind == "order" and o.status == 201
        if placed[o.idempotency_key] != 1
    ]
    report.check(
        not twice,
        f"every 2xx order exists exactly once ({len(twice)} do not: "
        f"{[(k, placed[k]) for k in twice][:3]})",
    )
    captured_events = Counter(
        e["stream_id"] for e in logged.get("payments", []) if e["event_type"] == "payment.captured"
    )
    twice_captured = [pid for pid, n in captured_events.items() if n > 1]
    report.check(not twice_captured, f"no payment captured twice ({len(twice_captured)} were)")
    by_key = defaultdict(set)
    for o in payments_ok:
        by_key[o.idempotency_key].add(o.body["id"])
    split = [key for key, ids in by_key.items() if len(ids) > 1]
    report.check(
        not split, f"retries with one Idempotency-Key made one payment ({len(split)} made more)"
    )
    # an order whose first try got no answer (or a 503) may have been placed: its retries
    # with the same key must have found that order, not placed another
    doubled = [key for key, n in placed.items() if n > 1]
    retried = sum(1 for tries in attempts.values() if len(tries) > 1)
    report.check(
        not doubled,
        f"retries with one Idempotency-Key placed one order ({retried} keys retried, "
        f"{len(doubled)} placed more than one)",
    )
    missing_payments = [
        o.body["id"]
        for o in payments_ok
        if o.body["id"] not in {p["id"] for p in payments.get(o.order_id, [])}
    ]
    report.check(
        not missing_payments, f"every 2xx payment exists ({len(missing_payments)} missing)"
    )

    # analytics: revenue equals the captured money (settles through its consumer)
    expected_revenue = sum(
        p["amount"] for items in payments.values() for p in items if p["status"] == "captured"
    )
    deadline = time.monotonic() + 120
    while True:
        overview = get(url, token, "/api/v1/analytics/overview?currency=CNY")
        revenue = sum(row.get("revenue") or 0 for row in overview)
        if revenue == expected_revenue or time.monotonic() > deadline:
            break
        time.sleep(2)
    report.check(
        revenue == expected_revenue,
        f"analytics revenue {revenue} equals the captured payments {expected_revenue}",
    )

    # every event reached the outside subscriber at least once (and was counted)
    expected_ids = {e["event_id"] for rows in logged.values() for e in rows} - known
    seen = drain(system.env["CMS_AMQP_URI_DIRECT"], subscriber, expected_ids, 120)
    missing = expected_ids - set(seen)
    report.check(
        not missing, f"every event reached the outside subscriber ({len(missing)} did not)"
    )
    duplicates = sum(1 for event_id in expected_ids if seen[event_id] > 1)
    log(
        f"events: {len(expected_ids)}; delivered more than once (allowed: at least once): "
        f"{duplicates}"
    )
    # every 2xx write left one audit entry (entries the users service missed during a fault
    # are retried by the gateway in the background, so they may come a little later)
    written = [o.request_id for o in outcomes if o.status in (200, 201)]
    deadline = time.monotonic() + 90
    while True:
        audited = audit_counts(database_url, written)
        unaudited = [r for r in written if audited[r] != 1]
        if not unaudited or time.monotonic() > deadline:
            break
        time.sleep(3)
    report.check(
        not unaudited,
        f"every 2xx write has exactly one audit entry ({len(unaudited)} do not: "
        f"{[(r, audited[r]) for r in unaudited][:3]})",
    )
    applied_twice = _applied_twice(database_url)
    report.check(not applied_twice, f"every consumed event applied once: {applied_twice or 'yes'}")
    return report


def audit_counts(database_url: str, request_ids: list[str]) -> Counter:
    """How many audit entries each of these requests has."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT request_id, count(*) FROM users.audit_log "
                    "WHERE request_id = ANY(:ids) GROUP BY request_id"
                ),
                {"ids": request_ids},
            ).all()
    finally:
        engine.dispose()
    return Counter({request_id: n for request_id, n in rows})


def _applied_twice(database_url: str) -> dict:
    """Consumers record (consumer, event_id) with their effect: a second row would mean a
    second application."""
    engine = create_engine(database_url)
    found = {}
    try:
        with engine.connect() as conn:
            for service in SERVICES:
                if not conn.execute(
                    text("SELECT to_regclass(:t)"), {"t": f'"{service}".processed_events'}
                ).scalar():
                    continue
                n = conn.execute(
                    text(
                        f'SELECT count(*) FROM (SELECT consumer, event_id FROM "{service}".'
                        "processed_events GROUP BY 1, 2 HAVING count(*) > 1) AS twice"
                    )
                ).scalar()
                if n:
                    found[service] = n
    finally:
        engine.dispose()
    return found


# --- the run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="chaos", description=__doc__.split("\n\n")[0])
    parser.add_argument("--faults", choices=("real", "proxy"), default="real")
    parser.add_argument("--quick", action="store_true", help="the reduced run of the test suite")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the database and vhost")
    args = parser.parse_args(argv)
    rabbit_restarts = 1 if args.quick else 3
    workers = args.workers or (3 if args.quick else 6)
    down = 2.0 if args.quick else 4.0
    if args.faults == "real" and not (
        shutil.which("rabbitmqctl") and shutil.which("pg_ctlcluster")
    ):
        raise SystemExit("--faults real needs rabbitmqctl and pg_ctlcluster on this machine")

    base = load_settings()
    admin_url = make_url(base.database_url)
    database = f"cms_chaos_{uuid.uuid4().hex[:8]}"
    vhost = f"cms_chaos_{uuid.uuid4().hex[:8]}"
    amqp = urlsplit(base.amqp_uri)
    _rabbitmqctl("add_vhost", vhost)
    _rabbitmqctl("set_permissions", "-p", vhost, amqp.username or "guest", ".*", ".*", ".*")
    direct_amqp = urlunsplit(amqp._replace(path="/" + quote(vhost, safe="")))
    database_url = admin_url.set(database=database).render_as_string(hide_password=False)
    pg_proxy = amqp_proxy = None
    service_db, service_amqp = database_url, direct_amqp
    if args.faults == "proxy":
        pg_proxy = ProxyProcess(admin_url.host or "127.0.0.1", admin_url.port or 5432)
        amqp_proxy = ProxyProcess(amqp.hostname or "127.0.0.1", amqp.port or 5672)
        service_db = admin_url.set(
            database=database, host="127.0.0.1", port=pg_proxy.port
        ).render_as_string(hide_password=False)
        netloc = amqp.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{amqp_proxy.port}"
        service_amqp = urlunsplit(amqp._replace(netloc=netloc, path="/" + quote(vhost, safe="")))
    port = _free_port()
    env = dict(
        os.environ,
        CMS_DATABASE_URL=service_db,
        CMS_AMQP_URI=service_amqp,
        CMS_AMQP_URI_DIRECT=direct_amqp,
        CMS_RPC_TIMEOUT=str(RPC_TIMEOUT),
        CMS_GATEWAY_PORT=str(port),
        CMS_LOG_LEVEL=os.environ.get("CHAOS_LOG_LEVEL", "ERROR"),
        CMS_AMQP_HEARTBEAT="5",
        PYTHONUNBUFFERED="1",
    )
    system = System(env=env, url=f"http://127.0.0.1:{port}")
    faults = Faults(args.faults, pg_proxy, amqp_proxy)
    report = Report()
    try:
        log(f"starting the system (database {database}, vhost {vhost}, faults: {args.faults})")
        system.start()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "shared.cli",
                "create-admin",
                "--email",
                ADMIN_EMAIL,
                "--password",
                ADMIN_PASSWORD,
            ],
            cwd=ROOT,
            env=env,
            check=True,
            capture_output=True,
        )
        token = requests.post(
            f"{system.url}/api/v1/auth/login",
            json={"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD},
            timeout=15,
        ).json()["access_token"]
        subscriber = declare_subscriber(direct_amqp, f"chaos-outside-{uuid.uuid4().hex[:6]}")
        known = {e["event_id"] for rows in events(database_url).values() for e in rows}
        products = [
            requests.post(
                f"{system.url}/api/v1/products",
                json={
                    "sku": f"CH-{i}-{uuid.uuid4().hex[:6]}",
                    "name": f"茶 {i}",
                    "price": 1000 + 250 * i,
                    "currency": "CNY",
                },
                headers={"Authorization": f"Bearer {token}"},
                timeout=15,
            ).json()
            for i in range(3)
        ]
        customers = [
            requests.post(
                f"{system.url}/api/v1/customers",
                json={"kind": "person", "name": f"混沌 {i}", "force": True},
                headers={"Authorization": f"Bearer {token}"},
                timeout=15,
            ).json()["id"]
            for i in range(8)
        ]
        time.sleep(3)  # the orders service learns of the customers from their events
        load = Load(system.url, token, customers, products)
        pool = eventlet.GreenPool(workers)
        for _ in range(workers):
            pool.spawn_n(load.worker)
        log(f"load running: {workers} clients placing and paying orders")
        time.sleep(5)
        for index in range(rabbit_restarts):
            log(f"RabbitMQ restart {index + 1}/{rabbit_restarts}")
            faults.restart_rabbitmq(down)
            time.sleep(4)
        for name in ("gateway", *SERVICES):
            log(f"SIGKILL {name} and start it again")
            system.kill_and_restart(name)
            time.sleep(3)
        log("PostgreSQL restart")
        faults.restart_postgresql(down)
        time.sleep(5)
        load.running = False
        pool.waitall()
        exited = dict(system.died)
        exited.update(
            (name, process.returncode)
            for name, process in system.processes.items()
            if process.poll() is not None
        )
        report.check(not exited, f"every process stayed up by itself (exited: {exited or 'none'})")
        if exited:
            raise SystemExit(1)
        log("load stopped; waiting for the system to be ready and settle")
        system.wait_ready(120)
        checked = verify(system, token, load, subscriber, known)
        report.lines.extend(checked.lines)
    finally:
        system.stop()
        if pg_proxy:
            pg_proxy.stop()
        if amqp_proxy:
            amqp_proxy.stop()
        if not args.keep:
            from shared.provision import drop_database

            with contextlib.suppress(Exception):
                drop_database(dataclasses.replace(base, database_url=database_url))
            _rabbitmqctl("delete_vhost", vhost, check=False)
    log(json.dumps({"passed": report.ok, "checks": len(report.lines)}))
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
