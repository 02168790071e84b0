"""The orders service over its entrypoints, against the real database and broker (with the
customers service running beside it, whose events feed the replica)."""

import itertools
import uuid
from datetime import UTC, datetime

import eventlet
import pytest
from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from services.orders.tests.conftest import actor_of, as_, principal
from shared.errors import (
    BadRequest,
    ConcurrencyError,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    RuleViolation,
)

LIVE_POSITIONS = itertools.count(10**12)


def payment_envelope(order, kind="captured", amount=None, payment_id=None, **payload):
    """A payments event exactly as docs/service-contracts.md describes it."""
    payment_id = payment_id or str(uuid.uuid4())
    body = {
        "payment_id": payment_id,
        "order_id": order["id"],
        "customer_id": order["customer_id"],
        "method": "card",
        "amount": order["total"] if amount is None else amount,
        "currency": order["currency"],
    }
    if kind == "captured":
        body["captured_at"] = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    else:
        body.update(
            refund_id=str(uuid.uuid4()),
            refunded_total=body["amount"],
            captured_amount=order["total"],
            reason="requested_by_customer",
        )
    body.update(payload)
    return {
        "event_id": str(uuid.uuid4()),
        "type": f"payment.{kind}",
        "schema_version": 1,
        "source": "payments",
        "stream_type": "payment",
        "stream_id": payment_id,
        "stream_version": 1,
        # far past the payments log's real events (other test modules of this process may
        # have moved the consumer's cursor over them): a live event not yet caught up
        "position": next(LIVE_POSITIONS),
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "metadata": {},
        "payload": body,
    }


def feed(container, envelope):
    """Hand an envelope to the orders service's payment consumer (a real worker)."""
    from nameko.testing.services import entrypoint_hook

    name = (
        "on_payment_captured" if envelope["type"] == "payment.captured" else "on_payment_refunded"
    )
    with entrypoint_hook(container, name) as hook:
        hook(envelope)


@pytest.fixture(scope="module")
def customer(make_customer):
    return make_customer()


@pytest.fixture(scope="module")
def tea(make_product):
    return make_product(price=1999, name="Longjing tea", category="tea", brand="West Lake")


def test_an_order_right_after_its_customer_was_registered(orders, make_customer, tea, place):
    """The replica has not seen the new customer yet: one catch-up, then the order."""
    fresh = make_customer()
    order = place(fresh["id"], (tea, 2), tax_rate=1300, order_discount=98)
    assert order["status"] == "placed"
    assert order["subtotal"] == 3998 and order["tax"] == 507 and order["total"] == 4407
    assert order["lines"][0]["unit_price"] == 1999
    assert order["number"].startswith("SO")


def test_unknown_and_inactive_customers_are_refused(orders, customers, admin, customer, tea, place):
    with pytest.raises(NotFound):
        place(str(uuid.uuid4()), (tea, 1))
    archived = customers.create_customer(
        **as_(admin), data={"name": "Archie", "emails": []}, force=True
    )
    customers.archive_customer(**as_(admin), customer_id=archived["id"])
    with pytest.raises(RuleViolation) as refused:
        for _ in range(50):  # the archive reaches the replica live or by catch-up
            try:
                place(archived["id"], (tea, 1))
            except NotFound:
                pass
            eventlet.sleep(0.1)
    assert refused.value.extra["state"] == "archived"


def test_a_price_change_never_alters_an_existing_order(
    orders, admin, customer, make_product, place
):
    product = make_product(price=500)
    order = place(customer["id"], (product, 3))
    changed = orders.update_product(
        actor=actor_of(admin),
        product_id=product["id"],
        changes={"price": 700},
        expected_version=product["version"],
    )
    assert changed["price"] == 700 and changed["version"] == 2
    again = orders.get_order(order_id=order["id"], viewer=admin)
    assert again["lines"][0]["unit_price"] == 500 and again["total"] == 1500
    with pytest.raises(PreconditionFailed):
        orders.update_product(
            actor=actor_of(admin),
            product_id=product["id"],
            changes={"price": 1},
            expected_version=1,
        )
    with pytest.raises(Conflict):
        orders.create_product(
            actor=actor_of(admin),
            data={"sku": product["sku"], "name": "x", "price": 1, "currency": "CNY"},
        )
    with pytest.raises(BadRequest):
        place(customer["id"], (make_product(currency="USD"), 1), currency="CNY")


def test_payments_drive_the_status_and_count_once(orders, orders_container, customer, tea, place):
    order = place(customer["id"], (tea, 1))
    first = payment_envelope(order, amount=999)
    feed(orders_container, first)
    feed(orders_container, first)  # redelivered: nothing twice
    state = orders.get_order(order_id=order["id"])
    assert (state["status"], state["paid_amount"]) == ("partially_paid", 999)
    assert state["delivery_address"] is None  # another service's view: no personal data
    feed(orders_container, payment_envelope(order, amount=1000))
    state = orders.get_order(order_id=order["id"])
    assert (state["status"], state["paid_amount"], state["balance"]) == ("paid", 1999, 0)
    feed(orders_container, payment_envelope(order, kind="refunded", amount=500))
    state = orders.get_order(order_id=order["id"])  # a goodwill refund: still paid
    assert (state["status"], state["paid_amount"], state["balance"]) == ("paid", 1499, 500)
    feed(orders_container, payment_envelope(order, amount=100, currency="USD"))  # ignored
    assert orders.get_order(order_id=order["id"])["paid_amount"] == 1499


def test_a_payment_event_arrives_through_rabbitmq(
    orders, orders_container, nameko_config, customer, tea, place
):
    order = place(customer["id"], (tea, 1))
    dispatch = event_dispatcher(nameko_config)
    envelope = payment_envelope(order)
    with entrypoint_waiter(orders_container, "on_payment_captured", timeout=10):
        dispatch("payments", "payment.captured", envelope)
    assert orders.get_order(order_id=order["id"])["status"] == "paid"


def test_actions_follow_the_workflow_and_name_the_state(
    orders, orders_container, admin, customer, tea, place
):
    order = place(customer["id"], (tea, 1))
    with pytest.raises(RuleViolation) as refused:
        orders.order_action(**as_(admin), order_id=order["id"], action="fulfil")
    assert refused.value.extra["state"] == "placed"
    feed(orders_container, payment_envelope(order))
    for action, status in (
        ("fulfil", "fulfilled"),
        ("complete", "completed"),
        ("return", "returned"),
    ):
        done = orders.order_action(**as_(admin), order_id=order["id"], action=action, reason="r")
        assert done["status"] == status
    history = orders.order_history(viewer=admin, order_id=order["id"])
    statuses = [entry["status"] for entry in history if entry["status_changed"]]
    assert statuses == ["placed", "paid", "fulfilled", "completed", "returned"]


def test_edits_need_the_current_version_and_no_payment(
    orders, orders_container, admin, customer, tea, make_product, place, payments_standin
):
    order = place(customer["id"], (tea, 1), delivery_address={"country": "CN", "city": "杭州"})
    assert order["delivery_address"]["city"] == "杭州"
    other = make_product(price=100)
    changed = orders.change_order_lines(
        **as_(admin),
        order_id=order["id"],
        changes={"lines": [{"product_id": other["id"], "quantity": 5}]},
        expected_version=order["version"],
    )
    assert changed["total"] == 500 and changed["version"] == 2
    with pytest.raises(PreconditionFailed):
        orders.change_order_address(
            **as_(admin), order_id=order["id"], delivery_address=None, expected_version=1
        )
    feed(orders_container, payment_envelope(changed, amount=100))
    current = orders.get_order(order_id=order["id"], viewer=admin)
    assert current["editable"] is False and "change_address" not in current["actions"]
    with pytest.raises(RuleViolation) as refused:
        orders.change_order_address(
            **as_(admin),
            order_id=order["id"],
            delivery_address=None,
            expected_version=current["version"],
        )
    assert refused.value.extra["state"] == "partially_paid"


def test_lines_do_not_change_under_a_payment_under_way(
    orders, admin, customer, tea, make_product, place, payments_standin
):
    """A transfer started for the whole total, then the order cut down: the transfer settled
    in full and the order was paid with more money than it cost. Payments knows of the open
    payment, the orders service not at all, so the change asks it first."""
    order = place(customer["id"], (tea, 3))
    payments_standin.pending[order["id"]] = order["total"]
    cheaper = {"lines": [{"product_id": make_product(price=100)["id"], "quantity": 1}]}
    with pytest.raises(RuleViolation) as refused:
        orders.change_order_lines(**as_(admin), order_id=order["id"], changes=cheaper)
    assert refused.value.extra["code"] == "payment_in_progress"
    assert orders.get_order(order_id=order["id"])["total"] == order["total"]
    del payments_standin.pending[order["id"]]  # the payment was cancelled
    changed = orders.change_order_lines(**as_(admin), order_id=order["id"], changes=cheaper)
    assert changed["total"] == 100


def test_two_concurrent_status_changes_one_wins(
    orders, orders_container, admin, customer, tea, place, nameko_config
):
    """Two clients over RPC at once, both with the version they read: one wins, the other is
    told the order changed (412 through the gateway)."""
    from nameko.standalone.rpc import ClusterRpcProxy

    outcomes = []
    for _ in range(3):
        order = place(customer["id"], (tea, 1))
        feed(orders_container, payment_envelope(order))
        version = orders.get_order(order_id=order["id"], viewer=admin)["version"]

        def act(action, order_id=order["id"], version=version):
            with ClusterRpcProxy(nameko_config, timeout=10) as cluster:
                try:
                    return cluster.orders.order_action(
                        **as_(admin), order_id=order_id, action=action, expected_version=version
                    )["status"]
                except (ConcurrencyError, PreconditionFailed) as exc:
                    return type(exc).__name__

        pool = eventlet.GreenPool()
        results = list(pool.imap(act, ["cancel", "fulfil"]))
        outcomes.append(results)
        winners = [r for r in results if r in ("cancelled", "fulfilled")]
        assert len(winners) == 1, results
        final = orders.get_order(order_id=order["id"], viewer=admin)
        assert final["status"] == winners[0] and final["version"] == version + 1


def test_sales_see_only_their_customers_orders(orders, make_customer, tea, place):
    seller = principal("sales")
    mine = make_customer(by=seller)
    order = place(mine["id"], (tea, 1), by=seller)
    other = principal("sales")
    with pytest.raises(NotFound):
        orders.get_order(order_id=order["id"], viewer=other)
    with pytest.raises(NotFound):
        place(mine["id"], (tea, 1), by=other)
    listed = orders.list_orders(viewer=seller)["items"]
    assert [item["id"] for item in listed] == [order["id"]]
    assert orders.list_orders(viewer=other)["items"] == []
    analyst = orders.get_order(order_id=order["id"], viewer=principal("analyst"))
    assert analyst["personal_hidden"] is True


@pytest.mark.parametrize("action", ["cancel", "return"])
def test_sales_may_not_cancel_or_return_an_order_with_money_paid_on_it(
    orders, orders_container, admin, make_customer, tea, place, action, payments_standin
):
    """Payments refunds a cancelled or returned order's money, and refunds need a manager."""
    seller = principal("sales")
    order = place(make_customer(by=seller)["id"], (tea, 1), by=seller)
    if action == "cancel":  # nothing paid yet: the seller may cancel
        unpaid = place(order["customer_id"], (tea, 1), by=seller)
        done = orders.order_action(**as_(seller), order_id=unpaid["id"], action="cancel")
        assert done["status"] == "cancelled"
    feed(orders_container, payment_envelope(order))
    if action == "return":
        orders.order_action(**as_(admin), order_id=order["id"], action="fulfil")
    with pytest.raises(Forbidden) as refused:
        orders.order_action(**as_(seller), order_id=order["id"], action=action, reason="r")
    assert refused.value.extra["code"] == "manager_only"
    state = orders.get_order(order_id=order["id"])
    assert state["status"] == ("paid" if action == "cancel" else "fulfilled")
    # the order's actions say what each caller may do
    assert action not in orders.get_order(order_id=order["id"], viewer=seller)["actions"]
    assert action in orders.get_order(order_id=order["id"], viewer=admin)["actions"]
    assert orders.get_order(order_id=order["id"], viewer=principal("analyst"))["actions"] == []
    done = orders.order_action(**as_(admin), order_id=order["id"], action=action, reason="r")
    assert done["status"] == ("cancelled" if action == "cancel" else "returned")


def test_sales_may_not_cancel_an_order_paid_a_moment_ago(
    orders, admin, make_customer, tea, place, payments_standin
):
    """The payments service has taken the money, its event has not reached the orders
    service yet: a sales user's cancel would refund it, so it is refused all the same."""
    seller = principal("sales")
    order = place(make_customer(by=seller)["id"], (tea, 1), by=seller)
    payments_standin.paid[order["id"]] = order["total"]
    assert orders.get_order(order_id=order["id"])["paid_amount"] == 0
    with pytest.raises(Forbidden) as refused:
        orders.order_action(**as_(seller), order_id=order["id"], action="cancel", reason="r")
    assert refused.value.extra["code"] == "manager_only"
    assert orders.get_order(order_id=order["id"])["status"] == "placed"
    done = orders.order_action(**as_(admin), order_id=order["id"], action="cancel", reason="r")
    assert done["status"] == "cancelled"


def test_a_command_locks_its_order_before_the_event_log(
    orders, admin, customer, tea, place, service_engine
):
    """The payment consumer locks an order's row and then the event log; a command takes them
    in the same order, or a cancel meeting a capture deadlocks (PostgreSQL kills one, a 503).
    With the event log held here, a cancel must wait holding its order's row already."""
    order = place(customer["id"], (tea, 1))
    engine = service_engine("orders")
    with engine.connect() as holder, engine.connect() as probe:
        holder.execute(text("LOCK TABLE events IN EXCLUSIVE MODE"))
        cancel = eventlet.spawn(
            orders.order_action, **as_(admin), order_id=order["id"], action="cancel", reason="r"
        )
        waiting = (
            "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'events'::regclass"
        )
        for _ in range(200):
            eventlet.sleep(0.05)
            if probe.execute(text(waiting)).scalar():
                break
        else:
            pytest.fail("the cancel never waited for the event log")
        with pytest.raises(OperationalError):  # the row is the cancel's already
            probe.execute(
                text("SELECT 1 FROM orders WHERE id = :id FOR UPDATE NOWAIT"), {"id": order["id"]}
            )
        probe.rollback()
        holder.rollback()
    assert cancel.wait()["status"] == "cancelled"


def test_list_filters_and_keyset_pagination(orders, admin, make_customer, make_product, place):
    buyer = make_customer()
    rare = make_product(price=250)
    placed = [place(buyer["id"], (rare, n)) for n in (1, 2, 3, 4, 5)]
    seen, cursor = [], None
    while True:
        page = orders.list_orders(viewer=admin, customer_id=buyer["id"], limit=2, cursor=cursor)
        seen += [item["id"] for item in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [order["id"] for order in reversed(placed)]
    by_product = orders.list_orders(
        viewer=admin, product_id=rare["id"], total_min=500, total_max=1000
    )
    assert {item["total"] for item in by_product["items"]} == {500, 750, 1000}
    assert orders.list_orders(viewer=admin, customer_id=buyer["id"], status=["paid"])["items"] == []
    future = orders.list_orders(viewer=admin, placed_from="2999-01-01T00:00:00Z")
    assert future["items"] == []
    for sort, expected in (
        ("total", [250, 500, 750, 1000, 1250]),
        ("-total", [1250, 1000, 750, 500, 250]),
    ):
        totals, cursor = [], None
        while True:
            page = orders.list_orders(
                viewer=admin, customer_id=buyer["id"], sort=sort, limit=2, cursor=cursor
            )
            totals += [item["total"] for item in page["items"]]
            cursor = page["next_cursor"]
            if not cursor:
                break
        assert totals == expected
    with pytest.raises(BadRequest):
        orders.list_orders(viewer=admin, sort="total", cursor="WyJ4IiwieSJd")  # ["x","y"]


def test_the_changes_feed_tells_of_a_status_change(
    orders, orders_container, admin, customer, tea, place
):
    start = orders.order_changes(viewer=admin)["last_position"]
    order = place(customer["id"], (tea, 1))
    waiting = eventlet.spawn(
        orders.order_changes, viewer=admin, after=start + 1, wait=3, order_id=order["id"]
    )
    eventlet.sleep(0.3)
    orders.order_action(**as_(admin), order_id=order["id"], action="cancel", reason="test")
    feed_page = waiting.wait()
    assert [item["status"] for item in feed_page["items"]] == ["cancelled"]
    assert feed_page["last_position"] >= feed_page["items"][0]["position"]


def test_erasing_the_customer_shreds_address_and_notes(
    orders, customers, admin, make_customer, tea, place, service_engine
):
    buyer = make_customer()
    order = place(
        buyer["id"],
        (tea, 1),
        delivery_address={"country": "CN", "street": "西湖路 1 号"},
        notes="ring twice",
    )
    assert order["notes"] == "ring twice"
    customers.erase_customer(actor=actor_of(admin), customer_id=buyer["id"])
    for _ in range(100):
        state = orders.get_order(order_id=order["id"], viewer=admin)
        if state["notes"] is None:
            break
        eventlet.sleep(0.1)
    assert state["notes"] is None and state["delivery_address"] is None
    with service_engine("orders").connect() as conn:
        dumped = (
            conn.execute(
                text("SELECT payload::text FROM events WHERE stream_id = :id"), {"id": order["id"]}
            )
            .scalars()
            .all()
        )
    assert not any("西湖路" in p or "ring twice" in p for p in dumped)


def test_read_models_rebuilt_from_the_log_are_the_same(
    orders, orders_container, customer, tea, place, service_engine
):
    from sqlalchemy.orm import Session

    from services.orders.projections import rebuild

    order = place(customer["id"], (tea, 2), notes="rebuild me")
    feed(orders_container, payment_envelope(order, amount=100))

    def snapshot(session):
        return {
            table: [
                tuple(row)
                for row in session.execute(text(f"SELECT * FROM {table} ORDER BY id")).all()
            ]
            for table in ("products", "orders")
        }

    with Session(service_engine("orders")) as session:
        before = snapshot(session)
        session.rollback()
        replayed = rebuild(session)
        after = snapshot(session)
        session.commit()
    assert replayed > 0
    assert after == before


def test_payments_missed_live_are_caught_up_once(orders, customer, tea, place, service_engine):
    """Catch-up through payments' read_events (here a list of contract-shaped envelopes) applies
    what live delivery missed; running it again, or a late live delivery, changes nothing."""
    from sqlalchemy.orm import Session

    from services.orders import commands
    from services.orders.store import Store
    from shared.consumer import apply_once, catch_up

    # a consumer of its own: the service's real cursor on payments stays where it is
    consumer = f"orders.payments.test-{uuid.uuid4().hex[:8]}"
    order = place(customer["id"], (tea, 1))
    log = [payment_envelope(order, amount=999), payment_envelope(order, amount=1000)]
    for position, envelope in enumerate(log, start=1):
        envelope["position"] = position

    def fetch(after, limit):
        return [e for e in log if e["position"] > after][:limit]

    def apply(session, envelope):
        commands.apply_payment_event(Store(session), envelope)

    with Session(service_engine("orders")) as session:
        assert catch_up(session, consumer, "payments", fetch, apply) == 2
        assert catch_up(session, consumer, "payments", fetch, apply) == 0
        assert not apply_once(session, consumer, log[0], apply)
    state = orders.get_order(order_id=order["id"])
    assert (state["status"], state["paid_amount"]) == ("paid", 1999)


def test_a_keyed_order_for_a_customer_the_replica_learns_of_late_is_placed_once(
    orders, admin, tea, monkeypatch
):
    """The replica does not know the customer when the order arrives; its catch-up (here: the
    customer's registration applied as the catch-up would apply it) runs outside the command's
    transaction, so the idempotency key taken in that transaction survives it."""
    from services.orders.replica import consume
    from services.orders.service import OrdersService
    from services.orders.tests.test_replica import envelope

    customer_id = str(uuid.uuid4())
    caught_up = []

    def catch_up_now(self):
        caught_up.append(consume(self.db, envelope("customer.registered", customer_id, 1)))
        self.db.commit()
        return 1

    monkeypatch.setattr(OrdersService, "_catch_up_customers_now", catch_up_now)
    body = {"customer_id": customer_id, "lines": [{"product_id": tea["id"], "quantity": 1}]}
    idempotency = {"key": f"late-{uuid.uuid4().hex}", "hash": "h"}
    first = orders.place_order(**as_(admin), data=body, idempotency=idempotency)
    assert caught_up == [True]
    assert first["customer_id"] == customer_id and first["status"] == "placed"
    again = orders.place_order(**as_(admin), data=body, idempotency=idempotency)
    assert again["id"] == first["id"]  # the key was kept: the same order, not a second one
    assert caught_up == [True]
