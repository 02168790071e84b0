"""Customer records: search, create, edit, tags, owner, consent, merge, timeline, privacy.

Who sees what is decided by the customers service from the ``viewer`` (sales: only their own
customers; analysts: no contact details); the roles here say who may call at all.
"""

from __future__ import annotations

import logging
from typing import Any

from gateway import customer_schemas as cs
from gateway.csv_export import csv_download
from gateway.operations import ANY_ROLE, Context, Reply, op
from gateway.schemas import EraseRequest

WRITERS = frozenset({"admin", "manager", "sales"})
MANAGERS = frozenset({"admin", "manager"})
ADMIN = frozenset({"admin"})
CUSTOMERS = {"tag": "customers", "resource": "customer"}
#: Seconds the answer to an archive, a merge or an erasure waits, at most, for the orders
#: service to take the customer's new status into its replica.
ORDERS_SYNC_TIMEOUT = 5.0
log = logging.getLogger(__name__)
CSV_COLUMNS = (
    "id",
    "kind",
    "name",
    "company",
    "email",
    "phone",
    "tags",
    "owner_id",
    "status",
    "source",
    "external_id",
    "created_at",
    "updated_at",
)


def viewer(ctx: Context) -> dict[str, Any]:
    return {"id": ctx.principal.id, "role": ctx.principal.role, "kind": ctx.principal.kind}


def _iso(query: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in query.items()}


def _orders_know(ctx: Context, result: Any) -> Any:
    """After a customer stops being active (archived, merged away, erased): the orders service
    applies the change to its customer replica before the answer goes out, so an order placed
    next is refused (the replica is otherwise fed by live events, a moment later). The change
    is made whatever happens here: if orders cannot take it now, its live consumer and its
    periodic catch-up will, and the answer still reports the change."""
    try:
        ctx.rpc.call("orders", "sync_customers", timeout=ORDERS_SYNC_TIMEOUT)
    except Exception:  # the change is made; orders converges on its own
        log.warning("orders did not take the customer's new status at once", exc_info=True)
    return result


def _id(ctx: Context) -> str:
    return ctx.path["customer_id"]


@op(
    "GET",
    "/customers",
    operation_id="searchCustomers",
    summary="Search and filter customers",
    roles=ANY_ROLE,
    query=cs.CustomerQuery,
    response=cs.CustomerPage,
    **CUSTOMERS,
)
def search(ctx: Context) -> Reply:
    return Reply(ctx.call("customers", "search_customers", viewer=viewer(ctx), **_iso(ctx.query)))


@op(
    "POST",
    "/customers",
    operation_id="createCustomer",
    summary="Create a customer",
    roles=WRITERS,
    body=cs.CustomerCreate,
    response=cs.Customer,
    status=201,
    audit="customers.create",
    errors=(400, 409),
    etag=True,
    **CUSTOMERS,
)
def create(ctx: Context) -> Reply:
    data = dict(ctx.body)
    force = data.pop("force", False)
    customer = ctx.call(
        "customers",
        "create_customer",
        actor=ctx.actor,
        viewer=viewer(ctx),
        data=data,
        force=force,
    )
    return Reply(
        customer,
        status=201,
        resource_id=customer["id"],
        headers={"Location": f"/api/v1/customers/{customer['id']}"},
    )


def _first(entries: list[dict], key: str) -> str:
    chosen = next((e for e in entries if e.get("primary")), entries[0] if entries else None)
    return (chosen or {}).get(key) or ""


def _csv_row(customer: dict[str, Any]) -> tuple[Any, ...]:
    return (
        customer["id"],
        customer["kind"],
        customer.get("name"),
        customer.get("company"),
        _first(customer.get("emails") or [], "address"),
        _first(customer.get("phones") or [], "number"),
        " ".join(customer.get("tags") or []),
        customer.get("owner_id"),
        customer["status"],
        customer.get("source"),
        customer.get("external_id"),
        customer["created_at"],
        customer["updated_at"],
    )


@op(
    "GET",
    "/customers/export.csv",
    operation_id="exportCustomers",
    summary="Export the filtered customer list as CSV",
    roles=ANY_ROLE,
    query=cs.ExportQuery,
    **CUSTOMERS,
)
def export_csv(ctx: Context) -> Reply:
    query = _iso({k: v for k, v in ctx.query.items() if k not in ("cursor", "limit")})

    def page(cursor: str | None, limit: int) -> dict[str, Any]:
        return ctx.call(
            "customers",
            "search_customers",
            viewer=viewer(ctx),
            **{**query, "cursor": cursor, "limit": limit},
        )

    return Reply(csv_download("customers.csv", CSV_COLUMNS, page, _csv_row))


@op(
    "GET",
    "/customers/<customer_id>",
    operation_id="getCustomer",
    summary="Read a customer",
    roles=ANY_ROLE,
    query=cs.AsOfQuery,
    response=cs.Customer,
    etag=True,
    errors=(404,),
    **CUSTOMERS,
)
def get(ctx: Context) -> Reply:
    as_of = ctx.query.get("as_of")
    return Reply(
        ctx.call(
            "customers",
            "get_customer",
            viewer=viewer(ctx),
            customer_id=_id(ctx),
            as_of=as_of.isoformat() if as_of else None,
        )
    )


@op(
    "PATCH",
    "/customers/<customer_id>",
    operation_id="updateCustomer",
    summary="Edit a customer",
    roles=WRITERS,
    body=cs.CustomerChanges,
    response=cs.Customer,
    etag=True,
    audit="customers.update",
    errors=(400, 404, 409, 412, 428),
    **CUSTOMERS,
)
def update(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "customers",
            "update_customer",
            actor=ctx.actor,
            viewer=viewer(ctx),
            customer_id=_id(ctx),
            changes=ctx.body,
            expected_version=ctx.if_match(),
        )
    )


@op(
    "POST",
    "/customers/<customer_id>/tags",
    operation_id="tagCustomer",
    summary="Add and remove tags",
    roles=WRITERS,
    body=cs.TagChanges,
    response=cs.Customer,
    etag=True,
    audit="customers.tag",
    errors=(400, 404),
    **CUSTOMERS,
)
def tags(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "customers",
            "set_tags",
            actor=ctx.actor,
            viewer=viewer(ctx),
            customer_id=_id(ctx),
            **ctx.body,
        )
    )


@op(
    "POST",
    "/customers/<customer_id>/owner",
    operation_id="assignCustomer",
    summary="Assign a customer to a sales user",
    roles=MANAGERS,
    body=cs.OwnerChange,
    response=cs.Customer,
    etag=True,
    audit="customers.assign",
    errors=(400, 404),
    **CUSTOMERS,
)
def assign(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "customers",
            "assign_owner",
            actor=ctx.actor,
            viewer=viewer(ctx),
            customer_id=_id(ctx),
            owner_id=ctx.body["owner_id"],
        )
    )


@op(
    "POST",
    "/customers/<customer_id>/consents",
    operation_id="recordConsent",
    summary="Record marketing consent given or withdrawn",
    roles=WRITERS,
    body=cs.ConsentRecord,
    response=cs.Customer,
    audit="customers.consent",
    errors=(400, 404),
    **CUSTOMERS,
)
def record_consent(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "customers",
            "record_consent",
            actor=ctx.actor,
            viewer=viewer(ctx),
            customer_id=_id(ctx),
            **ctx.body,
        )
    )


@op(
    "GET",
    "/customers/<customer_id>/consents",
    operation_id="listConsents",
    summary="A customer's consent history",
    roles=ANY_ROLE,
    response=cs.ConsentPage,
    errors=(404,),
    **CUSTOMERS,
)
def consents(ctx: Context) -> Reply:
    history = ctx.call("customers", "consent_history", viewer=viewer(ctx), customer_id=_id(ctx))
    return Reply({"items": history})


@op(
    "POST",
    "/customers/<customer_id>/archive",
    operation_id="archiveCustomer",
    summary="Archive a customer",
    roles=WRITERS,
    response=cs.Customer,
    audit="customers.archive",
    errors=(404, 422),
    **CUSTOMERS,
)
def archive(ctx: Context) -> Reply:
    return Reply(
        _orders_know(
            ctx,
            ctx.call(
                "customers",
                "archive_customer",
                actor=ctx.actor,
                viewer=viewer(ctx),
                customer_id=_id(ctx),
            ),
        )
    )


@op(
    "POST",
    "/customers/<customer_id>/restore",
    operation_id="restoreCustomer",
    summary="Restore an archived customer",
    roles=WRITERS,
    response=cs.Customer,
    audit="customers.restore",
    errors=(404, 422),
    **CUSTOMERS,
)
def restore(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "customers",
            "restore_customer",
            actor=ctx.actor,
            viewer=viewer(ctx),
            customer_id=_id(ctx),
        )
    )


@op(
    "POST",
    "/customers/<customer_id>/merge",
    operation_id="mergeCustomers",
    summary="Merge another customer into this one",
    roles=MANAGERS,
    body=cs.MergeRequest,
    response=cs.MergeResult,
    audit="customers.merge",
    errors=(400, 404, 422),
    **CUSTOMERS,
)
def merge(ctx: Context) -> Reply:
    return Reply(
        _orders_know(
            ctx,
            ctx.call(
                "customers",
                "merge_customers",
                actor=ctx.actor,
                target_id=_id(ctx),
                source_id=ctx.body["source_id"],
            ),
        )
    )


@op(
    "POST",
    "/customers/merges/<merge_id>/undo",
    operation_id="undoMerge",
    summary="Undo a merge",
    roles=MANAGERS,
    response=cs.UndoMergeResult,
    audit="customers.undo_merge",
    resource="merge",
    errors=(404, 422),
    tag="customers",
)
def undo_merge(ctx: Context) -> Reply:
    return Reply(
        ctx.call("customers", "undo_merge", actor=ctx.actor, merge_id=ctx.path["merge_id"])
    )


@op(
    "GET",
    "/customers/<customer_id>/timeline",
    operation_id="customerTimeline",
    summary="A customer's history, newest first",
    roles=ANY_ROLE,
    query=cs.PageQuery,
    response=cs.TimelinePage,
    errors=(404,),
    **CUSTOMERS,
)
def timeline(ctx: Context) -> Reply:
    return Reply(
        ctx.call("customers", "timeline", viewer=viewer(ctx), customer_id=_id(ctx), **ctx.query)
    )


@op(
    "GET",
    "/customers/<customer_id>/privacy-export",
    operation_id="exportCustomerData",
    summary="Everything held about one customer (privacy request)",
    roles=MANAGERS,
    errors=(404,),
    **CUSTOMERS,
)
def privacy_export(ctx: Context) -> Reply:
    data = ctx.call("customers", "export_customer_data", viewer=viewer(ctx), customer_id=_id(ctx))
    return Reply(
        data, headers={"Content-Disposition": f'attachment; filename="customer-{_id(ctx)}.json"'}
    )


@op(
    "POST",
    "/customers/<customer_id>/erase",
    operation_id="eraseCustomer",
    summary="Erase a customer's personal data for good",
    roles=ADMIN,
    body=EraseRequest,
    response=cs.Customer,
    audit="customers.erase",
    errors=(404, 422),
    **CUSTOMERS,
)
def erase(ctx: Context) -> Reply:
    erased = ctx.call("customers", "erase_customer", actor=ctx.actor, customer_id=_id(ctx))
    return Reply(_orders_know(ctx, erased))


@op(
    "GET",
    "/customer-attributes",
    operation_id="listCustomerAttributes",
    summary="Custom customer attributes defined by admins",
    roles=ANY_ROLE,
    response=cs.AttributeDefinitionPage,
    tag="customers",
)
def list_attributes(ctx: Context) -> Reply:
    return Reply({"items": ctx.call("customers", "list_attributes")})


@op(
    "POST",
    "/customer-attributes",
    operation_id="defineCustomerAttribute",
    summary="Define a custom customer attribute",
    roles=ADMIN,
    body=cs.AttributeDefinition,
    response=cs.AttributeDefinition,
    status=201,
    audit="customers.define_attribute",
    resource="attribute",
    errors=(400, 409),
    tag="customers",
)
def define_attribute(ctx: Context) -> Reply:
    definition = ctx.call("customers", "define_attribute", actor=ctx.actor, **ctx.body)
    return Reply(definition, status=201, resource_id=definition["key"])


@op(
    "POST",
    "/customers/<customer_id>/attributes",
    operation_id="setCustomerAttributes",
    summary="Set custom attribute values",
    roles=WRITERS,
    body=cs.AttributeValues,
    response=cs.Customer,
    etag=True,
    audit="customers.set_attributes",
    errors=(400, 404),
    **CUSTOMERS,
)
def set_attributes(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "customers",
            "set_attributes",
            actor=ctx.actor,
            viewer=viewer(ctx),
            customer_id=_id(ctx),
            values=ctx.body["values"],
        )
    )
