"""The figures analytics answers, read from its projections with set-based SQL.

What counts as revenue (documented in the README too):

- **Revenue** is cash: the amount of each captured payment on its capture date, minus each
  refund on the day it was refunded, per currency and payment method (payments events).
- **Imported orders** (``source = import``) were paid before CMS knew them, so no payment
  event exists for them: their ``order.payment_applied`` amounts count on the order's
  ``placed_at`` under the method ``imported`` (refunds negative) — unless the payment they
  name is also known from the payments service, which then counts instead (never twice).
- **Sales by product and category** are the line totals (after line discounts, before the
  order discount and tax) of purchases: orders whose state is paid, fulfilled or completed
  (not cancelled or returned), dated by ``placed_at``.
- **Per-customer figures, RFM, cohorts, repeat purchases and lifetime value** count the same
  purchases, at the order total, under the surviving customer of a merge.

All dates are UTC days; ``date_from`` is inclusive and ``date_to`` exclusive.
"""

# SQL is composed only from this module's constants (table suffixes, fixed clauses);
# every value is a bound parameter.
# ruff: noqa: S608

from __future__ import annotations

from datetime import datetime
from typing import Any

from services.analytics.projector import PURCHASED, SEGMENTS

_PURCHASED = ", ".join(f"'{status}'" for status in PURCHASED)


def _range(column: str, args: dict[str, Any], currency_column: str | None) -> str:
    parts = ["TRUE"]
    if args.get("date_from") is not None:
        parts.append(f"{column} >= %(date_from)s")
    if args.get("date_to") is not None:
        parts.append(f"{column} < %(date_to)s")
    if currency_column and args.get("currency"):
        parts.append(f"{currency_column} = %(currency)s")
    return " AND ".join(parts)


def _params(args: dict[str, Any]) -> dict[str, Any]:
    return {
        "date_from": args.get("date_from"),
        "date_to": args.get("date_to"),
        "currency": args.get("currency"),
    }


def entries_cte(args: dict[str, Any]) -> str:
    """``entries(at, currency, method, amount)``: every revenue movement in the range."""
    return f"""
    entries AS (
        SELECT p.captured_at AS at, p.currency, p.method, p.captured_amount AS amount
        FROM payments p
        WHERE p.captured_at IS NOT NULL AND {_range("p.captured_at", args, "p.currency")}
        UNION ALL
        SELECT r.refunded_at, r.currency, COALESCE(r.method, p.method), -r.amount
        FROM refunds r LEFT JOIN payments p ON p.payment_id = r.payment_id
        WHERE {_range("r.refunded_at", args, "r.currency")}
        UNION ALL
        SELECT o.placed_at, op.currency, 'imported',
               CASE WHEN op.kind = 'capture' THEN op.amount ELSE -op.amount END
        FROM order_payments op JOIN orders o ON o.order_id = op.order_id
        WHERE o.source = 'import' AND o.placed_at IS NOT NULL
          AND NOT EXISTS (SELECT 1 FROM payments p WHERE p.payment_id = op.payment_id)
          AND {_range("o.placed_at", args, "op.currency")}
    )"""


def purchases_cte(args: dict[str, Any], ranged: bool = True) -> str:
    """``purchases(order_id, customer_id, currency, total, placed_at)``."""
    where = _range("o.placed_at", args, "o.currency") if ranged else "TRUE"
    if not ranged and args.get("currency"):
        where = "o.currency = %(currency)s"
    return f"""
    purchases AS (
        SELECT o.order_id, COALESCE(c.merged_into, o.customer_id) AS customer_id, o.currency,
               o.total, o.placed_at
        FROM orders o LEFT JOIN customers c ON c.customer_id = o.customer_id
        WHERE o.status IN ({_PURCHASED}) AND o.placed_at IS NOT NULL
          AND o.customer_id IS NOT NULL AND o.total IS NOT NULL AND {where}
    )"""


def _rows(cursor, sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    cursor.execute(sql, params)
    names = [column.name for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def revenue_series(cursor, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Revenue per period (``granularity`` day, week — ISO weeks from Monday — or month)."""
    granularity = args.get("granularity", "day")
    rows = _rows(
        cursor,
        f"""WITH {entries_cte(args)}
        SELECT date_trunc('{granularity}', at AT TIME ZONE 'UTC')::date AS period, currency,
               sum(amount) FILTER (WHERE amount > 0) AS captured,
               -sum(amount) FILTER (WHERE amount < 0) AS refunded,
               sum(amount) AS net
        FROM entries GROUP BY 1, 2 ORDER BY 1, 2""",
        _params(args),
    )
    return [
        {
            "period": row["period"].isoformat(),
            "currency": row["currency"],
            "captured": int(row["captured"] or 0),
            "refunded": int(row["refunded"] or 0),
            "net": int(row["net"]),
        }
        for row in rows
    ]


def revenue_by_method(cursor, args: dict[str, Any]) -> list[dict[str, Any]]:
    rows = _rows(
        cursor,
        f"""WITH {entries_cte(args)}
        SELECT method, currency, sum(amount) AS net, count(*) FILTER (WHERE amount > 0) AS captures
        FROM entries GROUP BY 1, 2 ORDER BY currency, net DESC, method""",
        _params(args),
    )
    return [
        {
            "method": row["method"],
            "currency": row["currency"],
            "net": int(row["net"]),
            "captures": row["captures"],
        }
        for row in rows
    ]


def sales_by_product(cursor, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Per product (by id, else SKU). An imported order given as an amount only has no product:
    it counts in revenue and sales, not here, where it ranked first as "Imported order"."""
    rows = _rows(
        cursor,
        f"""
        SELECT o.currency, COALESCE(l.product_id, l.sku, l.name) AS product_key,
               max(l.product_id) AS product_id, max(l.sku) AS sku, max(l.name) AS name,
               max(l.category) AS category, sum(l.quantity) AS quantity,
               sum(l.line_total) AS amount, count(DISTINCT o.order_id) AS orders
        FROM orders o JOIN order_lines l ON l.order_id = o.order_id
        WHERE o.status IN ({_PURCHASED}) AND o.placed_at IS NOT NULL
          AND (l.product_id IS NOT NULL OR l.sku IS NOT NULL)
          AND {_range("o.placed_at", args, "o.currency")}
        GROUP BY 1, 2
        ORDER BY o.currency, amount DESC, COALESCE(l.product_id, l.sku, l.name) COLLATE "C"
        LIMIT %(limit)s""",
        {**_params(args), "limit": args.get("limit", 100)},
    )
    return [{**row, "quantity": int(row["quantity"]), "amount": int(row["amount"])} for row in rows]


def sales_by_category(cursor, args: dict[str, Any]) -> list[dict[str, Any]]:
    rows = _rows(
        cursor,
        f"""
        SELECT o.currency, l.category, sum(l.quantity) AS quantity,
               sum(l.line_total) AS amount, count(DISTINCT o.order_id) AS orders
        FROM orders o JOIN order_lines l ON l.order_id = o.order_id
        WHERE o.status IN ({_PURCHASED}) AND o.placed_at IS NOT NULL
          AND {_range("o.placed_at", args, "o.currency")}
        GROUP BY 1, 2
        ORDER BY o.currency, amount DESC, l.category COLLATE "C" NULLS LAST""",
        _params(args),
    )
    return [{**row, "quantity": int(row["quantity"]), "amount": int(row["amount"])} for row in rows]


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def payment_rates(cursor, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Per method: attempts (payments initiated in the range), succeeded (captured), failed,
    abandoned (cancelled or expired before capture), pending; rates over finished attempts."""
    rows = _rows(
        cursor,
        f"""
        SELECT method, count(*) AS attempts,
               count(*) FILTER (WHERE captured_at IS NOT NULL) AS succeeded,
               count(*) FILTER (WHERE captured_at IS NULL AND status = 'failed') AS failed,
               count(*) FILTER (WHERE captured_at IS NULL
                                  AND status IN ('cancelled', 'expired')) AS abandoned
        FROM payments
        WHERE method IS NOT NULL AND {_range("attempted_at", args, "currency")}
        GROUP BY method ORDER BY method""",
        _params(args),
    )
    result = []
    for row in rows:
        finished = row["succeeded"] + row["failed"] + row["abandoned"]
        result.append(
            {
                **row,
                "pending": row["attempts"] - finished,
                "success_rate": _rate(row["succeeded"], finished),
                "failure_rate": _rate(row["failed"], finished),
            }
        )
    return result


def overview(cursor, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Per currency: net revenue, purchases, purchasing customers, average order value,
    customers whose first purchase falls in the range, and the repeat-purchase rate (share of
    the range's purchasing customers with two purchases or more in it)."""
    revenue = {
        row["currency"]: int(row["net"])
        for row in _rows(
            cursor,
            f"WITH {entries_cte(args)} SELECT currency, sum(amount) AS net "
            "FROM entries GROUP BY currency",
            _params(args),
        )
    }
    first_range = _range("first_at", args, None)
    rows = _rows(
        cursor,
        f"""WITH {purchases_cte(args)},
        {purchases_cte(args, ranged=False).replace("purchases AS", "alltime AS", 1)},
        firsts AS (SELECT customer_id, currency, min(placed_at) AS first_at
                   FROM alltime GROUP BY 1, 2),
        per AS (SELECT customer_id, currency, count(*) AS n, sum(total) AS spent
                FROM purchases GROUP BY 1, 2)
        SELECT per.currency, sum(per.n) AS purchases, count(*) AS customers,
               sum(per.spent) AS sales,
               count(*) FILTER (WHERE per.n >= 2) AS repeat_customers,
               count(*) FILTER (WHERE {first_range}) AS new_customers
        FROM per JOIN firsts USING (customer_id, currency)
        GROUP BY per.currency""",
        _params(args),
    )
    by_currency = {row["currency"]: row for row in rows}
    result = []
    for currency in sorted(set(revenue) | set(by_currency)):
        row = by_currency.get(currency, {})
        purchases, sales = int(row.get("purchases") or 0), int(row.get("sales") or 0)
        customers = int(row.get("customers") or 0)
        result.append(
            {
                "currency": currency,
                "revenue": revenue.get(currency, 0),
                "purchases": purchases,
                "sales": sales,
                "customers": customers,
                "new_customers": int(row.get("new_customers") or 0),
                "average_order_value": (2 * sales + purchases) // (2 * purchases)
                if purchases
                else None,
                "repeat_customers": int(row.get("repeat_customers") or 0),
                "repeat_purchase_rate": _rate(int(row.get("repeat_customers") or 0), customers),
            }
        )
    return result


def cohorts(cursor, args: dict[str, Any]) -> list[dict[str, Any]]:
    """Monthly cohorts of one currency: customers by the month of their first purchase, and
    how many of them bought again k months later (``counts[k]``, ``retention[k]``)."""
    cohort_range = _range("(f.cohort AT TIME ZONE 'UTC')", args, None)
    rows = _rows(
        cursor,
        f"""WITH {purchases_cte(args, ranged=False)},
        firsts AS (SELECT customer_id,
                          date_trunc('month', min(placed_at) AT TIME ZONE 'UTC') AS cohort
                   FROM purchases GROUP BY 1),
        acts AS (SELECT DISTINCT customer_id,
                        date_trunc('month', placed_at AT TIME ZONE 'UTC') AS month
                 FROM purchases)
        SELECT f.cohort::date AS cohort,
               ((extract(year FROM a.month) - extract(year FROM f.cohort)) * 12
                + extract(month FROM a.month) - extract(month FROM f.cohort))::int AS k,
               count(*) AS customers
        FROM firsts f JOIN acts a USING (customer_id)
        WHERE {cohort_range}
        GROUP BY 1, 2 ORDER BY 1, 2""",
        _params(args),
    )
    result: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = result.setdefault(row["cohort"].strftime("%Y-%m"), {"counts": {}})
        entry["counts"][row["k"]] = row["customers"]
    cohorts_out = []
    for month, entry in result.items():
        counts = entry["counts"]
        size = counts.get(0, 0)
        series = [counts.get(k, 0) for k in range(max(counts) + 1)]
        cohorts_out.append(
            {
                "cohort": month,
                "size": size,
                "counts": series,
                "retention": [round(n / size, 4) if size else None for n in series],
            }
        )
    return cohorts_out


def customer_figures(cursor, args: dict[str, Any]) -> dict[str, Any]:
    """Per-customer figures of one currency, by total spent (keyset ``cursor``)."""
    limit = args.get("limit", 50)
    after = args.get("cursor")
    where = "s.currency = %(currency)s"
    params: dict[str, Any] = {"currency": args["currency"], "limit": limit + 1}
    if after:
        spent, customer_id = after.split(":", 1)
        where += " AND (s.total_spent, s.customer_id) < (%(spent)s, %(after)s)"
        params.update(spent=int(spent), after=customer_id)
    rows = _rows(
        cursor,
        f"""SELECT s.*, r.segment, r.r, r.f, r.m FROM customer_stats s
        LEFT JOIN customer_rfm r ON r.currency = s.currency AND r.customer_id = s.customer_id
        WHERE {where} ORDER BY s.total_spent DESC, s.customer_id DESC LIMIT %(limit)s""",
        params,
    )
    items = [_customer_row(row) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = rows[limit - 1]
        next_cursor = f"{last['total_spent']}:{last['customer_id']}"
    return {"items": items, "next_cursor": next_cursor}


def _customer_row(row: dict[str, Any]) -> dict[str, Any]:
    out = {key: _iso(value) for key, value in row.items()}
    out["favourite_categories"] = list(row["favourite_categories"])
    out["favourite_products"] = list(row["favourite_products"])
    return out


def customer_detail(cursor, customer_id: str) -> dict[str, Any]:
    """Every currency's figures of one customer (after merges: the surviving customer)."""
    cursor.execute("SELECT merged_into FROM customers WHERE customer_id = %s", (customer_id,))
    found = cursor.fetchone()
    effective = found[0] if found and found[0] else customer_id
    rows = _rows(
        cursor,
        """SELECT s.*, r.segment, r.r, r.f, r.m, r.recency_days FROM customer_stats s
        LEFT JOIN customer_rfm r ON r.currency = s.currency AND r.customer_id = s.customer_id
        WHERE s.customer_id = %(id)s ORDER BY s.currency""",
        {"id": effective},
    )
    return {
        "customer_id": customer_id,
        "merged_into": effective if effective != customer_id else None,
        "figures": [_customer_row(row) for row in rows],
    }


def segment_sizes(cursor, currency: str) -> dict[str, Any]:
    rows = _rows(
        cursor,
        """SELECT segment, count(*) AS customers, sum(monetary) AS monetary,
                  max(as_of) AS as_of
           FROM customer_rfm WHERE currency = %(currency)s GROUP BY segment""",
        {"currency": currency},
    )
    found = {row["segment"]: row for row in rows}
    as_of = max((row["as_of"] for row in rows), default=None)
    return {
        "currency": currency,
        "as_of": _iso(as_of),
        "segments": [
            {
                "segment": name,
                "customers": int(found.get(name, {}).get("customers") or 0),
                "monetary": int(found.get(name, {}).get("monetary") or 0),
            }
            for name in SEGMENTS
        ],
    }


def segment_members(cursor, segment: str, currency: str, limit: int, after: str | None):
    rows = _rows(
        cursor,
        """SELECT customer_id, r, f, m, recency_days, frequency, monetary FROM customer_rfm
           WHERE currency = %(currency)s AND segment = %(segment)s
             AND (%(after)s::text IS NULL OR customer_id > %(after)s)
           ORDER BY customer_id LIMIT %(limit)s""",
        {"currency": currency, "segment": segment, "after": after, "limit": limit + 1},
    )
    items = rows[:limit]
    return {
        "segment": segment,
        "currency": currency,
        "items": items,
        "next_cursor": items[-1]["customer_id"] if len(rows) > limit else None,
    }


def segments_of(cursor, customer_ids: list[str], currency: str) -> dict[str, Any]:
    """The segment of each customer id (merged ids answer with their survivor's)."""
    rows = _rows(
        cursor,
        """SELECT ids.id AS customer_id, r.segment, r.r, r.f, r.m
           FROM unnest(%(ids)s::text[]) AS ids(id)
           LEFT JOIN customers c ON c.customer_id = ids.id
           LEFT JOIN customer_rfm r ON r.currency = %(currency)s
                AND r.customer_id = COALESCE(c.merged_into, ids.id)""",
        {"ids": list(customer_ids), "currency": currency},
    )
    return {
        "currency": currency,
        "customers": {
            row["customer_id"]: (
                {"segment": row["segment"], "r": row["r"], "f": row["f"], "m": row["m"]}
                if row["segment"]
                else None
            )
            for row in rows
        },
    }


def purchases_for_clv(cursor, currency: str, as_of_end: datetime) -> list[tuple[str, Any, int]]:
    """``(customer_id, UTC date, total)`` of every purchase in ``currency`` before
    ``as_of_end``."""
    cursor.execute(
        f"""WITH {purchases_cte({"currency": currency}, ranged=False)}
        SELECT customer_id, (placed_at AT TIME ZONE 'UTC')::date, total FROM purchases
        WHERE placed_at < %(end)s ORDER BY customer_id, placed_at""",
        {"currency": currency, "end": as_of_end},
    )
    return cursor.fetchall()
