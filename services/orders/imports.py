"""Historical import of orders from another system (CSV or XLSX, driven by
``shared.importer``: ``begin_import``, batches to ``import_rows``, ``finish_import``).

Columns (English or Chinese header; order free; unknown columns refuse the file):

=============== ============ ==========================================================
column          中文          value
=============== ============ ==========================================================
external_id     外部订单号    the order's id in the old system (required, unique)
customer_id     客户ID        the CMS customer id (UUID) the order belongs to (required)
placed_at       下单时间      ``2024-03-01`` or ``2024-03-01T10:30:00Z`` (no zone: UTC)
currency        币种          ISO 4217, e.g. ``CNY``
lines           订单明细      ``SKU*quantity@unit price`` joined by ``;``, e.g.
                             ``A-100*2@19.99;B-7*1@5``; ``@price`` may be left out for a
                             SKU of the catalogue (its current price)
amount          金额          instead of lines: the order's total as one line
paid            已付款        yes/no, true/false, 1/0, 是/否 (empty: no)
notes           备注          optional, sealed like any order's notes
=============== ============ ==========================================================

Amounts are in major units with at most the currency's decimals (``19.99`` CNY = 1999 minor
units; JPY has none). Imported orders carry no tax (the amounts are taken as they were
charged) and keep their original ``placed_at``; they go through the same events as any order
(``order.placed`` with ``source: import`` and ``external_id``), so analytics sees them like
any other. A paid order gets ``order.payment_applied`` (kind capture, ``payment_id`` the UUID5
of ``cms-import:<external_id>``, the whole total) and ``order.paid``.

Idempotent on ``external_id``: a row whose external id is already in CMS is skipped (counted
as ``skipped``), so running the same file twice creates nothing twice. Each row is applied in
a savepoint of its own; a rejected row is reported with its reasons (row number and reasons
only: no cell values are kept).
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from services.orders import replica, tables
from services.orders.domain import Order, price_lines
from services.orders.store import Store
from shared.errors import BadRequest, CmsError, Conflict, NotFound
from shared.events import isoformat, utcnow

log = logging.getLogger(__name__)

COLUMNS = {
    "external_id": ("external_id", "外部订单号", "external id"),
    "customer_id": ("customer_id", "客户ID", "客户id", "customer", "客户"),
    "placed_at": ("placed_at", "下单时间", "date", "日期", "placed at"),
    "currency": ("currency", "币种", "货币"),
    "lines": ("lines", "订单明细", "明细"),
    "amount": ("amount", "金额", "total", "总额"),
    "paid": ("paid", "已付款", "是否付款"),
    "notes": ("notes", "备注"),
}
REQUIRED = ("external_id", "customer_id", "placed_at", "currency")
ZERO_DECIMAL = {"JPY", "KRW", "VND", "CLP", "ISK", "UGX", "XAF", "XOF"}
TRUE = {"yes", "y", "true", "1", "是", "已付", "paid"}
FALSE = {"", "no", "n", "false", "0", "否", "未付", "unpaid"}
IMPORT_NAMESPACE = uuid.UUID("6f1d3c52-5b0e-4bb8-9f7a-0c1e2a7d9b11")
MAX_REJECTIONS_KEPT = 1000
_LINE = re.compile(r"^\s*(?P<sku>[^*@;]+?)\s*\*\s*(?P<qty>\d+)\s*(?:@\s*(?P<price>[0-9.]+))?\s*$")


def import_payment_id(external_id: str) -> str:
    return str(uuid.uuid5(IMPORT_NAMESPACE, f"cms-import:{external_id}"))


def map_columns(header: list[str]) -> dict[str, str]:
    """``{file column: field}``; unknown or missing columns refuse the file."""
    lookup = {alias.lower(): name for name, aliases in COLUMNS.items() for alias in aliases}
    mapping, unknown = {}, []
    for column in header:
        name = lookup.get(column.strip().lower())
        if name is None:
            unknown.append(column)
        else:
            mapping[column] = name
    errors: dict[str, list[str]] = {}
    if unknown:
        errors["columns"] = [f"Unknown column: {', '.join(unknown)}."]
    missing = [name for name in REQUIRED if name not in mapping.values()]
    if missing:
        errors.setdefault("columns", []).append(f"Missing column: {', '.join(missing)}.")
    if "lines" not in mapping.values() and "amount" not in mapping.values():
        errors.setdefault("columns", []).append("Give either a lines or an amount column.")
    if errors:
        raise BadRequest.for_fields(errors, "the file's columns cannot be imported")
    return mapping


def to_minor(text_value: str, currency: str) -> int:
    digits = 0 if currency in ZERO_DECIMAL else 2
    try:
        amount = Decimal(text_value.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError("Not a number.") from None
    if amount < 0:
        raise ValueError("Must be 0 or more.")
    minor = amount * (10**digits)
    if minor != minor.to_integral_value():
        raise ValueError(f"At most {digits} decimals in {currency}.")
    return int(minor)


def parse_placed_at(value: str) -> datetime:
    value = value.strip()
    try:
        if len(value) == 10:
            moment = datetime.combine(date.fromisoformat(value), time(), UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
    except ValueError:
        raise ValueError("Not a date (2024-03-01) or ISO date-time.") from None
    if moment > utcnow():
        raise ValueError("Must not be in the future.")
    return moment.astimezone(UTC)


def parse_row(session: Session, values: Mapping[str, str]) -> tuple[dict[str, Any], dict]:
    """The row's fields, or the reasons it is rejected (by column)."""
    errors: dict[str, list[str]] = {}
    row: dict[str, Any] = {}
    for name in REQUIRED:
        if not (values.get(name) or "").strip():
            errors[name] = ["Required."]
    external_id = (values.get("external_id") or "").strip()
    if len(external_id) > 100:
        errors["external_id"] = ["At most 100 characters."]
    row["external_id"] = external_id
    try:
        row["customer_id"] = str(uuid.UUID((values.get("customer_id") or "").strip()))
    except ValueError:
        errors.setdefault("customer_id", ["Not a customer id (UUID)."])
    currency = (values.get("currency") or "").strip().upper()
    if currency and not re.fullmatch(r"[A-Z]{3}", currency):
        errors["currency"] = ["Not an ISO 4217 code."]
    row["currency"] = currency
    if values.get("placed_at"):
        try:
            row["placed_at"] = parse_placed_at(values["placed_at"])
        except ValueError as exc:
            errors["placed_at"] = [str(exc)]
    paid = (values.get("paid") or "").strip().lower()
    if paid not in TRUE | FALSE:
        errors["paid"] = ["Must be yes or no."]
    row["paid"] = paid in TRUE
    notes = (values.get("notes") or "").strip()
    row["notes"] = notes or None
    lines_text = (values.get("lines") or "").strip()
    amount_text = (values.get("amount") or "").strip()
    if bool(lines_text) == bool(amount_text):
        errors["lines"] = ["Give either lines or an amount."]
    elif "currency" not in errors and currency:
        try:
            row["lines"] = (
                _lines(session, lines_text, currency)
                if lines_text
                else [_amount_line(amount_text, currency)]
            )
        except ValueError as exc:
            errors["lines" if lines_text else "amount"] = [str(exc)]
    return row, errors


def _amount_line(amount_text: str, currency: str) -> dict[str, Any]:
    return {
        "line_id": "1",
        "product_id": None,
        "sku": None,
        "name": "Imported order",
        "category": None,
        "brand": None,
        "quantity": 1,
        "unit_price": to_minor(amount_text, currency),
        "line_discount": 0,
    }


def _lines(session: Session, lines_text: str, currency: str) -> list[dict[str, Any]]:
    parsed = []
    for index, part in enumerate(p for p in lines_text.split(";") if p.strip()):
        match = _LINE.match(part)
        if not match:
            raise ValueError(f"Line {index + 1}: not SKU*quantity@price.")
        parsed.append(match)
    skus = [m["sku"] for m in parsed]
    products = {
        row.sku: row
        for row in session.execute(
            select(tables.products).where(tables.products.c.sku.in_(skus))
        ).all()
    }
    lines = []
    for index, match in enumerate(parsed, start=1):
        product = products.get(match["sku"])
        if match["price"] is not None:
            price = to_minor(match["price"], currency)
        elif product is not None and product.currency == currency:
            price = int(product.price)
        elif product is None:
            raise ValueError(
                f"Line {index}: {match['sku']} is not in the catalogue; give its price "
                f"({match['sku']}*{match['qty']}@price)."
            )
        else:
            raise ValueError(
                f"Line {index}: {match['sku']} is priced in {product.currency}, not {currency}; "
                "give its price."
            )
        known = product is not None and product.currency == currency
        lines.append(
            {
                "line_id": str(index),
                "product_id": str(product.id) if known else None,
                "sku": match["sku"],
                "name": product.name if known else match["sku"],
                "category": product.category if known else None,
                "brand": product.brand if known else None,
                "quantity": int(match["qty"]),
                "unit_price": price,
                "line_discount": 0,
            }
        )
    if not lines:
        raise ValueError("No lines.")
    return lines


class OrderImports:
    def __init__(self, session: Session, metadata: dict[str, Any], catch_up: Callable[[], int]):
        self.session = session
        self.metadata = metadata
        self.catch_up = catch_up

    def _row(self, import_id: str, lock: bool = False) -> Any:
        query = select(tables.order_imports).where(tables.order_imports.c.id == import_id)
        row = self.session.execute(query.with_for_update() if lock else query).first()
        if row is None:
            raise NotFound(
                "import not found", {"resource_type": "import", "resource_id": import_id}
            )
        return row

    def begin(
        self,
        actor: Mapping[str, Any],
        import_id: str,
        filename: str,
        columns: list[str],
        total_rows: int,
    ) -> dict[str, Any]:
        mapping = map_columns(columns)
        now = utcnow()
        inserted = self.session.execute(
            text(
                "INSERT INTO order_imports (id, filename, status, columns, total_rows, "
                "actor_id, started_at, updated_at) VALUES (:id, :filename, 'running', "
                "CAST(:columns AS jsonb), :total, :actor, :now, :now) "
                "ON CONFLICT (id) DO NOTHING RETURNING 1"
            ),
            {
                "id": import_id,
                "filename": filename,
                "columns": json.dumps(mapping, ensure_ascii=False),
                "total": total_rows,
                "actor": actor.get("id"),
                "now": now,
            },
        ).scalar()
        if inserted is None:
            self.session.rollback()
            raise Conflict("this import exists already", {"code": "import_exists"})
        self.session.commit()
        return self.get(import_id)

    def rows(self, import_id: str, rows: list[Mapping[str, Any]]) -> dict[str, Any]:
        state = self._row(import_id, lock=True)
        if state.status != "running":
            raise Conflict(f"the import is {state.status}", {"code": "import_not_running"})
        mapping: dict[str, str] = state.columns
        pending = [r for r in rows if int(r["row"]) > state.last_row]
        parsed = []
        for item in pending:
            values = {mapping[k]: v for k, v in item["values"].items() if k in mapping}
            parsed.append((int(item["row"]), *parse_row(self.session, values)))
        wanted = {p[1]["customer_id"] for p in parsed if not p[2] and "customer_id" in p[1]}
        if any(replica.lookup(self.session, cid) is None for cid in wanted):
            self.session.commit()  # keep the row lock order simple: catch up outside it
            try:
                self.catch_up()
            except Exception:
                log.warning("customer replica catch-up failed during import", exc_info=True)
                self.session.rollback()
            state = self._row(import_id, lock=True)
        created = skipped = 0
        rejections: list[dict[str, Any]] = []
        for number, row, errors in parsed:
            if not errors:
                savepoint = self.session.begin_nested()
                try:
                    outcome = self._apply(row)
                    savepoint.commit()
                except CmsError as exc:
                    savepoint.rollback()
                    errors = exc.extra.get("errors") or {"row": [str(exc)]}
                    outcome = "rejected"
            if errors:
                rejections.append({"row": number, "reasons": errors})
            elif outcome == "created":
                created += 1
            else:
                skipped += 1
        last_row = max([state.last_row, *(p[0] for p in parsed)])
        kept = list(state.rejections) + rejections
        self.session.execute(
            update(tables.order_imports)
            .where(tables.order_imports.c.id == import_id)
            .values(
                processed_rows=state.processed_rows + len(parsed),
                last_row=last_row,
                created=state.created + created,
                skipped=state.skipped + skipped,
                rejected=state.rejected + len(rejections),
                rejections=kept[:MAX_REJECTIONS_KEPT],
                updated_at=utcnow(),
            )
        )
        self.session.commit()
        return self.get(import_id)

    def _apply(self, row: dict[str, Any]) -> str:
        session = self.session
        external_id = row["external_id"]
        session.execute(
            text("SELECT pg_advisory_xact_lock(7332, hashtext(:key))"), {"key": external_id}
        )
        exists = session.execute(
            select(tables.orders.c.id).where(tables.orders.c.external_id == external_id)
        ).first()
        if exists is not None:
            return "skipped"
        customer = replica.lookup(session, row["customer_id"])
        if customer is not None and customer.status == "merged" and customer.merged_into:
            customer = replica.lookup(session, str(customer.merged_into))
        if customer is None:
            raise BadRequest.for_fields({"customer_id": ["No such customer."]})
        if customer.status == "erased":
            raise BadRequest.for_fields({"customer_id": ["This customer was erased."]})
        totals = price_lines(row["lines"])
        store = Store(session, {**self.metadata, "import_external_id": external_id})
        order_id = str(uuid.uuid4())
        order = Order(order_id)
        store.save_order(
            order,
            Order.place(
                order_id,
                store.next_number(),
                str(customer.id),
                row["currency"],
                totals,
                isoformat(row["placed_at"]),
                notes=row["notes"],
                source="import",
                external_id=external_id,
            ),
        )
        if row["paid"] and order.total > 0:
            store.save_order(
                order, order.apply_payment(import_payment_id(external_id), "capture", order.total)
            )
        return "created"

    def finish(self, import_id: str, status: str, error: str | None) -> dict[str, Any]:
        self._row(import_id, lock=True)
        self.session.execute(
            update(tables.order_imports)
            .where(tables.order_imports.c.id == import_id)
            .where(tables.order_imports.c.status == "running")
            .values(status=status, error=error, finished_at=utcnow(), updated_at=utcnow())
        )
        self.session.commit()
        return self.get(import_id)

    def get(self, import_id: str) -> dict[str, Any]:
        row = self._row(import_id)
        self.session.rollback()
        return import_json(row)

    def list(self, limit: int = 50) -> list[dict[str, Any]]:
        rows = self.session.execute(
            select(tables.order_imports)
            .order_by(tables.order_imports.c.started_at.desc())
            .limit(limit)
        ).all()
        self.session.rollback()
        return [import_json(row) for row in rows]


def import_json(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "filename": row.filename,
        "status": row.status,
        "total_rows": row.total_rows,
        "processed_rows": row.processed_rows,
        "created": row.created,
        "skipped": row.skipped,
        "rejected": row.rejected,
        "rejections": row.rejections,
        "actor_id": row.actor_id,
        "error": row.error,
        "started_at": isoformat(row.started_at),
        "finished_at": isoformat(row.finished_at) if row.finished_at else None,
    }
