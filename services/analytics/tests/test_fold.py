"""The fold of one order's events, in memory: its status follows ``order.payment_applied``'s
``status`` (a refund of everything makes a paid order placed again with no status event of
its own, so no longer a purchase), in whatever order the events arrive."""

import itertools
import uuid

import pytest

from services.analytics.projector import PURCHASED, Fold

ORDER, CUSTOMER = str(uuid.uuid4()), str(uuid.uuid4())
LINE = {"line_id": "l1", "product_id": None, "sku": "T", "name": "Tea", "category": None}


def _event(version: int, event_type: str, **payload) -> dict:
    """An orders event as docs/events.md describes it."""
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "stream_version": version,
        "occurred_at": "2026-01-01T00:00:00Z",
        "payload": {"order_id": ORDER, "customer_id": CUSTOMER, "currency": "CNY", **payload},
    }


def _applied(version: int, kind: str, paid: int, status: str) -> dict:
    return _event(
        version,
        "order.payment_applied",
        payment_id="p1",
        kind=kind,
        amount=1000,
        paid_amount=paid,
        total=1000,
        status=status,
    )


def _history(then_cancel: bool) -> list[dict]:
    """Paid in full, then refunded in full (after a cancellation, if asked)."""
    events = [
        _event(
            1,
            "order.placed",
            number="SO1",
            source="api",
            placed_at="2026-01-01T00:00:00Z",
            total=1000,
            lines=[{**LINE, "quantity": 1, "line_total": 1000}],
        ),
        _applied(2, "capture", 1000, "paid"),
        _event(3, "order.paid", paid_amount=1000, total=1000),
    ]
    if then_cancel:
        events.append(_event(4, "order.cancelled", reason="changed mind"))
    events.append(_applied(len(events) + 1, "refund", 0, "cancelled" if then_cancel else "placed"))
    return events


@pytest.mark.parametrize(("then_cancel", "status"), [(False, "placed"), (True, "cancelled")])
def test_a_paid_order_refunded_in_full_is_no_purchase_in_any_order_of_arrival(then_cancel, status):
    for arrival in itertools.permutations(_history(then_cancel)):
        fold = Fold()
        for envelope in arrival:
            fold.order_event(envelope)
        [row] = fold.orders.values()
        assert row["status"] == status, [envelope["type"] for envelope in arrival]
        assert status not in PURCHASED
