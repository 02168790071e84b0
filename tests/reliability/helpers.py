"""Helpers of the reliability tests: a whole system with N processes per service, an outside
subscriber of every event exchange, a customer → order → cash payment flow, and the facts the
tests check (events per request, orders' paid amounts)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import psutil
from kombu import Connection, Exchange, Queue
from sqlalchemy import create_engine, text

from gateway.tests.conftest import Api
from shared.lifetime import die_with_parent
from tests.stack import ROOT, Stack, free_port

ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "Correct-Horse-Battery-42"


def start_scaled_stack(database_url: str, amqp_uri: str, processes: int, **env: str) -> Stack:
    """``cms run --processes N`` on its own database and virtual host."""
    port = free_port()
    environment = dict(
        os.environ,
        CMS_DATABASE_URL=database_url,
        CMS_AMQP_URI=amqp_uri,
        CMS_GATEWAY_PORT=str(port),
        CMS_LOG_LEVEL="WARNING",
        CMS_ADMIN_EMAIL=ADMIN_EMAIL,
        CMS_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PYTHONUNBUFFERED="1",
        **env,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "shared.cli", "run", "--processes", str(processes)],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
        preexec_fn=die_with_parent,
    )
    stack = Stack(process=process, url=f"http://127.0.0.1:{port}", env=environment)
    stack.admin_email, stack.admin_password = ADMIN_EMAIL, ADMIN_PASSWORD

    def pump() -> None:
        for line in process.stdout:
            stack.output.append(line)

    threading.Thread(target=pump, daemon=True).start()
    return stack


def service_processes(stack: Stack) -> dict[str, list[psutil.Process]]:
    """The running ``shared.serve <name>`` processes under a stack, by name."""
    found: dict[str, list[psutil.Process]] = {}
    for child in psutil.Process(stack.process.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            command = child.cmdline()
            if "shared.serve" in command:
                found.setdefault(command[-1], []).append(child)
    return found


def stop(stack: Stack) -> None:
    if stack.process.poll() is None:
        stack.process.send_signal(signal.SIGINT)
    try:
        stack.process.wait(60)
    except subprocess.TimeoutExpired:
        stack.kill()


class Subscriber:
    """An outside system: one durable queue bound with ``#`` to each service's exchange."""

    def __init__(self, amqp_uri: str, services: list[str]):
        self.connection = Connection(amqp_uri, connect_timeout=5)
        self.name = f"outside-{uuid.uuid4().hex[:8]}"
        self.queues = []
        channel = self.connection.channel()
        for service in services:
            exchange = Exchange(f"{service}.events", type="topic", durable=True)
            queue = Queue(
                f"{self.name}-{service}", exchange=exchange, routing_key="#", durable=True
            )
            queue(channel).declare()
            self.queues.append(queue)
        self.received: list[dict] = []

    def drain(self, until, timeout: float = 60.0) -> list[dict]:
        """Collect envelopes until ``until(received)`` is true or the time is up."""
        deadline = time.monotonic() + timeout
        with self.connection.Consumer(
            self.queues, accept=["json"], callbacks=[self._on_message], prefetch_count=200
        ):
            while not until(self.received) and time.monotonic() < deadline:
                with contextlib.suppress(TimeoutError, OSError):
                    self.connection.drain_events(timeout=1)
        return self.received

    def _on_message(self, body, message) -> None:
        self.received.append(body)
        message.ack()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            channel = self.connection.channel()
            for queue in self.queues:
                queue(channel).delete()
        self.connection.release()


def ok(response, *statuses: int) -> dict:
    assert response.status_code in (statuses or (200,)), (response.status_code, response.text)
    return response.json() if response.content else {}


def sign_in(stack: Stack) -> tuple[Api, str]:
    api = Api(stack.url, ip="127.0.0.1")
    return api, api.login(stack.admin_email, stack.admin_password)["access_token"]


def product(api: Api, token: str) -> dict:
    return ok(
        api.call(
            "POST",
            "/api/v1/products",
            token=token,
            json={
                "sku": f"R-{uuid.uuid4().hex[:8]}",
                "name": "普洱茶",
                "price": 2500,
                "currency": "CNY",
            },
        ),
        201,
    )


def sale(api: Api, token: str, product_id: str, marker: str, index: int) -> dict:
    """One customer, one order of two items, paid in cash; every request with its own id."""
    ids = {kind: f"{marker}-{kind}-{index}" for kind in ("customer", "order", "payment")}
    customer = ok(
        api.call(
            "POST",
            "/api/v1/customers",
            token=token,
            headers={"X-Request-ID": ids["customer"]},
            json={"kind": "person", "name": f"并发 {marker} {index}", "force": True},
        ),
        201,
    )
    body = {"customer_id": customer["id"], "lines": [{"product_id": product_id, "quantity": 2}]}
    deadline = time.monotonic() + 30
    while True:  # the orders service learns of the customer from its events
        placed = api.call(
            "POST",
            "/api/v1/orders",
            token=token,
            json=body,
            headers={"X-Request-ID": ids["order"]},
        )
        if placed.status_code not in (404, 422) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    order = ok(placed, 201)
    payment = ok(
        api.call(
            "POST",
            "/api/v1/payments/manual",
            token=token,
            headers={"X-Request-ID": ids["payment"]},
            json={
                "order_id": order["id"],
                "method": "cash",
                "amount": order["total"],
                "currency": order["currency"],
            },
        ),
        201,
    )
    return {"customer": customer, "order": order, "payment": payment, "request_ids": ids}


def events(database_url: str, schema: str) -> list[dict]:
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            exists = conn.execute(
                text("SELECT to_regclass(:t)"), {"t": f'"{schema}".events'}
            ).scalar()
            if not exists:
                return []
            rows = conn.execute(
                text(
                    f"SELECT event_id::text, event_type, stream_id::text, metadata "
                    f'FROM "{schema}".events ORDER BY global_position'
                )
            ).mappings()
            return [dict(row) for row in rows]
    finally:
        engine.dispose()


def per_request(rows: list[dict]) -> Counter:
    """How many events of each type each request id caused: ``{(request_id, type): n}``."""
    return Counter((row["metadata"].get("request_id"), row["event_type"]) for row in rows)


def wait_until(predicate, timeout: float = 60.0, interval: float = 0.3):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
