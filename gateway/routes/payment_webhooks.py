"""The public endpoint payment providers post their notifications to. No credentials: the
payments service verifies the provider's signature over the raw body and its timestamp (a bad
signature or one outside the replay window is 401 and changes nothing)."""

from __future__ import annotations

from gateway import payment_schemas as ps
from gateway.operations import PUBLIC, Context, Reply, op
from shared.errors import BadRequest

#: headers a provider signs with (passed on to the payments service, nothing else is)
SIGNATURE_HEADERS = ("Sandbox-Signature",)


@op(
    "POST",
    "/webhooks/sandbox",
    operation_id="receiveSandboxWebhook",
    summary="Receive a webhook of the sandbox payment provider (signed)",
    tag="payments",
    roles=PUBLIC,
    response=ps.WebhookAck,
    errors=(400, 401),
    api_keys=True,
)
def sandbox(ctx: Context) -> Reply:
    body = ctx.request.get_data(cache=True, as_text=True)
    if SIGNATURE_HEADERS[0] not in ctx.request.headers:
        raise BadRequest.for_fields(
            {SIGNATURE_HEADERS[0]: ["Required: the provider signs every webhook."]}
        )
    headers = {
        name: ctx.request.headers[name] for name in SIGNATURE_HEADERS if name in ctx.request.headers
    }
    return Reply(
        ctx.call("payments", "handle_webhook", provider="sandbox", headers=headers, body=body)
    )
