"""A customer's orders and payments (``services.customers.activity``): events from the orders
and payments services, delivered over RabbitMQ in nameko's wire format or read back through
``read_events``, reach the customer's timeline and the ``has_orders`` filter exactly once."""

import uuid
from datetime import UTC, datetime, timedelta

from nameko.standalone.events import event_dispatcher
from nameko.testing.services import entrypoint_waiter
from sqlalchemy.orm import Session

from services.customers import activity
from services.customers.tests.conftest import as_, unique_tag
from shared.subscriptions import handler_name

POSITIONS = iter(range(10**9, 2 * 10**9))


def envelope(source: str, event_type: str, payload: dict, occurred_at: datetime | None = None):
    """An event as the contract (docs/service-contracts.md) says its source publishes it."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "schema_version": 1,
        "source": source,
        "stream_type": event_type.split(".")[0],
        "stream_id": payload.get("payment_id") or payload.get("order_id") or payload["customer_id"],
        "stream_version": 1,
        "position": next(POSITIONS),
        "occurred_at": (occurred_at or datetime.now(UTC)).isoformat(),
        "metadata": {},
        "payload": payload,
    }


def placed(customer_id: str, order_id: str, placed_at: datetime) -> dict:
    return envelope(
        "orders",
        "order.placed",
        {
            "order_id": order_id,
            "number": "SO-TEST-1",
            "customer_id": customer_id,
            "currency": "CNY",
            "lines": [
                {
                    "line_id": "1",
                    "product_id": None,
                    "sku": "A-1",
                    "name": "Tea",
                    "category": None,
                    "brand": None,
                    "quantity": 2,
                    "unit_price": 1500,
                    "line_discount": 0,
                    "line_total": 3000,
                }
            ],
            "subtotal": 3000,
            "order_discount": 0,
            "tax_rate": 1300,
            "tax": 390,
            "total": 3390,
            "placed_at": placed_at.isoformat(),
            "source": "import",
            "external_id": "legacy-1",
            "delivery_address": {"sealed": "not kept"},
            "notes": None,
        },
    )


def captured(customer_id: str, order_id: str) -> dict:
    payment_id = str(uuid.uuid4())
    return envelope(
        "payments",
        "payment.captured",
        {
            "payment_id": payment_id,
            "order_id": order_id,
            "customer_id": customer_id,
            "method": "alipay",
            "amount": 3390,
            "currency": "CNY",
            "captured_at": datetime.now(UTC).isoformat(),
        },
    )


def _dispatch(container, nameko_config, message):
    dispatch = event_dispatcher(nameko_config)
    name = handler_name(message["source"], message["type"])
    with entrypoint_waiter(container, name, timeout=10):
        dispatch(message["source"], message["type"], message)


def test_orders_and_payments_reach_the_timeline_once(
    customers, customers_container, nameko_config, make_customer, admin
):
    tag = unique_tag()
    customer = make_customer(tags=[tag])
    order_id = str(uuid.uuid4())
    two_years_ago = datetime.now(UTC) - timedelta(days=730)
    order = placed(customer["id"], order_id, two_years_ago)
    payment = captured(customer["id"], order_id)
    seller = str(uuid.uuid4())
    order["metadata"] = {"actor_id": seller, "actor_kind": "user", "request_id": "req-place"}
    payment["metadata"] = {"actor_id": "sandbox", "actor_kind": "provider"}
    for message in (order, order, payment):  # the order delivered twice
        _dispatch(customers_container, nameko_config, message)

    items = customers.timeline(viewer=admin, customer_id=customer["id"])["items"]
    assert [item["type"] for item in items] == [
        "payment.captured",
        "customer.registered",
        "order.placed",  # an imported order keeps its purchase time, two years ago
    ]
    order_item = items[2]
    assert order_item["source"] == "orders" and order_item["at"].startswith(
        two_years_ago.date().isoformat()
    )
    assert order_item["changes"]["total"] == 3390 and order_item["changes"]["items"] == 2
    assert "delivery_address" not in order_item["changes"]
    assert items[0]["changes"]["method"] == "alipay"
    # who placed the order, who took the payment, as for the customer's own events
    assert (order_item["actor_id"], order_item["actor_kind"]) == (seller, "user")
    assert order_item["request_id"] == "req-place"
    assert (items[0]["actor_id"], items[0]["actor_kind"]) == ("sandbox", "provider")
    # a payment names its order by id only; the timeline gives it the order's number, also on
    # a page that does not hold the order's own entry
    first = customers.timeline(viewer=admin, customer_id=customer["id"], limit=1)["items"]
    assert first[0]["type"] == "payment.captured"
    assert first[0]["changes"]["number"] == "SO-TEST-1"

    with_orders = customers.search_customers(viewer=admin, tag=tag, has_orders=True)["items"]
    assert [c["id"] for c in with_orders] == [customer["id"]]
    assert with_orders[0]["order_count"] == 1
    assert customers.search_customers(viewer=admin, tag=tag, has_orders=False)["items"] == []


def test_timeline_pages_through_both_kinds_of_entry(
    customers, customers_engine, make_customer, admin
):
    customer = make_customer()
    for day in range(5):
        _apply(customers_engine, placed(customer["id"], str(uuid.uuid4()), _days_ago(day + 1)))
    for version, name in ((1, "One"), (2, "Two")):
        customers.update_customer(
            **as_(admin),
            customer_id=customer["id"],
            changes={"name": name},
            expected_version=version,
        )
    whole = customers.timeline(viewer=admin, customer_id=customer["id"], limit=100)["items"]
    seen, cursor = [], None
    while True:
        page = customers.timeline(viewer=admin, customer_id=customer["id"], limit=2, cursor=cursor)
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [item["event_id"] for item in seen] == [item["event_id"] for item in whole]
    assert len(whole) == 8
    assert [item["at"] for item in whole] == sorted((item["at"] for item in whole), reverse=True)


def test_catch_up_applies_what_was_missed_once(customers_engine, make_customer):
    customer = make_customer()
    log = {
        "orders": [placed(customer["id"], str(uuid.uuid4()), _days_ago(3))],
        "payments": [],
    }
    log["payments"].append(captured(customer["id"], log["orders"][0]["payload"]["order_id"]))
    with Session(customers_engine) as session:
        activity.handle_all(session, [log["orders"][0]])  # delivered live before the catch-up

        def fetch(source, after, limit, types):
            return [e for e in log[source] if e["position"] > after and e["type"] in types][:limit]

        assert activity.catch_up_all(session, fetch) == 1
        assert activity.catch_up_all(session, fetch) == 0
        count = session.execute(
            activity.tables.customers.select().where(
                activity.tables.customers.c.id == customer["id"]
            )
        ).one()
        assert count.order_count == 1


def _days_ago(days: int) -> datetime:
    return datetime.now(UTC) - timedelta(days=days)


def _apply(engine, message) -> None:
    with Session(engine) as session:
        assert activity.handle_all(session, [message]) == 1


def segment_changed(customer_id: str, segment: str, previous: str | None = None) -> dict:
    message = envelope(
        "analytics",
        "segment.changed",
        {
            "customer_id": customer_id,
            "segment": segment,
            "previous_segment": previous,
            "r_score": 5,
            "f_score": 4,
            "m_score": 5,
            "as_of": datetime.now(UTC).isoformat(),
        },
    )
    message["stream_type"], message["stream_id"] = "customer_segment", customer_id
    return message


def test_segment_events_drive_the_segment_filter(
    customers, customers_container, nameko_config, make_customer, admin
):
    tag = unique_tag()
    first, second = make_customer(tags=[tag]), make_customer(tags=[tag])
    older = segment_changed(first["id"], "new")
    newer = segment_changed(first["id"], "champions", "new")
    for message in (newer, older, newer, segment_changed(second["id"], "at_risk")):
        _dispatch(customers_container, nameko_config, message)  # out of order and twice

    def found(segment):
        page = customers.search_customers(viewer=admin, tag=tag, segment=segment)["items"]
        return [(c["id"], c["segment"]) for c in page]

    assert found("champions") == [(first["id"], "champions")]
    assert found("at_risk") == [(second["id"], "at_risk")]
    assert found("new") == []
    fetched = customers.get_customer(viewer=admin, customer_id=first["id"])
    assert fetched["segment"] == "champions"


def test_a_cleared_segment_leaves_the_filter_and_a_late_older_change_does_not_bring_it_back(
    customers, customers_container, nameko_config, make_customer, admin
):
    """Every purchase of the customer was cancelled or refunded: ``segment.cleared`` takes
    them out of the segment filter, where they stayed under their last segment for ever."""
    tag = unique_tag()
    customer = make_customer(tags=[tag])
    joined = segment_changed(customer["id"], "new")
    cleared = envelope(
        "analytics",
        "segment.cleared",
        {
            "customer_id": customer["id"],
            "previous_segment": "new",
            "as_of": datetime.now(UTC).date().isoformat(),
            "currency": "CNY",
        },
    )
    cleared["stream_type"], cleared["stream_id"] = "customer_segment", customer["id"]
    for message in (joined, cleared, joined):  # the older change delivered again, late
        _dispatch(customers_container, nameko_config, message)
    assert customers.search_customers(viewer=admin, tag=tag, segment="new")["items"] == []
    assert customers.get_customer(viewer=admin, customer_id=customer["id"])["segment"] is None


def test_an_imported_order_is_paid_at_its_purchase_time_on_the_timeline(
    customers, customers_container, nameko_config, make_customer, admin
):
    """An order imported as paid: its order.paid comes with the import, years after the
    purchase; the timeline put it at the import and the order at its purchase time."""
    customer = make_customer()
    order_id = str(uuid.uuid4())
    two_years_ago = datetime.now(UTC) - timedelta(days=730)
    order = placed(customer["id"], order_id, two_years_ago)
    paid = envelope(
        "orders",
        "order.paid",
        {
            "order_id": order_id,
            "customer_id": customer["id"],
            "currency": "CNY",
            "paid_amount": 3390,
            "total": 3390,
        },
    )
    for message in (order, paid):
        message["metadata"] = {"import_external_id": "legacy-1", "actor_kind": "user"}
        _dispatch(customers_container, nameko_config, message)
    items = customers.timeline(viewer=admin, customer_id=customer["id"])["items"]
    at = {item["type"]: item["at"][:10] for item in items}
    assert at["order.paid"] == at["order.placed"] == two_years_ago.date().isoformat()
