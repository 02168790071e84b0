"""Historical import of orders from a CSV (UTF-8 or GBK) or XLSX file sent as the body (at
most the gateway's usual body limit; ``cms import-orders FILE`` has none)."""

from __future__ import annotations

import uuid

from gateway import order_schemas as osch
from gateway.operations import Context, Reply, op, require_upload_type
from shared.importer import run_import, spool

MANAGERS = frozenset({"admin", "manager"})
IMPORTS = {"tag": "order-imports", "roles": MANAGERS, "resource": "order_import"}
IMPORT_RPC_TIMEOUT = 120.0
IMPORT_MAX_BYTES = 1024 * 1024


@op(
    "POST",
    "/orders/imports",
    operation_id="importOrders",
    summary="Import past orders from a CSV or XLSX file sent as the body",
    query=osch.OrderImportQuery,
    response=osch.OrderImport,
    status=201,
    audit="orders.import",
    errors=(400, 413, 415),
    raw_body=True,
    **IMPORTS,
)
def import_orders(ctx: Context) -> Reply:
    import_id = str(uuid.uuid4())
    require_upload_type(ctx.request)
    path = spool(ctx.request.stream, IMPORT_MAX_BYTES)
    try:
        summary = run_import(
            lambda method, **kwargs: ctx.rpc.call(
                "orders", method, timeout=IMPORT_RPC_TIMEOUT, **kwargs
            ),
            path,
            actor=ctx.actor,
            import_id=import_id,
            filename=ctx.query["filename"],
            mode="create",
            match_on="external_id",
        )
    finally:
        path.unlink(missing_ok=True)
    return Reply(
        summary,
        status=201,
        resource_id=import_id,
        headers={"Location": f"/api/v1/orders/imports/{import_id}"},
    )


@op(
    "GET",
    "/orders/imports",
    operation_id="listOrderImports",
    summary="Order imports, newest first",
    response=osch.OrderImport,
    many=True,
    **IMPORTS,
)
def list_imports(ctx: Context) -> Reply:
    return Reply(ctx.call("orders", "list_imports", actor=ctx.actor))


@op(
    "GET",
    "/orders/imports/<import_id>",
    operation_id="getOrderImport",
    summary="An order import's counts and rejected rows",
    response=osch.OrderImport,
    errors=(404,),
    **IMPORTS,
)
def get_import(ctx: Context) -> Reply:
    try:
        import_id = str(uuid.UUID(ctx.path["import_id"]))
    except ValueError:
        from shared.errors import NotFound

        raise NotFound("import not found", {"resource_type": "import"}) from None
    return Reply(ctx.call("orders", "get_import", actor=ctx.actor, import_id=import_id))
