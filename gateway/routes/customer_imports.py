"""Bulk import of customers from CSV or XLSX, its progress, its report, and its reversal."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

from werkzeug.wrappers import Response

from gateway import customer_schemas as cs
from gateway.operations import Context, Reply, op, require_upload_type
from shared.importer import run_import, spool
from shared.tabular import write_csv_line

MANAGERS = frozenset({"admin", "manager"})
IMPORTS = {"tag": "customer-imports", "roles": MANAGERS, "resource": "import"}
IMPORT_RPC_TIMEOUT = 120.0
#: Largest file accepted (bytes); the gateway's usual body limit does not apply here.
IMPORT_MAX_BYTES = 512 * 1024 * 1024


def _viewer(ctx: Context) -> dict:
    return {"id": ctx.principal.id, "role": ctx.principal.role, "kind": ctx.principal.kind}


@op(
    "POST",
    "/customers/imports",
    operation_id="importCustomers",
    summary="Import customers from a CSV (UTF-8 or GBK) or XLSX file sent as the body",
    query=cs.ImportQuery,
    response=cs.Import,
    status=201,
    audit="customers.import",
    errors=(400, 413, 415),
    raw_body=True,
    **IMPORTS,
)
def start_import(ctx: Context) -> Reply:
    options = dict(ctx.query)
    import_id = str(options.pop("import_id", None) or uuid.uuid4())
    require_upload_type(ctx.request)
    path = spool(ctx.request.stream, IMPORT_MAX_BYTES)
    try:
        summary = run_import(
            lambda method, **kwargs: ctx.rpc.call(
                "customers", method, timeout=IMPORT_RPC_TIMEOUT, **kwargs
            ),
            path,
            actor=ctx.actor,
            import_id=import_id,
            **options,
        )
    finally:
        path.unlink(missing_ok=True)
    return Reply(
        summary,
        status=201,
        resource_id=import_id,
        headers={"Location": f"/api/v1/customers/imports/{import_id}"},
    )


@op(
    "GET",
    "/customers/imports",
    operation_id="listImports",
    summary="Imports, newest first",
    query=cs.PageQuery,
    response=cs.ImportPage,
    **IMPORTS,
)
def list_imports(ctx: Context) -> Reply:
    return Reply(ctx.call("customers", "list_imports", viewer=_viewer(ctx), **ctx.query))


@op(
    "GET",
    "/customers/imports/<import_id>",
    operation_id="getImport",
    summary="An import's progress and counts",
    response=cs.Import,
    errors=(404,),
    **IMPORTS,
)
def get_import(ctx: Context) -> Reply:
    return Reply(
        ctx.call("customers", "get_import", viewer=_viewer(ctx), import_id=ctx.path["import_id"])
    )


@op(
    "GET",
    "/customers/imports/<import_id>/rejections",
    operation_id="listImportRejections",
    summary="The rows an import rejected, with the reasons",
    query=cs.PageQuery,
    response=cs.RejectionPage,
    errors=(404,),
    **IMPORTS,
)
def rejections(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "customers",
            "import_rejections",
            viewer=_viewer(ctx),
            import_id=ctx.path["import_id"],
            **ctx.query,
        )
    )


def _rejection_pages(ctx: Context) -> Iterator[dict]:
    cursor = None
    while True:
        page = ctx.call(
            "customers",
            "import_rejections",
            viewer=_viewer(ctx),
            import_id=ctx.path["import_id"],
            limit=200,
            cursor=cursor,
        )
        yield page
        cursor = page.get("next_cursor")
        if not cursor:
            return


def _rejection_lines(pages: Iterator[dict]) -> Iterator[bytes]:
    yield ("\ufeff" + write_csv_line(["row", "reasons", "values"])).encode()
    for page in pages:
        for item in page["items"]:
            yield write_csv_line(
                [
                    item["row"],
                    json.dumps(item["reasons"], ensure_ascii=False),
                    json.dumps(item["values"], ensure_ascii=False),
                ]
            ).encode()


@op(
    "GET",
    "/customers/imports/<import_id>/rejections.csv",
    operation_id="exportImportRejections",
    summary="The rejected rows as CSV",
    errors=(404,),
    **IMPORTS,
)
def rejections_csv(ctx: Context) -> Reply:
    pages = _rejection_pages(ctx)
    first = next(pages)  # before the response starts: an unknown import is still a 404
    filename = f"import-{ctx.path['import_id']}-rejected.csv"
    body = Response(
        _rejection_lines(_prepend(first, pages)),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
    return Reply(body)


def _prepend(first, rest: Iterator) -> Iterator:
    yield first
    yield from rest


@op(
    "POST",
    "/customers/imports/<import_id>/revert",
    operation_id="revertImport",
    summary="Undo everything an import created and changed",
    response=cs.Import,
    audit="customers.revert_import",
    errors=(404, 422),
    **IMPORTS,
)
def revert(ctx: Context) -> Reply:
    summary = ctx.rpc.call(
        "customers",
        "revert_import",
        timeout=IMPORT_RPC_TIMEOUT * 10,
        actor=ctx.actor,
        import_id=ctx.path["import_id"],
    )
    return Reply(summary, resource_id=ctx.path["import_id"])
