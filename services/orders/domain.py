"""The catalogue and the order aggregate: commands decide which events happen, ``apply`` folds
events into state. Pure: no I/O, no clock (times come in as arguments).

Money is an integer number of minor units with an ISO 4217 currency beside it.

**Totals: one rounding rule.** For each line ``line_total = quantity * unit_price -
line_discount`` (exact; a line discount cannot exceed its gross amount). ``subtotal`` is the
sum of the line totals; ``taxable = subtotal - order_discount`` (an order discount cannot
exceed the subtotal); ``tax = round_half_even(taxable * tax_rate / 10000)`` with ``tax_rate``
in basis points (1300 = 13 %); ``total = taxable + tax``. That one division is the only place
a fraction of a minor unit can arise, and it is rounded half to even (banker's rounding), in
integers, never through a float.

**Workflow.** ``placed → partially_paid → paid → fulfilled → completed``; ``cancelled`` from
placed, partially_paid or paid; ``returned`` from fulfilled or completed. Payment-driven
moves come from the payments service's events: each capture or refund is an
``order.payment_applied`` (``paid_amount`` = captured - refunded so far); an order that is not
yet fulfilled becomes ``paid`` exactly when ``paid_amount ≥ total``, ``partially_paid`` when
``0 < paid_amount < total`` (from ``placed``), and ``placed`` again when a refund brings
``paid_amount`` back to 0. A partial refund of a ``paid`` order leaves it ``paid``: money given
back on a paid order is a concession (a goodwill refund), and the order can still be fulfilled;
what its total is short of stays visible as ``paid_amount``. After fulfilment, cancellation or
return, payments are still counted but the status does not move. Lines and address can be
edited only while the order is ``placed`` and nothing was ever paid on it. An order whose total
is 0 (free goods, a discount of the whole subtotal) owes nothing, so by the same rule it is
``paid`` as it is placed (or as its lines change to a total of 0): ``order.paid`` follows
``order.placed`` in the same command, and it can be fulfilled without a payment.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from shared.errors import BadRequest, RuleViolation

Change = tuple[str, dict[str, Any]]

STATUSES = (
    "placed",
    "partially_paid",
    "paid",
    "fulfilled",
    "completed",
    "cancelled",
    "returned",
)
OPEN_FOR_PAYMENT = ("placed", "partially_paid", "paid")

#: action → the statuses it is allowed from.
ALLOWED: dict[str, tuple[str, ...]] = {
    "fulfil": ("paid",),
    "complete": ("fulfilled",),
    "cancel": ("placed", "partially_paid", "paid"),
    "return": ("fulfilled", "completed"),
    "change_lines": ("placed",),
    "change_address": ("placed",),
}
ACTIONS = tuple(ALLOWED)
#: What each status action appends.
ACTION_EVENTS = {
    "fulfil": "order.fulfilled",
    "complete": "order.completed",
    "cancel": "order.cancelled",
    "return": "order.returned",
}
STATUS_OF_EVENT = {
    "order.placed": "placed",
    "order.partially_paid": "partially_paid",
    "order.paid": "paid",
    "order.fulfilled": "fulfilled",
    "order.completed": "completed",
    "order.cancelled": "cancelled",
    "order.returned": "returned",
}
BASIS_POINTS = 10_000
MAX_QUANTITY = 1_000_000
MAX_AMOUNT = 10**13  # minor units: far above any real order, far below bigint


# -- money --------------------------------------------------------------------------------------


def round_half_even(numerator: int, denominator: int) -> int:
    """``numerator / denominator`` rounded to the nearest integer, ties to even (exact)."""
    if denominator <= 0:
        raise ValueError("denominator must be positive")
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return quotient


def tax_of(taxable: int, tax_rate: int) -> int:
    """The rounding rule: round half to even of ``taxable * tax_rate / 10000``."""
    return round_half_even(taxable * tax_rate, BASIS_POINTS)


@dataclass(frozen=True)
class Totals:
    lines: list[dict[str, Any]]
    subtotal: int
    order_discount: int
    tax_rate: int
    tax: int
    total: int

    def payload(self) -> dict[str, Any]:
        return {
            "lines": self.lines,
            "subtotal": self.subtotal,
            "order_discount": self.order_discount,
            "tax_rate": self.tax_rate,
            "tax": self.tax,
            "total": self.total,
        }


def _paid_if_free(ids: Mapping[str, Any], currency: str, totals: Totals) -> list[Change]:
    """``order.paid`` for an order whose total is 0: nothing is owed, so it is paid."""
    if totals.total != 0:
        return []
    return [("order.paid", {**ids, "currency": currency, "paid_amount": 0, "total": 0})]


def price_lines(
    lines: Sequence[Mapping[str, Any]], order_discount: int = 0, tax_rate: int = 0
) -> Totals:
    """Line totals, subtotal, tax and total of priced lines (each with ``quantity``,
    ``unit_price`` and ``line_discount``); errors name the field (``lines.1.line_discount``)."""
    errors: dict[str, list[str]] = {}
    priced = []
    for index, line in enumerate(lines):
        quantity, unit_price = int(line["quantity"]), int(line["unit_price"])
        discount = int(line.get("line_discount") or 0)
        if not 1 <= quantity <= MAX_QUANTITY:
            errors[f"lines.{index}.quantity"] = [f"Must be between 1 and {MAX_QUANTITY}."]
            continue
        if unit_price < 0:
            errors[f"lines.{index}.unit_price"] = ["Must be 0 or more."]
            continue
        gross = quantity * unit_price
        if not 0 <= discount <= gross:
            errors[f"lines.{index}.line_discount"] = [
                "Must be between 0 and the line's quantity * unit price."
            ]
            continue
        priced.append({**line, "line_discount": discount, "line_total": gross - discount})
    if not lines:
        errors["lines"] = ["At least one line is required."]
    if errors:
        raise BadRequest.for_fields(errors)
    subtotal = sum(line["line_total"] for line in priced)
    if not 0 <= order_discount <= subtotal:
        raise BadRequest.for_fields(
            {"order_discount": ["Must be between 0 and the subtotal of the lines."]}
        )
    if not 0 <= tax_rate <= BASIS_POINTS:
        raise BadRequest.for_fields({"tax_rate": ["Must be between 0 and 10000 basis points."]})
    taxable = subtotal - order_discount
    tax = tax_of(taxable, tax_rate)
    total = taxable + tax
    if total > MAX_AMOUNT:
        raise BadRequest.for_fields({"lines": ["The order's total is too large."]})
    return Totals(priced, subtotal, order_discount, tax_rate, tax, total)


# -- catalogue ----------------------------------------------------------------------------------


@dataclass
class Product:
    id: str
    sku: str = ""
    name: str = ""
    category: str | None = None
    brand: str | None = None
    price: int = 0
    currency: str = ""
    active: bool = True
    version: int = 0

    @classmethod
    def from_events(cls, product_id: str, events: Sequence[Any]) -> Product:
        product = cls(product_id)
        for event in events:
            product.apply(event.type, event.payload)
        return product

    @staticmethod
    def create(product_id: str, data: Mapping[str, Any]) -> list[Change]:
        return [
            (
                "product.created",
                {
                    "product_id": product_id,
                    "sku": data["sku"],
                    "name": data["name"],
                    "category": data.get("category"),
                    "brand": data.get("brand"),
                    "price": data["price"],
                    "currency": data["currency"],
                    "active": data.get("active", True),
                },
            )
        ]

    def update(self, changes: Mapping[str, Any]) -> list[Change]:
        """``product.updated`` with the fields that really change, ``product.price_changed``
        when the price does. The currency of a product never changes."""
        if "currency" in changes and changes["currency"] != self.currency:
            raise RuleViolation(
                "a product's currency cannot change: create another product",
                {"code": "currency_fixed"},
            )
        events: list[Change] = []
        updated = {
            name: changes[name]
            for name in ("name", "category", "brand", "active")
            if name in changes and changes[name] != getattr(self, name)
        }
        if updated:
            events.append(("product.updated", {"product_id": self.id, "changes": updated}))
        if "price" in changes and changes["price"] != self.price:
            events.append(
                (
                    "product.price_changed",
                    {
                        "product_id": self.id,
                        "old_price": self.price,
                        "new_price": changes["price"],
                        "currency": self.currency,
                    },
                )
            )
        return events

    def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
        self.version += 1
        if event_type == "product.created":
            for name in ("sku", "name", "category", "brand", "price", "currency", "active"):
                setattr(self, name, payload[name])
        elif event_type == "product.updated":
            for name, value in payload["changes"].items():
                setattr(self, name, value)
        elif event_type == "product.price_changed":
            self.price = payload["new_price"]


# -- orders -------------------------------------------------------------------------------------


def not_allowed(action: str, status: str) -> RuleViolation:
    return RuleViolation(
        f"an order that is {status} cannot be {PAST[action]}",
        {"code": "action_not_allowed", "action": action, "state": status},
    )


PAST = {
    "fulfil": "fulfilled",
    "complete": "completed",
    "cancel": "cancelled",
    "return": "returned",
    "change_lines": "edited (lines)",
    "change_address": "edited (address)",
}


@dataclass
class Order:
    id: str
    number: str = ""
    customer_id: str = ""
    currency: str = ""
    lines: list[dict[str, Any]] = field(default_factory=list)
    subtotal: int = 0
    order_discount: int = 0
    tax_rate: int = 0
    tax: int = 0
    total: int = 0
    paid_amount: int = 0
    ever_paid: bool = False
    status: str = "new"
    placed_at: str | None = None
    source: str = "api"
    external_id: str | None = None
    delivery_address: Any = None
    notes: Any = None
    applied: set[str] = field(default_factory=set)
    version: int = 0

    @classmethod
    def from_events(cls, order_id: str, events: Sequence[Any]) -> Order:
        order = cls(order_id)
        for event in events:
            order.apply(event.type, event.payload)
        return order

    @property
    def exists(self) -> bool:
        return self.version > 0

    def _base(self) -> dict[str, Any]:
        return {"order_id": self.id, "customer_id": self.customer_id, "currency": self.currency}

    def allows(self, action: str) -> bool:
        if self.status not in ALLOWED[action]:
            return False
        if action in ("change_lines", "change_address"):
            return not self.ever_paid
        return True

    def require(self, action: str) -> None:
        if not self.allows(action):
            if action in ("change_lines", "change_address") and self.status == "placed":
                raise RuleViolation(
                    "an order can be edited only before any payment",
                    {"code": "paid_before", "action": action, "state": self.status},
                )
            raise not_allowed(action, self.status)

    def available_actions(self) -> list[str]:
        return [action for action in ACTIONS if self.allows(action)]

    # -- commands ----------------------------------------------------------------------------

    @staticmethod
    def place(
        order_id: str,
        number: str,
        customer_id: str,
        currency: str,
        totals: Totals,
        placed_at: str,
        delivery_address: Any = None,
        notes: str | None = None,
        source: str = "api",
        external_id: str | None = None,
    ) -> list[Change]:
        return [
            (
                "order.placed",
                {
                    "order_id": order_id,
                    "number": number,
                    "customer_id": customer_id,
                    "currency": currency,
                    **totals.payload(),
                    "placed_at": placed_at,
                    "source": source,
                    "external_id": external_id,
                    "delivery_address": delivery_address,
                    "notes": notes,
                },
            ),
            *_paid_if_free({"order_id": order_id, "customer_id": customer_id}, currency, totals),
        ]

    def change_lines(self, totals: Totals) -> list[Change]:
        self.require("change_lines")
        return [
            ("order.lines_changed", {**self._base(), **totals.payload()}),
            *_paid_if_free(self._base(), self.currency, totals),
        ]

    def change_address(self, address: Any) -> list[Change]:
        self.require("change_address")
        return [("order.address_changed", {**self._base(), "delivery_address": address})]

    def act(self, action: str, reason: str | None = None) -> list[Change]:
        """fulfil, complete, cancel or return."""
        if action not in ACTION_EVENTS:
            raise BadRequest.for_fields(
                {"action": [f"Must be one of: {', '.join(ACTION_EVENTS)}."]}
            )
        self.require(action)
        payload = self._base()
        if action in ("cancel", "return"):
            payload["reason"] = reason
        return [(ACTION_EVENTS[action], payload)]

    def apply_payment(
        self, payment_id: str, kind: str, amount: int, refund_id: str | None = None
    ) -> list[Change]:
        """A capture or refund of the payments service. The same capture or refund counted
        twice changes nothing; after it, the status follows ``paid_amount`` (before
        fulfilment only)."""
        key = f"{kind}:{payment_id}:{refund_id or ''}"
        if key in self.applied or amount <= 0:
            return []
        paid = self.paid_amount + amount if kind == "capture" else self.paid_amount - amount
        status = self._status_after(paid)
        events: list[Change] = [
            (
                "order.payment_applied",
                {
                    **self._base(),
                    "payment_id": payment_id,
                    "kind": kind,
                    "amount": amount,
                    "paid_amount": paid,
                    "total": self.total,
                    "refund_id": refund_id,
                    "status": status,
                },
            )
        ]
        if status != self.status and status in ("paid", "partially_paid"):
            summary = {**self._base(), "paid_amount": paid, "total": self.total}
            events.append((f"order.{status}", summary))
        return events

    def _status_after(self, paid: int) -> str:
        """The status once ``paid`` is what the order has kept (see the workflow above)."""
        if self.status not in OPEN_FOR_PAYMENT:
            return self.status
        if paid >= self.total:
            return "paid"
        if paid <= 0:
            return "placed"
        return "partially_paid" if self.status == "placed" else self.status

    # -- fold --------------------------------------------------------------------------------

    def apply(self, event_type: str, payload: Mapping[str, Any]) -> None:
        self.version += 1
        if event_type == "order.placed":
            for name in (
                "number",
                "customer_id",
                "currency",
                "placed_at",
                "source",
                "external_id",
                "delivery_address",
                "notes",
            ):
                setattr(self, name, payload.get(name))
            self.customer_id = str(payload["customer_id"])
            self._totals(payload)
        elif event_type == "order.lines_changed":
            self._totals(payload)
        elif event_type == "order.address_changed":
            self.delivery_address = payload.get("delivery_address")
        elif event_type == "order.payment_applied":
            kind, refund = payload["kind"], payload.get("refund_id")
            self.applied.add(f"{kind}:{payload['payment_id']}:{refund or ''}")
            self.paid_amount = payload["paid_amount"]
            self.ever_paid = True
            if self.paid_amount <= 0 and self.status in ("partially_paid", "paid"):
                self.status = "placed"
        if event_type in STATUS_OF_EVENT:
            self.status = STATUS_OF_EVENT[event_type]

    def _totals(self, payload: Mapping[str, Any]) -> None:
        self.lines = list(payload["lines"])
        for name in ("subtotal", "order_discount", "tax", "total"):
            setattr(self, name, payload[name])
        self.tax_rate = payload.get("tax_rate", 0)
