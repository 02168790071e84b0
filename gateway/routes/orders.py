"""Orders: list and filter, place, read, edit (before any payment, with If-Match), the
workflow's actions, the status history, and the changes feed behind the live status.

Who sees which orders is decided by the orders service from the ``viewer`` (sales: only the
orders of customers they own; analysts: no delivery address or notes), as for customers.
"""

from __future__ import annotations

import uuid
from typing import Any

from gateway import order_schemas as osch
from gateway.idempotency import idempotency
from gateway.operations import ANY_ROLE, Context, Reply, op
from shared.errors import NotFound

WRITERS = frozenset({"admin", "manager", "sales"})
ORDERS = {"tag": "orders", "resource": "order"}
#: The RPC deadline of a long poll: its wait plus this margin.
CHANGES_MARGIN = 3.0


def viewer(ctx: Context) -> dict[str, Any]:
    return {"id": ctx.principal.id, "role": ctx.principal.role, "kind": ctx.principal.kind}


def _order_id(ctx: Context) -> str:
    try:
        return str(uuid.UUID(ctx.path["order_id"]))
    except ValueError:
        raise NotFound("order not found", {"resource_type": "order"}) from None


def _plain(values: dict[str, Any]) -> dict[str, Any]:
    """JSON values for RPC: UUIDs and datetimes as strings."""
    plain = {}
    for key, value in values.items():
        if isinstance(value, uuid.UUID):
            value = str(value)
        elif hasattr(value, "isoformat"):
            value = value.isoformat()
        plain[key] = value
    return plain


def _optional_if_match(ctx: Context) -> int | None:
    return ctx.if_match() if ctx.request.headers.get("If-Match") else None


@op(
    "GET",
    "/orders",
    operation_id="listOrders",
    summary="List and filter orders, newest first",
    roles=ANY_ROLE,
    query=osch.OrderQuery,
    response=osch.OrderPage,
    **ORDERS,
)
def list_orders(ctx: Context) -> Reply:
    return Reply(ctx.call("orders", "list_orders", viewer=viewer(ctx), **_plain(ctx.query)))


def place(ctx: Context, body: dict[str, Any], key: dict[str, str] | None) -> dict[str, Any]:
    """Place the order ``body`` (``OrderCreate`` loaded) for the caller: one order, or one
    item of a bulk request."""
    data = _plain(body)
    data["lines"] = [_plain(line) for line in body["lines"]]
    return ctx.call(
        "orders", "place_order", actor=ctx.actor, viewer=viewer(ctx), data=data, idempotency=key
    )


@op(
    "POST",
    "/orders",
    operation_id="placeOrder",
    summary="Place an order for an active customer",
    roles=WRITERS,
    body=osch.OrderCreate,
    response=osch.Order,
    status=201,
    etag=True,
    audit="orders.place",
    errors=(400, 404, 422),
    idempotent=True,
    **ORDERS,
)
def place_order(ctx: Context) -> Reply:
    order = place(ctx, ctx.body, idempotency(ctx, "placeOrder"))
    return Reply(
        order,
        status=201,
        resource_id=order["id"],
        headers={"Location": f"/api/v1/orders/{order['id']}"},
    )


@op(
    "GET",
    "/orders/changes",
    operation_id="orderChanges",
    summary="Order changes after a position (long poll: waits up to `wait` seconds)",
    roles=ANY_ROLE,
    query=osch.OrderChangesQuery,
    response=osch.OrderChangeFeed,
    **ORDERS,
)
def changes(ctx: Context) -> Reply:
    query = _plain(ctx.query)
    return Reply(
        ctx.rpc.call(
            "orders",
            "order_changes",
            timeout=float(query.get("wait") or 0) + CHANGES_MARGIN,
            viewer=viewer(ctx),
            **query,
        )
    )


@op(
    "GET",
    "/orders/<order_id>",
    operation_id="getOrder",
    summary="Read an order",
    roles=ANY_ROLE,
    response=osch.Order,
    etag=True,
    errors=(404,),
    **ORDERS,
)
def get_order(ctx: Context) -> Reply:
    return Reply(ctx.call("orders", "get_order", viewer=viewer(ctx), order_id=_order_id(ctx)))


@op(
    "PATCH",
    "/orders/<order_id>",
    operation_id="updateOrder",
    summary="Edit an order's lines or delivery address (before any payment)",
    roles=WRITERS,
    body=osch.OrderChanges,
    response=osch.Order,
    etag=True,
    audit="orders.update",
    errors=(400, 404, 409, 412, 422, 428),
    **ORDERS,
)
def update_order(ctx: Context) -> Reply:
    version = ctx.if_match()
    order_id = _order_id(ctx)
    body = dict(ctx.body)
    order = None
    if "lines" in body:
        changes = {
            "lines": [_plain(line) for line in body["lines"]],
            **{k: body[k] for k in ("order_discount", "tax_rate") if k in body},
        }
        order = ctx.call(
            "orders",
            "change_order_lines",
            actor=ctx.actor,
            viewer=viewer(ctx),
            order_id=order_id,
            changes=changes,
            expected_version=version,
        )
        version = order["version"]
    if "delivery_address" in body:
        order = ctx.call(
            "orders",
            "change_order_address",
            actor=ctx.actor,
            viewer=viewer(ctx),
            order_id=order_id,
            delivery_address=body["delivery_address"],
            expected_version=version,
        )
    return Reply(order, resource_id=order_id)


def _action(action: str, operation_id: str, summary: str):
    @op(
        "POST",
        f"/orders/<order_id>/{action}",
        operation_id=operation_id,
        summary=summary,
        roles=WRITERS,
        body=osch.OrderActionBody,
        response=osch.Order,
        etag=True,
        audit=f"orders.{action}",
        errors=(404, 409, 412, 422),
        **ORDERS,
    )
    def handler(ctx: Context) -> Reply:
        order_id = _order_id(ctx)
        return Reply(
            ctx.call(
                "orders",
                "order_action",
                actor=ctx.actor,
                viewer=viewer(ctx),
                order_id=order_id,
                action=action,
                reason=ctx.body.get("reason"),
                expected_version=_optional_if_match(ctx),
            ),
            resource_id=order_id,
        )

    return handler


fulfil = _action("fulfil", "fulfilOrder", "Mark a paid order fulfilled")
complete = _action("complete", "completeOrder", "Complete a fulfilled order")
cancel = _action("cancel", "cancelOrder", "Cancel an order before fulfilment")
return_ = _action("return", "returnOrder", "Record the return of a fulfilled order")


@op(
    "GET",
    "/orders/<order_id>/history",
    operation_id="orderHistory",
    summary="An order's status history and changes, from its events",
    roles=ANY_ROLE,
    response=osch.OrderHistory,
    errors=(404,),
    **ORDERS,
)
def history(ctx: Context) -> Reply:
    items = ctx.call("orders", "order_history", viewer=viewer(ctx), order_id=_order_id(ctx))
    return Reply({"items": items})
