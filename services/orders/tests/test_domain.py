"""The order aggregate and the pricing rule, without I/O: every state x every action, totals
with discounts and the one rounding rule."""

import uuid

import pytest

from services.orders.domain import (
    ACTION_EVENTS,
    ALLOWED,
    STATUSES,
    Order,
    Product,
    price_lines,
    round_half_even,
    tax_of,
)
from services.orders.events import registry
from shared.errors import BadRequest, RuleViolation


class Event:
    def __init__(self, type, payload):
        self.type = type
        self.payload = payload


def _line(quantity=1, unit_price=1000, line_discount=0):
    return {
        "line_id": str(uuid.uuid4()),
        "product_id": str(uuid.uuid4()),
        "sku": "SKU-1",
        "name": "Tea",
        "category": None,
        "brand": None,
        "quantity": quantity,
        "unit_price": unit_price,
        "line_discount": line_discount,
    }


def placed(total=1000):
    order_id = str(uuid.uuid4())
    order = Order(order_id)
    totals = price_lines([_line(unit_price=total)])
    for event_type, payload in Order.place(
        order_id, "SO1", str(uuid.uuid4()), "CNY", totals, "2026-01-01T00:00:00Z"
    ):
        registry.new_event(event_type, payload)  # the payload matches the catalogue
        order.apply(event_type, payload)
    return order


def run(order, changes):
    for event_type, payload in changes:
        registry.new_event(event_type, payload)
        order.apply(event_type, payload)
    return order


def in_state(status):
    """An order brought to ``status`` through the workflow's own commands."""
    order = placed()
    if status == "placed":
        return order
    if status == "partially_paid":
        return run(order, order.apply_payment("p1", "capture", 400))
    run(order, order.apply_payment("p1", "capture", 1000))
    if status == "paid":
        return order
    if status == "cancelled":
        return run(order, order.act("cancel", "changed mind"))
    run(order, order.act("fulfil"))
    if status == "fulfilled":
        return order
    if status == "returned":
        return run(order, order.act("return", "broken"))
    return run(order, order.act("complete"))


def test_every_status_can_be_reached():
    assert {in_state(status).status for status in STATUSES} == set(STATUSES)


@pytest.mark.parametrize("action", list(ACTION_EVENTS))
@pytest.mark.parametrize("status", STATUSES)
def test_status_actions_in_every_state(status, action):
    order = in_state(status)
    if status in ALLOWED[action]:
        changes = order.act(action, "why")
        assert [event for event, _ in changes] == [ACTION_EVENTS[action]]
        run(order, changes)
        assert order.status == ACTION_EVENTS[action].split(".")[1]
    else:
        with pytest.raises(RuleViolation) as refused:
            order.act(action, "why")
        assert refused.value.extra["state"] == status
        assert refused.value.extra["code"] == "action_not_allowed"
        assert status in str(refused.value)


EDITABLE = {"placed"}


@pytest.mark.parametrize("status", STATUSES)
def test_edits_only_before_any_payment(status):
    order = in_state(status)
    totals = price_lines([_line(quantity=2)])
    if status in EDITABLE:
        run(order, order.change_lines(totals))
        assert order.total == 2000
        ((event_type, payload),) = order.change_address({"country": "CN"})
        order.apply(event_type, payload)  # sealed by the store before it is appended
        assert order.delivery_address == {"country": "CN"}
    else:
        with pytest.raises(RuleViolation) as refused:
            order.change_lines(totals)
        assert refused.value.extra["state"] == status
        with pytest.raises(RuleViolation):
            order.change_address({"country": "CN"})


def test_an_order_refunded_back_to_nothing_is_placed_but_no_longer_editable():
    order = in_state("partially_paid")
    run(order, order.apply_payment("p1", "refund", 400, refund_id="r1"))
    assert order.status == "placed" and order.paid_amount == 0
    with pytest.raises(RuleViolation) as refused:
        order.change_lines(price_lines([_line()]))
    assert refused.value.extra["code"] == "paid_before"


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("kind", ["capture", "refund"])
def test_payments_in_every_state(status, kind):
    order = in_state(status)
    before_paid = order.paid_amount
    amount = 100 if kind == "refund" else order.total - order.paid_amount or 100
    changes = order.apply_payment(f"x-{kind}", kind, amount, refund_id="r9")
    types = [event for event, _ in changes]
    assert types[0] == "order.payment_applied"
    run(order, changes)
    expected_paid = before_paid + amount if kind == "capture" else before_paid - amount
    assert order.paid_amount == expected_paid
    if status in ("placed", "partially_paid", "paid"):
        if expected_paid >= order.total:
            assert order.status == "paid"
        elif expected_paid <= 0:
            assert order.status == "placed"
        elif status == "paid":
            assert order.status == "paid"  # a partial refund of a paid order: a concession
            assert types == ["order.payment_applied"]
        else:
            assert order.status == "partially_paid"
    else:
        assert order.status == status  # after fulfilment, cancel or return: counted, no move
        assert types == ["order.payment_applied"]


def test_paid_exactly_when_captured_covers_the_total():
    order = placed(total=1000)
    run(order, order.apply_payment("a", "capture", 999))
    assert order.status == "partially_paid"
    changes = order.apply_payment("b", "capture", 1)
    assert [t for t, _ in changes] == ["order.payment_applied", "order.paid"]
    run(order, changes)
    assert order.status == "paid"
    run(order, order.apply_payment("b", "refund", 1, refund_id="r1"))
    assert order.status == "paid"  # money given back on a paid order does not unpay it


def test_a_goodwill_refund_leaves_a_paid_order_paid_and_ready_to_ship():
    order = in_state("paid")
    changes = order.apply_payment("p1", "refund", 300, refund_id="r1")
    assert [t for t, _ in changes] == ["order.payment_applied"]
    run(order, changes)
    assert (order.status, order.paid_amount) == ("paid", 700)
    run(order, order.act("fulfil"))
    assert order.status == "fulfilled"


def test_a_paid_order_refunded_in_full_is_placed_again():
    order = in_state("paid")
    run(order, order.apply_payment("p1", "refund", 600, refund_id="r1"))
    ((event_type, payload),) = order.apply_payment("p1", "refund", 400, refund_id="r2")
    assert (event_type, payload["status"]) == ("order.payment_applied", "placed")  # for readers
    run(order, [(event_type, payload)])
    assert (order.status, order.paid_amount) == ("placed", 0)
    run(order, order.apply_payment("p2", "capture", 400))
    assert order.status == "partially_paid"


def test_the_same_capture_twice_counts_once():
    order = placed()
    run(order, order.apply_payment("a", "capture", 300))
    assert order.apply_payment("a", "capture", 300) == []
    assert order.paid_amount == 300


# -- totals ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(5, 10, 0), (15, 10, 2), (25, 10, 2), (26, 10, 3), (24, 10, 2), (0, 7, 0), (35, 10, 4)],
)
def test_round_half_even(numerator, denominator, expected):
    assert round_half_even(numerator, denominator) == expected


def test_tax_rounds_half_to_even_in_minor_units():
    assert tax_of(50, 1000) == 5  # exact
    assert tax_of(5, 1000) == 0  # 0.5 -> 0 (even)
    assert tax_of(15, 1000) == 2  # 1.5 -> 2 (even)
    assert tax_of(25, 1000) == 2  # 2.5 -> 2 (even)
    assert tax_of(1999, 1300) == 260  # 259.87 -> 260
    assert tax_of(1250, 600) == 75  # exact
    assert tax_of(1225, 600) == 74  # 73.5 -> 74 (even)
    assert tax_of(1275, 600) == 76  # 76.5 -> 76 (even)


def test_totals_with_line_and_order_discounts():
    totals = price_lines(
        [_line(quantity=3, unit_price=1999, line_discount=97), _line(quantity=1, unit_price=500)],
        order_discount=400,
        tax_rate=1300,
    )
    assert [line["line_total"] for line in totals.lines] == [5900, 500]
    assert totals.subtotal == 6400
    taxable = 6400 - 400
    assert totals.tax == 780  # 6000 * 13 % exactly
    assert totals.total == taxable + 780


def test_totals_half_cent_rounds_to_even():
    totals = price_lines([_line(quantity=1, unit_price=1225)], order_discount=0, tax_rate=600)
    assert (totals.tax, totals.total) == (74, 1299)
    totals = price_lines([_line(quantity=1, unit_price=1300)], order_discount=25, tax_rate=600)
    assert (totals.tax, totals.total) == (76, 1351)  # 1275 * 6 % = 76.5 -> 76


@pytest.mark.parametrize(
    ("lines", "discount", "field"),
    [
        ([_line(quantity=1, unit_price=100, line_discount=101)], 0, "lines.0.line_discount"),
        ([_line(quantity=1, unit_price=100)], 101, "order_discount"),
        ([], 0, "lines"),
        ([_line(quantity=0)], 0, "lines.0.quantity"),
    ],
)
def test_discounts_cannot_exceed_what_they_discount(lines, discount, field):
    with pytest.raises(BadRequest) as refused:
        price_lines(lines, order_discount=discount)
    assert field in refused.value.extra["errors"]


def test_a_price_change_is_its_own_event_and_the_currency_is_fixed():
    product = Product("p")
    for event in Product.create("p", {"sku": "A", "name": "A", "price": 100, "currency": "CNY"}):
        product.apply(*event)
    changes = product.update({"price": 120, "name": "A"})
    assert [t for t, _ in changes] == ["product.price_changed"]
    assert changes[0][1]["old_price"] == 100 and changes[0][1]["new_price"] == 120
    with pytest.raises(RuleViolation):
        product.update({"currency": "USD"})


def test_an_order_of_nothing_owed_is_paid_as_it_is_placed_and_can_ship():
    """Free goods (or a discount of the whole subtotal) leave nothing to pay: such an order
    is paid at once, by the rule that paid means paid_amount >= total, and can be fulfilled;
    it was stuck as placed, since a payment must be positive."""
    free = placed(total=0)
    assert (free.status, free.total, free.paid_amount) == ("paid", 0, 0)
    assert "fulfil" in free.available_actions()
    assert run(free, free.act("fulfil")).status == "fulfilled"
    discounted = placed()
    totals = price_lines([_line(unit_price=1000)], order_discount=1000)
    assert [event for event, _ in discounted.change_lines(totals)] == [
        "order.lines_changed",
        "order.paid",
    ]
    assert run(discounted, discounted.change_lines(totals)).status == "paid"
    priced = placed(total=1000)
    assert priced.status == "placed"
