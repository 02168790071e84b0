"""The product catalogue: everyone reads it; admins and managers manage it."""

from __future__ import annotations

from gateway import order_schemas as osch
from gateway.operations import ANY_ROLE, Context, Reply, op

MANAGERS = frozenset({"admin", "manager"})
PRODUCTS = {"tag": "products", "resource": "product"}


@op(
    "GET",
    "/products",
    operation_id="listProducts",
    summary="List and search products",
    roles=ANY_ROLE,
    query=osch.ProductQuery,
    response=osch.ProductPage,
    **PRODUCTS,
)
def list_products(ctx: Context) -> Reply:
    return Reply(ctx.call("orders", "list_products", **ctx.query))


@op(
    "POST",
    "/products",
    operation_id="createProduct",
    summary="Create a product",
    roles=MANAGERS,
    body=osch.ProductCreate,
    response=osch.Product,
    status=201,
    etag=True,
    audit="products.create",
    errors=(400, 409),
    **PRODUCTS,
)
def create_product(ctx: Context) -> Reply:
    product = ctx.call("orders", "create_product", actor=ctx.actor, data=ctx.body)
    return Reply(
        product,
        status=201,
        resource_id=product["id"],
        headers={"Location": f"/api/v1/products/{product['id']}"},
    )


@op(
    "GET",
    "/products/<product_id>",
    operation_id="getProduct",
    summary="Read a product",
    roles=ANY_ROLE,
    response=osch.Product,
    etag=True,
    errors=(404,),
    **PRODUCTS,
)
def get_product(ctx: Context) -> Reply:
    return Reply(ctx.call("orders", "get_product", product_id=_product_id(ctx)))


@op(
    "PATCH",
    "/products/<product_id>",
    operation_id="updateProduct",
    summary="Edit a product (a price change never alters an existing order)",
    roles=MANAGERS,
    body=osch.ProductChanges,
    response=osch.Product,
    etag=True,
    audit="products.update",
    errors=(400, 404, 412, 422, 428),
    **PRODUCTS,
)
def update_product(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "orders",
            "update_product",
            actor=ctx.actor,
            product_id=_product_id(ctx),
            changes=ctx.body,
            expected_version=ctx.if_match(),
        ),
        resource_id=_product_id(ctx),
    )


def _product_id(ctx: Context) -> str:
    """A product id must be a UUID: anything else is simply not found."""
    import uuid

    from shared.errors import NotFound

    raw = ctx.path["product_id"]
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise NotFound("product not found", {"resource_type": "product"}) from None
