"""Payments of orders: take one through the sandbox provider, record cash or a transfer, follow
it, capture, cancel, refund, and the daily reconciliation against the provider's report.

Writes that move money (create, record, capture, refund) accept an ``Idempotency-Key``; the
gateway hands the key and a keyed hash of the operation, its path and its body to the
payments service, which enforces it (same key + same request → the stored response; same key
+ another request → 422).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from werkzeug.wrappers import Response

from gateway import payment_schemas as ps
from gateway.csv_export import csv_download
from gateway.idempotency import idempotency
from gateway.operations import ANY_ROLE, Context, Reply, op
from shared.errors import BadRequest, CmsError, NotFound
from shared.tabular import spreadsheet_cell

TAKERS = frozenset({"admin", "manager", "sales"})
MANAGERS = frozenset({"admin", "manager"})
PAYMENTS = {"tag": "payments", "resource": "payment"}
CSV_COLUMNS = (
    "date",
    "provider",
    "method",
    "currency",
    "provider_count",
    "provider_captured",
    "provider_refunded",
    "provider_net",
    "cms_count",
    "cms_captured",
    "cms_refunded",
    "cms_net",
    "difference",
    "status",
    "mismatched_references",
)


def _check_order_visible(ctx: Context, order_id: str, resource: str = "order") -> None:
    """Sales see only the payments of their own customers' orders: the orders service says
    whether the caller may see the order (one RPC, for the sales role only)."""
    if ctx.principal.role != "sales":
        return
    viewer = {"id": ctx.principal.id, "role": "sales", "kind": ctx.principal.kind}
    try:
        ctx.call("orders", "get_order", order_id=order_id, viewer=viewer)
    except CmsError as exc:
        if exc.status in (403, 404):
            raise NotFound(f"{resource} not found", {"resource_type": resource}) from exc
        raise


def _payment(ctx: Context) -> dict[str, Any]:
    payment = ctx.call("payments", "get_payment", payment_id=ctx.path["payment_id"])
    _check_order_visible(ctx, payment["order_id"], "payment")
    return payment


def _order_customer(ctx: Context, order_id: str) -> None:
    _check_order_visible(ctx, order_id)


def _created(payment: dict[str, Any]) -> Reply:
    return Reply(
        payment,
        status=201,
        resource_id=payment["id"],
        headers={"Location": f"/api/v1/payments/{payment['id']}"},
    )


@op(
    "POST",
    "/payments",
    operation_id="createPayment",
    summary="Take a payment of an order (sandbox provider)",
    roles=TAKERS,
    body=ps.PaymentCreate,
    response=ps.Payment,
    status=201,
    audit="payments.create",
    errors=(400, 404, 422),
    **PAYMENTS,
    idempotent=True,
)
def create(ctx: Context) -> Reply:
    data = {**ctx.body, "order_id": str(ctx.body["order_id"])}
    _order_customer(ctx, data["order_id"])
    return _created(
        ctx.call(
            "payments",
            "create_payment",
            actor=ctx.actor,
            data=data,
            idempotency=idempotency(ctx, "createPayment"),
        )
    )


@op(
    "POST",
    "/payments/manual",
    operation_id="recordManualPayment",
    summary="Record cash or a bank transfer received by staff",
    roles=TAKERS,
    body=ps.ManualPaymentCreate,
    response=ps.Payment,
    status=201,
    audit="payments.record_manual",
    errors=(400, 404, 422),
    **PAYMENTS,
    idempotent=True,
)
def record_manual(ctx: Context) -> Reply:
    data = {**ctx.body, "order_id": str(ctx.body["order_id"])}
    _order_customer(ctx, data["order_id"])
    return _created(
        ctx.call(
            "payments",
            "record_manual_payment",
            actor=ctx.actor,
            data=data,
            idempotency=idempotency(ctx, "recordManualPayment"),
        )
    )


@op(
    "GET",
    "/payments",
    operation_id="listPayments",
    summary="List payments (of one order with its balance)",
    roles=ANY_ROLE,
    query=ps.PaymentQuery,
    response=ps.PaymentPage,
    errors=(400, 404),  # 404: an order_id that names no order the caller may see
    **PAYMENTS,
)
def list_(ctx: Context) -> Reply:
    query = {k: (str(v) if k == "order_id" else v) for k, v in ctx.query.items()}
    if ctx.principal.role == "sales":
        if "order_id" not in query:
            raise BadRequest.for_fields({"order_id": ["Required for the sales role."]})
        _order_customer(ctx, query["order_id"])
    return Reply(ctx.call("payments", "list_payments", **query))


PAYMENT_CSV_COLUMNS = (
    "id",
    "order_id",
    "customer_id",
    "method",
    "provider",
    "status",
    "amount",
    "captured_amount",
    "refunded_amount",
    "currency",
    "card_brand",
    "card_last4",
    "reference",
    "failure_reason",
    "created_at",
    "updated_at",
)
#: Who may download every payment: not sales, who see the payments of their own orders only.
EXPORTERS = frozenset({"admin", "manager", "analyst"})


def _payment_row(payment: dict[str, Any]) -> tuple[Any, ...]:
    card = payment.get("card") or {}
    return (
        *(payment.get(column) for column in PAYMENT_CSV_COLUMNS[:10]),
        card.get("brand"),
        card.get("last4"),
        payment.get("reference"),
        payment.get("failure_reason"),
        payment["created_at"],
        payment["updated_at"],
    )


@op(
    "GET",
    "/payments/export.csv",
    operation_id="exportPayments",
    summary="Export the filtered payment list as CSV",
    roles=EXPORTERS,
    query=ps.PaymentExportQuery,
    errors=(400,),
    **PAYMENTS,
)
def export_csv(ctx: Context) -> Reply:
    """Every payment the filters select, amounts in minor units; a card only as brand and
    last four digits (nothing else of it is ever kept)."""
    query = {k: (str(v) if k == "order_id" else v) for k, v in ctx.query.items()}

    def page(cursor: str | None, limit: int) -> dict[str, Any]:
        return ctx.call("payments", "list_payments", **query, cursor=cursor, limit=limit)

    return Reply(csv_download("payments.csv", PAYMENT_CSV_COLUMNS, page, _payment_row))


@op(
    "GET",
    "/payments/reconciliation",
    operation_id="getPaymentReconciliation",
    summary="Reconcile one day's payments with the provider's report",
    roles=MANAGERS,
    query=ps.ReconciliationQuery,
    response=ps.Reconciliation,
    **PAYMENTS,
)
def reconciliation(ctx: Context) -> Reply:
    day = ctx.query.get("date")
    return Reply(ctx.call("payments", "reconciliation", day=day.isoformat() if day else None))


@op(
    "GET",
    "/payments/reconciliation.csv",
    operation_id="exportPaymentReconciliation",
    summary="Export one day's reconciliation as CSV",
    roles=MANAGERS,
    query=ps.ReconciliationQuery,
    **PAYMENTS,
)
def reconciliation_csv(ctx: Context) -> Reply:
    day = ctx.query.get("date")
    report = ctx.call("payments", "reconciliation", day=day.isoformat() if day else None)
    buffer = io.StringIO()
    buffer.write("\ufeff")
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in report["rows"]:
        refs = " ".join(
            f"{item['reference']}:{item['reason']}" for item in row.get("mismatches") or []
        )
        writer.writerow(
            [spreadsheet_cell(row.get(column)) for column in CSV_COLUMNS[:-1]]
            + [spreadsheet_cell(refs)]
        )
    filename = f"reconciliation-{report['date']}.csv"
    return Reply(
        Response(
            buffer.getvalue().encode("utf-8"),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    )


@op(
    "GET",
    "/payments/<payment_id>",
    operation_id="getPayment",
    summary="Read a payment",
    roles=ANY_ROLE,
    response=ps.Payment,
    errors=(404,),
    **PAYMENTS,
)
def get(ctx: Context) -> Reply:
    return Reply(_payment(ctx))


def _action(ctx: Context, method: str, **kwargs: Any) -> Reply:
    _payment(ctx)
    return Reply(
        ctx.call("payments", method, actor=ctx.actor, payment_id=ctx.path["payment_id"], **kwargs)
    )


@op(
    "POST",
    "/payments/<payment_id>/capture",
    operation_id="capturePayment",
    summary="Capture an authorised payment",
    roles=TAKERS,
    response=ps.Payment,
    audit="payments.capture",
    errors=(404, 422),
    **PAYMENTS,
    idempotent=True,
)
def capture(ctx: Context) -> Reply:
    return _action(ctx, "capture_payment", idempotency=idempotency(ctx, "capturePayment"))


@op(
    "POST",
    "/payments/<payment_id>/cancel",
    operation_id="cancelPayment",
    summary="Cancel a payment that is not captured yet",
    roles=TAKERS,
    body=ps.CancelRequest,
    response=ps.Payment,
    audit="payments.cancel",
    errors=(404, 422),
    **PAYMENTS,
)
def cancel(ctx: Context) -> Reply:
    return _action(ctx, "cancel_payment", reason=ctx.body.get("reason"))


@op(
    "POST",
    "/payments/<payment_id>/refunds",
    operation_id="refundPayment",
    summary="Refund a captured payment fully or partly",
    roles=MANAGERS,
    body=ps.RefundCreate,
    response=ps.Payment,
    status=201,
    audit="payments.refund",
    errors=(400, 404, 422),
    **PAYMENTS,
    idempotent=True,
)
def refund(ctx: Context) -> Reply:
    reply = _action(
        ctx,
        "refund_payment",
        amount=ctx.body.get("amount"),
        reason=ctx.body.get("reason"),
        idempotency=idempotency(ctx, "refundPayment"),
    )
    reply.status = 201
    return reply


@op(
    "POST",
    "/payments/<payment_id>/confirm",
    operation_id="confirmPayment",
    summary="Complete the sandbox's customer confirmation step",
    roles=TAKERS,
    response=ps.Payment,
    audit="payments.confirm",
    errors=(404, 422),
    **PAYMENTS,
)
def confirm(ctx: Context) -> Reply:
    return _action(ctx, "confirm_payment")


@op(
    "POST",
    "/payments/<payment_id>/sandbox-scan",
    operation_id="simulateSandboxScan",
    summary="Sandbox: simulate the customer scanning the QR code",
    roles=TAKERS,
    response=ps.Payment,
    audit="payments.sandbox_scan",
    errors=(404, 422),
    **PAYMENTS,
)
def sandbox_scan(ctx: Context) -> Reply:
    return _action(ctx, "sandbox_scan")
