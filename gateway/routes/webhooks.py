"""Webhooks (admin): endpoints that receive every matching event, signed; their delivery log
with re-send; resuming an endpoint that was paused after repeated failures."""

from __future__ import annotations

from gateway import integration_schemas as schemas
from gateway.operations import Context, Reply, op

ADMIN = frozenset({"admin"})
WEBHOOKS = {"tag": "webhooks", "resource": "webhook"}


def _id(ctx: Context) -> str:
    return ctx.path["webhook_id"]


@op(
    "GET",
    "/webhooks",
    operation_id="listWebhooks",
    summary="List webhook endpoints (all of them: an installation has a handful)",
    roles=ADMIN,
    response=schemas.WebhookList,
    **WEBHOOKS,
)
def list_webhooks(ctx: Context) -> Reply:
    return Reply({"items": ctx.call("webhooks", "list_endpoints", actor=ctx.actor)})


@op(
    "POST",
    "/webhooks",
    operation_id="createWebhook",
    summary="Register a webhook endpoint",
    roles=ADMIN,
    body=schemas.WebhookCreate,
    response=schemas.WebhookCreated,
    status=201,
    audit="webhooks.create",
    errors=(400,),
    etag=True,
    **WEBHOOKS,
)
def create_webhook(ctx: Context) -> Reply:
    created = ctx.call("webhooks", "create_endpoint", actor=ctx.actor, data=ctx.body)
    return Reply(
        created,
        status=201,
        resource_id=created["id"],
        headers={"Location": f"/api/v1/webhooks/{created['id']}"},
    )


@op(
    "GET",
    "/webhooks/<webhook_id>",
    operation_id="getWebhook",
    summary="Read a webhook endpoint (its status and why it was paused)",
    roles=ADMIN,
    response=schemas.Webhook,
    etag=True,
    errors=(404,),
    **WEBHOOKS,
)
def get_webhook(ctx: Context) -> Reply:
    return Reply(ctx.call("webhooks", "get_endpoint", actor=ctx.actor, endpoint_id=_id(ctx)))


@op(
    "PATCH",
    "/webhooks/<webhook_id>",
    operation_id="updateWebhook",
    summary="Change a webhook endpoint",
    roles=ADMIN,
    body=schemas.WebhookChanges,
    response=schemas.Webhook,
    etag=True,
    audit="webhooks.update",
    errors=(400, 404, 412, 428),
    **WEBHOOKS,
)
def update_webhook(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "webhooks",
            "update_endpoint",
            actor=ctx.actor,
            endpoint_id=_id(ctx),
            changes=ctx.body,
            expected_version=ctx.if_match(),
        )
    )


@op(
    "DELETE",
    "/webhooks/<webhook_id>",
    operation_id="deleteWebhook",
    summary="Delete a webhook endpoint and its delivery log",
    roles=ADMIN,
    status=204,
    audit="webhooks.delete",
    errors=(404,),
    **WEBHOOKS,
)
def delete_webhook(ctx: Context) -> Reply:
    ctx.call("webhooks", "delete_endpoint", actor=ctx.actor, endpoint_id=_id(ctx))
    return Reply(status=204)


@op(
    "POST",
    "/webhooks/<webhook_id>/resume",
    operation_id="resumeWebhook",
    summary="Resume a paused webhook endpoint",
    roles=ADMIN,
    response=schemas.Webhook,
    audit="webhooks.resume",
    errors=(404,),
    **WEBHOOKS,
)
def resume_webhook(ctx: Context) -> Reply:
    return Reply(ctx.call("webhooks", "resume_endpoint", actor=ctx.actor, endpoint_id=_id(ctx)))


@op(
    "GET",
    "/webhooks/<webhook_id>/deliveries",
    operation_id="listWebhookDeliveries",
    summary="List a webhook endpoint's deliveries, newest first",
    roles=ADMIN,
    query=schemas.DeliveryQuery,
    response=schemas.DeliveryPage,
    errors=(400, 404),
    **WEBHOOKS,
)
def list_deliveries(ctx: Context) -> Reply:
    return Reply(
        ctx.call("webhooks", "list_deliveries", actor=ctx.actor, endpoint_id=_id(ctx), **ctx.query)
    )


@op(
    "GET",
    "/webhooks/<webhook_id>/deliveries/<delivery_id>",
    operation_id="getWebhookDelivery",
    summary="Read a delivery with every attempt",
    roles=ADMIN,
    response=schemas.DeliveryDetail,
    errors=(404,),
    **WEBHOOKS,
)
def get_delivery(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "webhooks",
            "get_delivery",
            actor=ctx.actor,
            endpoint_id=_id(ctx),
            delivery_id=ctx.path["delivery_id"],
        )
    )


@op(
    "POST",
    "/webhooks/<webhook_id>/deliveries/<delivery_id>/resend",
    operation_id="resendWebhookDelivery",
    summary="Send a delivery again",
    roles=ADMIN,
    response=schemas.Delivery,
    status=202,
    audit="webhooks.resend",
    errors=(404,),
    **WEBHOOKS,
)
def resend_delivery(ctx: Context) -> Reply:
    return Reply(
        ctx.call(
            "webhooks",
            "resend_delivery",
            actor=ctx.actor,
            endpoint_id=_id(ctx),
            delivery_id=ctx.path["delivery_id"],
        ),
        status=202,
    )
