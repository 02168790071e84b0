"""Bulk writes for machines: many customers created or edited, or many orders placed, in one
request, each item on its own (one failing item does not undo the others), through the
services' ordinary commands, so every rule, duplicate check and event is the same as for one
at a time."""

from __future__ import annotations

from typing import Any

from eventlet.greenpool import GreenPool
from marshmallow import Schema, ValidationError

from gateway import integration_schemas as schemas
from gateway import order_schemas as osch
from gateway.idempotency import item_idempotency
from gateway.operations import Context, Reply, op
from gateway.problems import error_body
from gateway.routes.customers import viewer
from gateway.routes.orders import place
from shared.errors import BadRequest, CmsError
from shared.schemas import schema_instance

WRITERS = frozenset({"admin", "manager", "sales"})
#: Items in flight at once: bounded so that a bulk request cannot crowd out everyone else.
PARALLEL = 4


def _item_data(schema: type[Schema], data: Any) -> dict[str, Any]:
    """An item's data checked by ``schema``'s shared instance: a 400 naming each bad field."""
    try:
        return schema_instance(schema).load(data)
    except ValidationError as exc:
        raise BadRequest.for_fields(exc.messages, "the item's data is invalid") from exc


def _item(ctx: Context, index: int, item: dict[str, Any], force: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"index": index, "op": item["op"], "id": item.get("id")}
    try:
        if item["op"] == "create":
            data = _item_data(schemas.CUSTOMER_CREATE, item["data"])
            # the request's force, the item's, or the one in its data (as POST /customers)
            in_data = data.pop("force", False)
            force = bool(force or item.get("force") or in_data)
            customer = ctx.call(
                "customers",
                "create_customer",
                actor=ctx.actor,
                viewer=viewer(ctx),
                data=data,
                force=force,
            )
            status = 201
        else:
            changes = _item_data(schemas.CUSTOMER_CHANGES, item["data"])
            customer = ctx.call(
                "customers",
                "update_customer",
                actor=ctx.actor,
                viewer=viewer(ctx),
                customer_id=item["id"],
                changes=changes,
                expected_version=item.get("version"),
            )
            status = 200
        return {**result, "status": status, "id": customer["id"], "version": customer["version"]}
    except CmsError as exc:
        return {**result, "status": exc.status, "version": None, "error": error_body(exc)}


@op(
    "POST",
    "/customers/bulk",
    operation_id="bulkCustomers",
    summary="Create or edit many customers",
    tag="customers",
    roles=WRITERS,
    body=schemas.BulkCustomers,
    response=schemas.BulkResults,
    audit="customers.bulk",
    resource="customer",
    errors=(400,),
)
def bulk_customers(ctx: Context) -> Reply:
    items = ctx.body["items"]
    pool = GreenPool(PARALLEL)
    results = list(
        pool.imap(lambda pair: _item(ctx, pair[0], pair[1], ctx.body["force"]), enumerate(items))
    )
    succeeded = sum(1 for r in results if r["status"] < 300)
    return Reply({"results": results, "succeeded": succeeded, "failed": len(results) - succeeded})


def _order(ctx: Context, index: int, item: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = {"index": index, "op": item["op"], "id": None}
    try:
        body = _item_data(osch.OrderCreate, item["data"])
        order = place(ctx, body, item_idempotency(ctx, "bulkOrders", index, item))
        return {**result, "status": 201, "id": order["id"], "version": order.get("version")}
    except CmsError as exc:
        return {**result, "status": exc.status, "version": None, "error": error_body(exc)}


@op(
    "POST",
    "/orders/bulk",
    operation_id="bulkOrders",
    summary="Place many orders",
    tag="orders",
    roles=WRITERS,
    body=schemas.BulkOrders,
    response=schemas.BulkResults,
    audit="orders.bulk",
    resource="order",
    errors=(400,),
    idempotent=True,
)
def bulk_orders(ctx: Context) -> Reply:
    pool = GreenPool(PARALLEL)
    results = list(pool.imap(lambda pair: _order(ctx, *pair), enumerate(ctx.body["items"])))
    succeeded = sum(1 for r in results if r["status"] < 300)
    return Reply({"results": results, "succeeded": succeeded, "failed": len(results) - succeeded})
