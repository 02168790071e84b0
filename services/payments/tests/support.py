"""Helpers of the payments tests: contract-shaped orders.events envelopes fed to the payments
service (the way its consumer receives them), waiting for a state, signing sandbox webhooks."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import eventlet
from nameko.standalone.rpc import ClusterRpcProxy

#: sandbox test cards (services/payments/providers/sandbox.py)
SUCCESS_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
CONFIRM_CARD = "4000002500003155"
CARD = {"exp_month": 12, "exp_year": datetime.now(UTC).year + 3, "cvc": "987"}


def order_envelope(
    event_type: str,
    order_id: str,
    customer_id: str,
    total: int,
    currency: str = "CNY",
    version: int = 1,
    **extra: Any,
) -> dict[str, Any]:
    """An envelope as the orders service publishes it (docs/service-contracts.md)."""
    payload: dict[str, Any] = {
        "order_id": order_id,
        "customer_id": customer_id,
        "currency": currency,
    }
    if event_type == "order.placed":
        payload.update(
            number=f"SO-{uuid.uuid4().hex[:8]}",
            lines=[],
            subtotal=total,
            order_discount=0,
            tax=0,
            total=total,
            placed_at=datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            source="api",
            external_id=None,
            delivery_address=None,
            notes=None,
        )
    elif event_type == "order.lines_changed":
        payload.update(lines=[], subtotal=total, order_discount=0, tax=0, total=total)
    else:
        payload.update(reason=extra.pop("reason", "test"))
    payload.update(extra)
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "schema_version": 1,
        "source": "orders",
        "stream_type": "order",
        "stream_id": order_id,
        "stream_version": version,
        "position": None,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "metadata": {},
        "payload": payload,
    }


def feed(nameko_config, *envelopes: dict[str, Any]) -> int:
    with ClusterRpcProxy(nameko_config, timeout=15) as cluster:
        return cluster.payments.apply_order_events(envelopes=list(envelopes))["applied"]


def place_order(
    nameko_config, total: int, currency: str = "CNY", customer_id: str | None = None
) -> dict[str, str]:
    order = {"order_id": str(uuid.uuid4()), "customer_id": customer_id or str(uuid.uuid4())}
    assert (
        feed(nameko_config, order_envelope("order.placed", total=total, currency=currency, **order))
        == 1
    )
    return order


def wait_for(check, timeout: float = 15.0, interval: float = 0.05):
    """Poll ``check()`` until it returns something truthy (an outcome arriving by webhook)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for the expected state")
        eventlet.sleep(interval)


def webhook_body(reference: str, payment: dict[str, Any], kind: str = "succeeded", **data) -> str:
    return json.dumps(
        {
            "id": f"evt_test_{uuid.uuid4().hex}",
            "type": f"charge.{kind}",
            "created": int(time.time()),
            "data": {
                "reference": reference,
                "merchant_reference": payment["id"],
                "method": payment["method"],
                "amount": payment["amount"],
                "currency": payment["currency"],
                "failure_reason": None,
                **data,
            },
        },
        separators=(",", ":"),
    )
