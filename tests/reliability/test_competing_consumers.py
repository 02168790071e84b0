"""Two processes of every service at once (``cms run --processes 2``): RPCs are served by
both, each command appends its events once, each event reaches an outside subscriber, and the
consumers (orders ← payments, payments ← orders, orders ← customers) apply each event once."""

import uuid
from collections import Counter

import eventlet
import pytest
from nameko.standalone.rpc import ClusterRpcProxy

from shared.config import SERVICES
from tests.reliability.helpers import (
    Subscriber,
    events,
    ok,
    per_request,
    product,
    sale,
    service_processes,
    sign_in,
    wait_until,
)

pytestmark = pytest.mark.slow
SALES = 16


def test_every_service_runs_twice_and_both_answer_rpcs(scaled_stack):
    processes = service_processes(scaled_stack)
    for service in SERVICES:
        assert len(processes.get(service, [])) == 2, (service, processes)
    with ClusterRpcProxy({"AMQP_URI": scaled_stack.env["CMS_AMQP_URI"]}, timeout=10) as cluster:
        for service in SERVICES:
            answered = Counter(getattr(cluster, service).ping()["process"] for _ in range(40))
            # RabbitMQ hands the RPC queue's messages to both consumers in turn
            assert len(answered) == 2, (service, answered)
            pids = {int(p.split(":")[-1]) for p in answered}
            assert pids == {p.pid for p in processes[service]}, service


def test_nothing_is_processed_twice(scaled_stack):
    url = scaled_stack.env["CMS_DATABASE_URL"]
    subscriber = Subscriber(scaled_stack.env["CMS_AMQP_URI"], list(SERVICES))
    # what was appended before the subscriber's queues existed is not theirs to receive
    known = {e["event_id"] for schema in SERVICES for e in events(url, schema)}
    try:
        api, token = sign_in(scaled_stack)
        item = product(api, token)
        marker = uuid.uuid4().hex[:8]
        pool = eventlet.GreenPool(8)
        sales = list(pool.imap(lambda i: sale(api, token, item["id"], marker, i), range(SALES)))

        # every order ends paid, with exactly its total: payment.captured applied once
        def all_paid():
            states = [
                ok(api.call("GET", f"/api/v1/orders/{s['order']['id']}", token=token))
                for s in sales
            ]
            return states if all(o["status"] == "paid" for o in states) else None

        paid = wait_until(all_paid, timeout=90)
        assert paid, "not every order became paid"
        for order in paid:
            assert order["paid_amount"] == order["total"], order

        # each command appended its events exactly once (one request id → one event)
        customers, orders, payments = (events(url, s) for s in ("customers", "orders", "payments"))
        for s in sales:
            ids = s["request_ids"]
            assert per_request(customers)[(ids["customer"], "customer.registered")] == 1
            assert per_request(orders)[(ids["order"], "order.placed")] == 1
            captured = per_request(payments)[(ids["payment"], "payment.captured")]
            assert captured == 1, (ids, captured)
        # and the orders service recorded each payment on its order once
        for s in sales:
            applied = [
                e
                for e in orders
                if e["event_type"] == "order.payment_applied" and e["stream_id"] == s["order"]["id"]
            ]
            assert len(applied) == 1, applied

        # every event of every service reached the outside subscriber, none twice
        expected = {e["event_id"] for schema in SERVICES for e in events(url, schema)} - known
        received = subscriber.drain(
            lambda got: expected <= {m["event_id"] for m in got}, timeout=60
        )
        seen = Counter(message["event_id"] for message in received)
        missing = expected - set(seen)
        assert not missing, f"{len(missing)} events never published"
        twice = {event_id: n for event_id, n in seen.items() if n > 1}
        assert not twice, f"published more than once without any fault: {twice}"
    finally:
        subscriber.close()
