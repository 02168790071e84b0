"""A generated history of customers, orders and payments as contract-shaped envelopes
(docs/service-contracts.md), and an independent recomputation of every analytics figure
from the raw events in plain Python (no SQL, nothing shared with the projector)."""

from __future__ import annotations

import random
import uuid
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

CATEGORIES = ("数码", "家居", "服装", "食品", "图书")
METHODS = ("card", "bank_transfer", "cash", "alipay", "wechat_pay")
PURCHASED = ("paid", "fulfilled", "completed")
START = datetime(2025, 1, 1, tzinfo=UTC)
END = datetime(2026, 10, 31, tzinfo=UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


class Generator:
    def __init__(self, seed: int = 7, customers: int = 250, orders: int = 1000, existing=None):
        """``existing``: customer ids that exist already (their orders and payments only)."""
        self.existing = list(existing or [])
        self.rng = random.Random(seed)
        self.events: dict[str, list[dict[str, Any]]] = {
            "customers": [],
            "orders": [],
            "payments": [],
        }
        self.versions: dict[str, int] = defaultdict(int)
        self.customer_count, self.order_count = customers, orders

    def uid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def emit(self, source, stream_type, stream_id, kind, payload, at: datetime) -> None:
        self.versions[stream_id] += 1
        self.events[source].append(
            {
                "event_id": self.uid(),
                "type": kind,
                "schema_version": 1,
                "source": source,
                "stream_type": stream_type,
                "stream_id": stream_id,
                "stream_version": self.versions[stream_id],
                "occurred_at": _iso(at),
                "metadata": {},
                "payload": payload,
            }
        )

    def when(self, after: datetime, days: float) -> datetime:
        return after + timedelta(seconds=self.rng.uniform(60, days * 86400))

    def build(self) -> dict[str, list[dict[str, Any]]]:
        rng = self.rng
        customers = [
            (customer_id, START + timedelta(seconds=rng.uniform(0, 400 * 86400)))
            for customer_id in self.existing
        ]
        for _ in range(0 if self.existing else self.customer_count):
            customer_id = self.uid()
            registered = START + timedelta(seconds=rng.uniform(0, 400 * 86400))
            customers.append((customer_id, registered))
            self.emit(
                "customers",
                "customer",
                customer_id,
                "customer.registered",
                {"customer_id": customer_id, "kind": "person"},
                registered,
            )
        products = []
        for i in range(30):
            product_id = self.uid()
            products.append(
                {
                    "product_id": product_id,
                    "sku": f"SKU-{i:03d}",
                    "name": f"商品 {i}",
                    "category": CATEGORIES[i % len(CATEGORIES)] if i % 11 else None,
                    "brand": "CMS",
                    "price": rng.choice((990, 1999, 4500, 12900, 59900)),
                }
            )
            self.emit(
                "orders",
                "product",
                product_id,
                "product.created",
                {**products[-1], "currency": "CNY", "active": True},
                START,
            )
        for _ in range(self.order_count):
            customer_id, registered = rng.choice(customers)
            self.order(customer_id, registered, products)
        # merges: a few customers absorbed by others, one of them undone
        for index in range(0 if self.existing else 6):
            (source_id, _), (target_id, _) = rng.sample(customers, 2)
            at = END - timedelta(days=20 - index)
            merge_id = self.uid()
            payload = {"merge_id": merge_id, "source_id": source_id, "target_id": target_id}
            self.emit(
                "customers",
                "customer",
                target_id,
                "customer.merged",
                {"customer_id": target_id, **payload},
                at,
            )
            self.emit(
                "customers",
                "customer",
                source_id,
                "customer.merged",
                {"customer_id": source_id, **payload},
                at,
            )
            if index == 0:
                later = at + timedelta(hours=2)
                self.emit(
                    "customers",
                    "customer",
                    target_id,
                    "customer.merge_undone",
                    {"customer_id": target_id, **payload},
                    later,
                )
                self.emit(
                    "customers",
                    "customer",
                    source_id,
                    "customer.merge_undone",
                    {"customer_id": source_id, **payload},
                    later,
                )
        for customer_id, _ in rng.sample(customers, 0 if self.existing else 5):
            self.emit(
                "customers",
                "customer",
                customer_id,
                "customer.archived",
                {"customer_id": customer_id},
                END - timedelta(days=3),
            )
        for source, events in self.events.items():
            events.sort(key=lambda e: (e["occurred_at"], e["stream_id"], e["stream_version"]))
            for position, event in enumerate(events, 1):
                event["position"] = position
        return self.events

    def amount_line(self, amount):
        """An imported order given as its amount only (``services.orders.imports``)."""
        return {
            "line_id": "1",
            "product_id": None,
            "sku": None,
            "name": "Imported order",
            "category": None,
            "brand": None,
            "quantity": 1,
            "unit_price": amount,
            "line_discount": 0,
            "line_total": amount,
        }

    def lines(self, products):
        lines = []
        for product in self.rng.sample(products, self.rng.randint(1, 4)):
            quantity = self.rng.randint(1, 3)
            discount = self.rng.choice((0, 0, 100))
            lines.append(
                {
                    "line_id": self.uid(),
                    "product_id": product["product_id"],
                    "sku": product["sku"],
                    "name": product["name"],
                    "category": product["category"],
                    "brand": product["brand"],
                    "quantity": quantity,
                    "unit_price": product["price"],
                    "line_discount": discount,
                    "line_total": quantity * product["price"] - discount,
                }
            )
        return lines

    def order(self, customer_id, registered, products) -> None:
        rng = self.rng
        order_id = self.uid()
        currency = "USD" if rng.random() < 0.1 else "CNY"
        placed = self.when(registered, 300)
        if placed > END:
            placed = END - timedelta(days=rng.uniform(1, 30))
        imported = rng.random() < 0.06
        lines = self.lines(products)
        if imported and int(order_id[-1], 16) % 2:  # half the imports give an amount, not lines
            lines = [self.amount_line(sum(line["line_total"] for line in lines))]
        total = sum(line["line_total"] for line in lines)
        common = {"order_id": order_id, "customer_id": customer_id, "currency": currency}

        def order_event(kind, payload, at):
            self.emit("orders", "order", order_id, kind, {**common, **payload}, at)

        totals = {"subtotal": total, "order_discount": 0, "tax": 0, "total": total}
        recorded = END + timedelta(days=1) if imported else placed
        order_event(
            "order.placed",
            {
                "number": f"SO-{order_id[:8]}",
                "lines": lines,
                **totals,
                "placed_at": _iso(placed),
                "source": "import" if imported else "api",
                "external_id": f"EXT-{order_id[:6]}" if imported else None,
                "delivery_address": None,
                "notes": None,
            },
            recorded,
        )
        if imported:
            if rng.random() < 0.8:
                order_event(
                    "order.payment_applied",
                    {
                        "payment_id": f"import-{order_id[:8]}",
                        "kind": "capture",
                        "amount": total,
                        "paid_amount": total,
                        "total": total,
                    },
                    recorded,
                )
                order_event("order.paid", {"paid_amount": total, "total": total}, recorded)
                order_event("order.completed", {}, recorded)
            return
        at = placed
        if rng.random() < 0.15:
            lines = self.lines(products)
            total = sum(line["line_total"] for line in lines)
            totals = {"subtotal": total, "order_discount": 0, "tax": 0, "total": total}
            at = self.when(at, 1)
            order_event("order.lines_changed", {"lines": lines, **totals}, at)
        if rng.random() < 0.08:
            order_event("order.cancelled", {"reason": "customer"}, self.when(at, 2))
            return
        paid = 0
        parts = [total] if rng.random() < 0.85 else [total // 2, total - total // 2]
        captured = []
        for part in parts:
            while True:
                method = rng.choice(METHODS)
                payment_id = self.uid()
                pay = {**common, "payment_id": payment_id, "method": method, "amount": part}
                at = self.when(at, 1)
                self.emit(
                    "payments",
                    "payment",
                    payment_id,
                    "payment.initiated",
                    {
                        **pay,
                        "provider": "manual" if method in ("cash", "bank_transfer") else "sandbox",
                        "card": None,
                    },
                    at,
                )
                outcome = rng.random()
                if outcome < 0.12:
                    self.emit(
                        "payments",
                        "payment",
                        payment_id,
                        "payment.failed",
                        {**pay, "reason": "declined"},
                        self.when(at, 0.1),
                    )
                    continue
                if outcome < 0.16:
                    self.emit(
                        "payments", "payment", payment_id, "payment.expired", pay, self.when(at, 1)
                    )
                    continue
                if outcome < 0.18:
                    self.emit(
                        "payments",
                        "payment",
                        payment_id,
                        "payment.cancelled",
                        {**pay, "reason": "changed mind"},
                        self.when(at, 0.2),
                    )
                    return
                if method == "card":
                    at = self.when(at, 0.01)
                    self.emit("payments", "payment", payment_id, "payment.authorized", pay, at)
                at = self.when(at, 0.05)
                self.emit(
                    "payments",
                    "payment",
                    payment_id,
                    "payment.captured",
                    {**pay, "captured_at": _iso(at)},
                    at,
                )
                paid += part
                captured.append((payment_id, pay, part))
                applied_at = at + timedelta(seconds=2)
                order_event(
                    "order.payment_applied",
                    {
                        "payment_id": payment_id,
                        "kind": "capture",
                        "amount": part,
                        "paid_amount": paid,
                        "total": total,
                    },
                    applied_at,
                )
                if paid >= total:
                    order_event("order.paid", {"paid_amount": paid, "total": total}, applied_at)
                else:
                    order_event(
                        "order.partially_paid", {"paid_amount": paid, "total": total}, applied_at
                    )
                break
        fate = rng.random()
        if fate < 0.05:  # cancelled after payment: every capture refunded
            at = self.when(at, 3)
            order_event("order.cancelled", {"reason": "out of stock"}, at)
            self.refund_all(captured, at)
            return
        at = self.when(at, 3)
        order_event("order.fulfilled", {}, at)
        if fate < 0.09:
            at = self.when(at, 10)
            order_event("order.returned", {"reason": "damaged"}, at)
            self.refund_all(captured, at)
            return
        order_event("order.completed", {}, self.when(at, 5))
        if fate < 0.14:  # a partial refund, goodwill
            payment_id, pay, part = captured[0]
            amount = max(1, part // 10)
            self.emit(
                "payments",
                "payment",
                payment_id,
                "payment.refunded",
                {
                    **pay,
                    "refund_id": self.uid(),
                    "amount": amount,
                    "refunded_total": amount,
                    "captured_amount": part,
                    "reason": "goodwill",
                },
                self.when(at, 20),
            )

    def refund_all(self, captured, at) -> None:
        for payment_id, pay, part in captured:
            self.emit(
                "payments",
                "payment",
                payment_id,
                "payment.refunded",
                {
                    **pay,
                    "refund_id": self.uid(),
                    "amount": part,
                    "refunded_total": part,
                    "captured_amount": part,
                    "reason": "order closed",
                },
                at + timedelta(minutes=5),
            )


def generate(**kwargs) -> dict[str, list[dict[str, Any]]]:
    return Generator(**kwargs).build()


# -- independent recomputation --------------------------------------------------------------------


def _t(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


class Reference:
    """Every figure, from the raw events folded in stream order."""

    def __init__(self, events: dict[str, list[dict[str, Any]]]):
        self.orders: dict[str, dict] = {}
        self.payments: dict[str, dict] = {}
        self.refunds: list[dict] = []
        self.applied: list[dict] = []
        self.merged_into: dict[str, str | None] = {}
        streams = defaultdict(list)
        for source_events in events.values():
            for event in source_events:
                streams[event["stream_id"]].append(event)
        seen = set()
        for stream in streams.values():
            for event in sorted(stream, key=lambda e: e["stream_version"]):
                if event["event_id"] in seen:
                    continue
                seen.add(event["event_id"])
                self.fold(event)

    def fold(self, event) -> None:
        kind, payload = event["type"], event["payload"]
        if kind in ("customer.merged", "customer.merge_undone"):
            if payload["customer_id"] == payload["source_id"]:
                self.merged_into[payload["source_id"]] = (
                    payload["target_id"] if kind == "customer.merged" else None
                )
        elif kind.startswith("order."):
            order = self.orders.setdefault(payload["order_id"], {"status": None})
            order["customer_id"] = payload["customer_id"]
            order["currency"] = payload["currency"]
            if kind == "order.placed":
                order["placed_at"] = _t(payload["placed_at"])
                order["source"] = payload["source"]
            if kind in ("order.placed", "order.lines_changed"):
                order["total"], order["lines"] = payload["total"], payload["lines"]
            if kind == "order.payment_applied":
                self.applied.append(payload)
            status = {
                "order.placed": "placed",
                "order.paid": "paid",
                "order.partially_paid": "partially_paid",
                "order.fulfilled": "fulfilled",
                "order.completed": "completed",
                "order.cancelled": "cancelled",
                "order.returned": "returned",
            }.get(kind)
            if status:
                order["status"] = status
        elif kind.startswith("payment."):
            payment = self.payments.setdefault(payload["payment_id"], {})
            payment.update(method=payload["method"], currency=payload["currency"])
            at = _t(event["occurred_at"])
            payment["attempted_at"] = min(payment.get("attempted_at", at), at)
            if kind == "payment.captured":
                payment["captured"] = payload["amount"]
                payment["captured_at"] = _t(payload["captured_at"])
            if kind == "payment.refunded":
                self.refunds.append({**payload, "at": at})
            payment["status"] = kind.split(".")[1]

    # -- helpers ----------------------------------------------------------------------------

    def who(self, customer_id: str) -> str:
        return self.merged_into.get(customer_id) or customer_id

    def purchases(self, date_from=None, date_to=None, currency=None):
        for order_id, order in self.orders.items():
            if order["status"] in PURCHASED and _within(order["placed_at"], date_from, date_to):
                if currency is None or order["currency"] == currency:
                    yield order_id, order

    def entries(self, date_from=None, date_to=None, currency=None):
        out = []
        for payment in self.payments.values():
            if "captured_at" in payment:
                out.append(
                    (
                        payment["captured_at"],
                        payment["currency"],
                        payment["method"],
                        payment["captured"],
                    )
                )
        for refund in self.refunds:
            out.append((refund["at"], refund["currency"], refund["method"], -refund["amount"]))
        for applied in self.applied:
            order = self.orders[applied["order_id"]]
            if order.get("source") == "import" and applied["payment_id"] not in self.payments:
                sign = 1 if applied["kind"] == "capture" else -1
                out.append(
                    (order["placed_at"], applied["currency"], "imported", sign * applied["amount"])
                )
        return [
            e
            for e in out
            if _within(e[0], date_from, date_to) and (currency is None or e[1] == currency)
        ]

    # -- figures ----------------------------------------------------------------------------

    def revenue(self, granularity="day", **filters):
        sums = defaultdict(lambda: [0, 0])
        for at, currency, _method, amount in self.entries(**filters):
            day = at.astimezone(UTC).date()
            if granularity == "week":
                day -= timedelta(days=day.weekday())
            elif granularity == "month":
                day = day.replace(day=1)
            sums[(day, currency)][0 if amount > 0 else 1] += abs(amount)
        return [
            {
                "period": day.isoformat(),
                "currency": currency,
                "captured": c,
                "refunded": r,
                "net": c - r,
            }
            for (day, currency), (c, r) in sorted(sums.items())
        ]

    def by_method(self, **filters):
        sums = defaultdict(lambda: [0, 0])
        for _at, currency, method, amount in self.entries(**filters):
            sums[(method, currency)][0] += amount
            sums[(method, currency)][1] += amount > 0
        rows = [
            {"method": m, "currency": c, "net": n, "captures": k} for (m, c), (n, k) in sums.items()
        ]
        return sorted(rows, key=lambda r: (r["currency"], -r["net"], r["method"]))

    def products(self, **filters):
        groups = {}
        for order_id, order in self.purchases(**filters):
            for line in order["lines"]:
                if not line["product_id"] and not line["sku"]:
                    continue  # an amount without a product: revenue, but no product's sales
                key = line["product_id"] or line["sku"] or line["name"]
                g = groups.setdefault(
                    (order["currency"], key),
                    {
                        "currency": order["currency"],
                        "product_key": key,
                        "product_id": None,
                        "sku": None,
                        "name": None,
                        "category": None,
                        "quantity": 0,
                        "amount": 0,
                        "orders": set(),
                    },
                )
                for field in ("product_id", "sku", "name", "category"):
                    if line[field] is not None:
                        g[field] = max(g[field] or line[field], line[field])
                g["quantity"] += line["quantity"]
                g["amount"] += line["line_total"]
                g["orders"].add(order_id)
        rows = [{**g, "orders": len(g["orders"])} for g in groups.values()]
        return sorted(rows, key=lambda r: (r["currency"], -r["amount"], r["product_key"]))

    def categories(self, **filters):
        groups = {}
        for order_id, order in self.purchases(**filters):
            for line in order["lines"]:
                g = groups.setdefault(
                    (order["currency"], line["category"]),
                    {
                        "currency": order["currency"],
                        "category": line["category"],
                        "quantity": 0,
                        "amount": 0,
                        "orders": set(),
                    },
                )
                g["quantity"] += line["quantity"]
                g["amount"] += line["line_total"]
                g["orders"].add(order_id)
        rows = [{**g, "orders": len(g["orders"])} for g in groups.values()]
        return sorted(
            rows,
            key=lambda r: (r["currency"], -r["amount"], r["category"] is None, r["category"] or ""),
        )

    def payment_rates(self, date_from=None, date_to=None, currency=None):
        groups = defaultdict(lambda: {"attempts": 0, "succeeded": 0, "failed": 0, "abandoned": 0})
        for payment in self.payments.values():
            if not _within(payment["attempted_at"], date_from, date_to):
                continue
            if currency and payment["currency"] != currency:
                continue
            g = groups[payment["method"]]
            g["attempts"] += 1
            if "captured_at" in payment:
                g["succeeded"] += 1
            elif payment["status"] == "failed":
                g["failed"] += 1
            elif payment["status"] in ("cancelled", "expired"):
                g["abandoned"] += 1
        rows = []
        for method in sorted(groups):
            g = groups[method]
            finished = g["succeeded"] + g["failed"] + g["abandoned"]
            rows.append(
                {
                    "method": method,
                    **g,
                    "pending": g["attempts"] - finished,
                    "success_rate": round(g["succeeded"] / finished, 4) if finished else None,
                    "failure_rate": round(g["failed"] / finished, 4) if finished else None,
                }
            )
        return rows

    def customer_stats(self):
        per = defaultdict(list)
        for order_id, order in self.purchases():
            per[(self.who(order["customer_id"]), order["currency"])].append(order)
        stats = {}
        for key, orders in per.items():
            n, spent = len(orders), sum(o["total"] for o in orders)
            cats, prods = defaultdict(int), defaultdict(lambda: [0, 0])
            for order in orders:
                for line in order["lines"]:
                    if line["category"] is not None:
                        cats[line["category"]] += line["line_total"]
                    p = prods[line["product_id"] or line["sku"] or line["name"]]
                    p[0] += line["quantity"]
                    p[1] += line["line_total"]
            stats[key] = {
                "orders": n,
                "total_spent": spent,
                "first_purchase": min(o["placed_at"] for o in orders),
                "last_purchase": max(o["placed_at"] for o in orders),
                "average_order_value": (2 * spent + n) // (2 * n),
                "favourite_categories": [
                    c for c, _ in sorted(cats.items(), key=lambda kv: (-kv[1], kv[0]))[:3]
                ],
                "favourite_products": [
                    p
                    for p, _ in sorted(prods.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))[
                        :3
                    ]
                ],
            }
        return stats

    def rfm(self, as_of: date):
        stats = self.customer_stats()
        by_currency = defaultdict(list)
        for (customer_id, currency), s in stats.items():
            recency = (as_of - s["last_purchase"].astimezone(UTC).date()).days
            by_currency[currency].append((customer_id, recency, s["orders"], s["total_spent"]))
        out = {}
        for currency, rows in by_currency.items():
            n = len(rows)

            def score(values, value, n=n):
                below = sum(1 for v in values if v < value)
                return min(5, 1 + (5 * below) // max(n - 1, 1))

            def recency_score(values, value, n=n):
                more_recent = sum(1 for v in values if v < value)
                return max(1, 5 - (5 * more_recent) // max(n - 1, 1))

            recencies = [r[1] for r in rows]
            frequencies = [r[2] for r in rows]
            monetaries = [r[3] for r in rows]
            for customer_id, recency, frequency, monetary in rows:
                r = recency_score(recencies, recency)
                f = score(frequencies, frequency)
                m = score(monetaries, monetary)
                out[(currency, customer_id)] = {
                    "recency_days": recency,
                    "frequency": frequency,
                    "monetary": monetary,
                    "r": r,
                    "f": f,
                    "m": m,
                    "segment": segment(r, f, m),
                }
        return out

    def overview(self, date_from=None, date_to=None, currency=None):
        revenue = defaultdict(int)
        for _at, cur, _method, amount in self.entries(date_from, date_to, currency):
            revenue[cur] += amount
        first = {}
        for _order_id, order in self.purchases(currency=currency):
            key = (self.who(order["customer_id"]), order["currency"])
            first[key] = min(first.get(key, order["placed_at"]), order["placed_at"])
        per = defaultdict(lambda: [0, 0])
        for _order_id, order in self.purchases(date_from, date_to, currency):
            key = (self.who(order["customer_id"]), order["currency"])
            per[key][0] += 1
            per[key][1] += order["total"]
        rows = []
        for cur in sorted(set(revenue) | {c for _, c in per}):
            mine = {k: v for k, v in per.items() if k[1] == cur}
            purchases = sum(v[0] for v in mine.values())
            sales = sum(v[1] for v in mine.values())
            repeat = sum(1 for v in mine.values() if v[0] >= 2)
            rows.append(
                {
                    "currency": cur,
                    "revenue": revenue.get(cur, 0),
                    "purchases": purchases,
                    "sales": sales,
                    "customers": len(mine),
                    "new_customers": sum(1 for k in mine if _within(first[k], date_from, date_to)),
                    "average_order_value": (2 * sales + purchases) // (2 * purchases)
                    if purchases
                    else None,
                    "repeat_customers": repeat,
                    "repeat_purchase_rate": round(repeat / len(mine), 4) if mine else None,
                }
            )
        return rows

    def cohorts(self, currency):
        months = defaultdict(set)
        for _order_id, order in self.purchases(currency=currency):
            at = order["placed_at"].astimezone(UTC)
            months[self.who(order["customer_id"])].add((at.year, at.month))
        counts = defaultdict(lambda: defaultdict(int))
        for active in months.values():
            first = min(active)
            for year, month in active:
                counts[first][(year - first[0]) * 12 + month - first[1]] += 1
        out = []
        for (year, month), ks in sorted(counts.items()):
            series = [ks.get(k, 0) for k in range(max(ks) + 1)]
            out.append(
                {
                    "cohort": f"{year:04d}-{month:02d}",
                    "size": series[0],
                    "counts": series,
                    "retention": [round(v / series[0], 4) for v in series],
                }
            )
        return out


def segment(r: int, f: int, m: int) -> str:
    if r >= 4 and f >= 4:
        return "champions"
    if r >= 3 and f >= 3:
        return "loyal"
    if r >= 4 and f == 1:
        return "new"
    if r >= 3:
        return "potential_loyalists"
    if f >= 4 and m >= 4:
        return "cant_lose_them"
    if f >= 3:
        return "at_risk"
    if r == 2:
        return "hibernating"
    return "lost"


def _within(at, date_from, date_to) -> bool:
    return (date_from is None or at >= date_from) and (date_to is None or at < date_to)
