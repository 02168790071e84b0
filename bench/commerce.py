"""The bench's order, payment and analytics phases (issue 9), through the gateway.

- ``place_order``: ``POST /api/v1/orders`` with two lines from a catalogue the bench creates,
  for a seeded customer;
- ``pay_order``: ``POST /api/v1/payments`` paying one of those orders in full with the
  sandbox's always-approved test card and an ``Idempotency-Key`` (the sandbox then authorises
  and captures it through its signed webhook, as it would in use);
- ``list_orders``: ``GET /api/v1/orders?limit=20`` (the web UI's first page);
- ``analytics_dashboard``: ``GET /api/v1/analytics/overview`` (the dashboard's headline query);
- ``*_half``: the writes again in an open loop at half the peak the closed loop reached, for
  the target "p99 of every write ≤ 100 ms at half of its peak throughput";
- ``projection_lag``: the analytics service's own freshness figure (commit at the source →
  projection applied) over the window of the order and payment phases;
- ``analytics_rebuild``: ``POST /api/v1/analytics/rebuild`` and its progress until done, as
  events per second (every customer, order and payment event of the run).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import deque
from typing import Any

from bench.load import OK, Outcome

#: The sandbox's always-approved test card (services/payments/providers/sandbox.py).
APPROVED_CARD = {"number": "4242424242424242", "exp_month": 12, "exp_year": 2035, "cvc": "123"}
CURRENCY = "CNY"
CATALOGUE_SIZE = 40


async def create_catalogue(client, headers: dict[str, str], rng: random.Random) -> list[dict]:
    """Products to order: ``CATALOGUE_SIZE`` SKUs in a few categories and brands."""
    products = []
    run = uuid.uuid4().hex[:6]
    for number in range(CATALOGUE_SIZE):
        body = {
            "sku": f"BENCH-{run}-{number:03d}",
            "name": f"Bench product {number}",
            "category": rng.choice(["tea", "porcelain", "silk", "books"]),
            "brand": rng.choice(["Jingdezhen", "Hangzhou", "Suzhou"]),
            "price": rng.randrange(990, 49_900, 10),
            "currency": CURRENCY,
        }
        outcome, answer = await client.call(
            "POST", "/api/v1/products", 201, headers=headers, json=body
        )
        if outcome.error:
            problem = f"{outcome.error} {answer[:300]!r}"
            raise RuntimeError(f"cannot create the bench catalogue: {problem}")
        products.append(json.loads(answer))
    return products


class Commerce:
    """State shared by the order and payment phases: the catalogue, the customers to order
    for, and the orders placed and not yet paid (the pay phases consume them)."""

    def __init__(self, client, headers: dict[str, str], customer_ids: list[str], seed: int):
        self.client = client
        self.headers = headers
        self.customer_ids = customer_ids or []
        self.rng = random.Random(seed)
        self.products: list[dict] = []
        self.unpaid: deque[tuple[str, int]] = deque()
        self.placed = 0
        self.paid = 0

    async def prepare(self) -> None:
        self.products = await create_catalogue(self.client, self.headers, self.rng)

    def _order_body(self, number: int) -> dict[str, Any]:
        first, second = self.rng.sample(self.products, 2)
        return {
            "customer_id": self.customer_ids[number % len(self.customer_ids)],
            "currency": CURRENCY,
            "lines": [
                {"product_id": first["id"], "quantity": 1 + number % 3},
                {"product_id": second["id"], "quantity": 1},
            ],
            "tax_rate": 1300,
        }

    async def place(self, worker: int, iteration: int) -> Outcome:
        number = worker * 1_000_003 + iteration
        outcome, body = await self.client.call(
            "POST", "/api/v1/orders", 201, headers=self.headers, json=self._order_body(number)
        )
        if not outcome.error:
            order = json.loads(body)
            self.unpaid.append((order["id"], order["total"]))
            self.placed += 1
        return outcome

    async def stock_up(self, count: int, concurrency: int) -> None:
        """Place orders, not measured, until ``count`` wait to be paid: the pay phases
        must not run out of orders when payments are faster than the placing was."""

        async def worker(number: int) -> None:
            iteration = 10**6
            while len(self.unpaid) < count:
                outcome = await self.place(number, iteration)
                if outcome.error:
                    return
                iteration += 1

        await asyncio.gather(*(worker(number) for number in range(concurrency)))

    async def pay(self, worker: int, iteration: int) -> Outcome:
        if not self.unpaid:
            return Outcome(error="no unpaid order left")
        order_id, total = self.unpaid.popleft()
        headers = {**self.headers, "Idempotency-Key": str(uuid.uuid4())}
        body = {
            "order_id": order_id,
            "method": "card",
            "amount": total,
            "currency": CURRENCY,
            "card": APPROVED_CARD,
        }
        outcome, _ = await self.client.call(
            "POST", "/api/v1/payments", 201, headers=headers, json=body
        )
        if not outcome.error:
            self.paid += 1
        return outcome

    async def list_orders(self, worker: int, iteration: int) -> Outcome:
        outcome, _ = await self.client.call(
            "GET", "/api/v1/orders", 200, headers=self.headers, params={"limit": "20"}
        )
        return outcome

    async def dashboard(self, worker: int, iteration: int) -> Outcome:
        outcome, _ = await self.client.call(
            "GET",
            "/api/v1/analytics/overview",
            200,
            headers=self.headers,
            params={"currency": CURRENCY},
        )
        return outcome


async def projection_lag(client, headers: dict[str, str], window_seconds: int) -> dict:
    """The analytics service's freshness over the last ``window_seconds``."""
    outcome, body = await client.call(
        "GET",
        "/api/v1/analytics/freshness",
        200,
        headers=headers,
        params={"window_seconds": str(max(1, window_seconds))},
    )
    if outcome.error:
        return {"error": outcome.error}
    figures = json.loads(body)
    return {
        "events": figures.get("events"),
        "p50_ms": figures.get("p50_ms"),
        "p99_ms": figures.get("p99_ms"),
        "last_ms": figures.get("last_ms"),
        "window_seconds": window_seconds,
    }


async def analytics_rebuild(client, headers: dict[str, str], timeout: float) -> dict:
    """Start a rebuild through the admin API and follow it to the end."""
    outcome, body = await client.call(
        "POST", "/api/v1/analytics/rebuild", 202, headers=headers, json={"confirm": True}
    )
    if outcome.error:
        return {"error": f"{outcome.error}: {body[:300]!r}"}
    rebuild = json.loads(body)
    started = time.monotonic()
    while rebuild.get("status") == "running" and time.monotonic() - started < timeout:
        await asyncio.sleep(1.0)
        outcome, body = await client.call(
            "GET", f"/api/v1/analytics/rebuilds/{rebuild['id']}", 200, headers=headers
        )
        if outcome is not OK and outcome.error:
            continue
        rebuild = json.loads(body)
    seconds = round(time.monotonic() - started, 1)
    return {
        "status": rebuild.get("status"),
        "events": rebuild.get("events"),
        "events_per_second": rebuild.get("events_per_second"),
        "wall_seconds": seconds,
        "error": rebuild.get("error") if rebuild.get("status") != "succeeded" else None,
    }
