"""Read side of the payments service: payments as the API shows them, lists, reconciliation."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, Row

from services.payments.domain import REFUNDABLE
from shared.cursors import decode_cursor, encode_cursor
from shared.events import isoformat


def _iso(value: datetime | None) -> str | None:
    return isoformat(value) if value is not None else None


def payment_view(row: Row) -> dict[str, Any]:
    refundable = row.captured_amount - row.refunded_amount if row.status in REFUNDABLE else 0
    return {
        "id": str(row.id),
        "order_id": str(row.order_id),
        "customer_id": str(row.customer_id),
        "method": row.method,
        "provider": row.provider,
        "amount": row.amount,
        "currency": row.currency,
        "status": row.status,
        "captured_amount": row.captured_amount,
        "refunded_amount": row.refunded_amount,
        "refundable_amount": refundable,
        "capture_method": row.capture_method,
        "card": {"brand": row.card_brand, "last4": row.card_last4} if row.card_last4 else None,
        "next_action": row.next_action,
        "failure_reason": row.failure_reason,
        "reference": row.reference,
        "provider_reference": row.provider_reference,
        "refunds": row.refunds or [],
        "expires_at": _iso(row.expires_at) if row.status == "pending" else None,
        "created_by": row.created_by,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
        "version": row.version,
    }


def _decode(cursor: str) -> tuple[datetime, str]:
    return decode_cursor(cursor, (datetime.fromisoformat, str))


def list_payments(
    conn: Connection,
    order_id: str | None = None,
    status: str | None = None,
    method: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Newest first, keyset-paged by ``(created_at, id)``."""
    where, params = ["true"], {"limit": limit + 1}
    if order_id:
        where.append("order_id = :order_id")
        params["order_id"] = order_id
    if status:
        where.append("status = :status")
        params["status"] = status
    if method:
        where.append("method = :method")
        params["method"] = method
    if cursor:
        params["c_at"], params["c_id"] = _decode(cursor)
        where.append("(created_at, id) < (:c_at, CAST(:c_id AS uuid))")
    rows = conn.execute(
        text(
            f"SELECT * FROM payments WHERE {' AND '.join(where)} "  # noqa: S608
            "ORDER BY created_at DESC, id DESC LIMIT :limit"
        ),
        params,
    ).all()
    more = len(rows) > limit
    rows = rows[:limit]
    return {
        "items": [payment_view(row) for row in rows],
        "next_cursor": encode_cursor(rows[-1].created_at.isoformat(), str(rows[-1].id))
        if more
        else None,
    }


# -- reconciliation ------------------------------------------------------------------------------


def _day_bounds(day: date) -> tuple[datetime, datetime]:
    from datetime import UTC

    start = datetime.combine(day, time(0, 0), tzinfo=UTC)
    return start, start + timedelta(days=1)


def reconciliation(conn: Connection, day: date, now: datetime) -> dict[str, Any]:
    """Per method and currency on one UTC day: what the provider's settlement report says it
    took and gave back (the sandbox's ledger) against the movements CMS recorded, with the
    references that do not match. Staff-recorded (manual) money has no provider report."""
    start, end = _day_bounds(day)
    params = {"start": start, "end": min(end, now) if start <= now else start, "full_end": end}
    provider_rows = conn.execute(
        text(
            "SELECT reference, kind, merchant_reference, method, amount, currency, settled_at "
            "FROM sandbox_ledger WHERE status = 'succeeded' "
            "AND settled_at >= :start AND settled_at < :end"
        ),
        params,
    ).all()
    cms_rows = conn.execute(
        text(
            "SELECT payment_id, kind, provider, provider_reference, method, amount, currency, "
            "occurred_at FROM payment_movements "
            "WHERE occurred_at >= :start AND occurred_at < :full_end"
        ),
        params,
    ).all()
    provider_refs = {row.reference: row for row in provider_rows}
    cms_refs = {row.provider_reference: row for row in cms_rows if row.provider == "sandbox"}
    # the other side of a reference seen on this day, whatever day it fell on
    other_cms = {
        row.provider_reference: row
        for row in conn.execute(
            text(
                "SELECT provider_reference, amount, occurred_at FROM payment_movements "
                "WHERE provider_reference = ANY(:refs)"
            ),
            {"refs": list(provider_refs)},
        )
    }
    other_provider = {
        row.reference: row
        for row in conn.execute(
            text(
                "SELECT reference, amount, status, settled_at FROM sandbox_ledger "
                "WHERE reference = ANY(:refs)"
            ),
            {"refs": [ref for ref in cms_refs if ref]},
        )
    }
    groups: dict[tuple[str, str, str], dict[str, Any]] = {}

    def group(provider: str, method: str, currency: str) -> dict[str, Any]:
        key = (provider, method, currency)
        if key not in groups:
            groups[key] = {
                "date": day.isoformat(),
                "provider": provider,
                "method": method,
                "currency": currency,
                "provider_captured": 0 if provider == "sandbox" else None,
                "provider_refunded": 0 if provider == "sandbox" else None,
                "provider_count": 0 if provider == "sandbox" else None,
                "cms_captured": 0,
                "cms_refunded": 0,
                "cms_count": 0,
                "mismatches": [],
            }
        return groups[key]

    for row in provider_rows:
        entry = group("sandbox", row.method, row.currency)
        entry["provider_count"] += 1
        entry["provider_captured" if row.kind == "charge" else "provider_refunded"] += row.amount
        mine = other_cms.get(row.reference)
        if mine is None:
            entry["mismatches"].append(
                {
                    "reference": row.reference,
                    "payment_id": row.merchant_reference,
                    "reason": "missing_in_cms",
                    "provider_amount": row.amount,
                    "cms_amount": None,
                }
            )
        elif mine.amount != row.amount:
            entry["mismatches"].append(
                {
                    "reference": row.reference,
                    "payment_id": row.merchant_reference,
                    "reason": "amount_mismatch",
                    "provider_amount": row.amount,
                    "cms_amount": mine.amount,
                }
            )
        elif not start <= mine.occurred_at < end:
            entry["mismatches"].append(
                {
                    "reference": row.reference,
                    "payment_id": row.merchant_reference,
                    "reason": "recorded_on_other_day",
                    "provider_amount": row.amount,
                    "cms_amount": mine.amount,
                }
            )
    for row in cms_rows:
        entry = group(row.provider, row.method, row.currency)
        entry["cms_count"] += 1
        entry["cms_captured" if row.kind == "capture" else "cms_refunded"] += row.amount
        if row.provider != "sandbox":
            continue
        theirs = other_provider.get(row.provider_reference)
        if theirs is None or theirs.status != "succeeded":
            entry["mismatches"].append(
                {
                    "reference": row.provider_reference,
                    "payment_id": str(row.payment_id),
                    "reason": "missing_at_provider",
                    "provider_amount": None,
                    "cms_amount": row.amount,
                }
            )
        elif (
            row.provider_reference not in provider_refs
            and theirs.settled_at is not None
            and (not start <= theirs.settled_at < end)
        ):
            entry["mismatches"].append(
                {
                    "reference": row.provider_reference,
                    "payment_id": str(row.payment_id),
                    "reason": "settled_on_other_day",
                    "provider_amount": theirs.amount,
                    "cms_amount": row.amount,
                }
            )
    rows = []
    for key in sorted(groups):
        entry = groups[key]
        entry["cms_net"] = entry["cms_captured"] - entry["cms_refunded"]
        if entry["provider"] == "sandbox":
            entry["provider_net"] = entry["provider_captured"] - entry["provider_refunded"]
            entry["difference"] = entry["provider_net"] - entry["cms_net"]
            entry["status"] = (
                "matched" if not entry["mismatches"] and entry["difference"] == 0 else "mismatch"
            )
        else:
            entry["provider_net"] = None
            entry["difference"] = None
            entry["status"] = "no_provider_report"
        rows.append(entry)
    return {
        "date": day.isoformat(),
        "generated_at": isoformat(now),
        "rows": rows,
        "mismatch_count": sum(len(row["mismatches"]) for row in rows)
        + sum(1 for row in rows if row["status"] == "mismatch" and not row["mismatches"]),
    }
