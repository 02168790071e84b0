"""Administration: security settings, API keys for other systems, the audit log."""

from gateway import schemas
from gateway.operations import Context, Reply, op

ADMIN = frozenset({"admin"})


@op(
    "GET",
    "/settings/security",
    operation_id="getSecuritySettings",
    summary="Read the security settings",
    tag="settings",
    roles=ADMIN,
    response=schemas.SecuritySettings,
)
def get_settings(ctx: Context) -> Reply:
    return Reply(ctx.call("users", "get_security_settings"))


@op(
    "PATCH",
    "/settings/security",
    operation_id="updateSecuritySettings",
    summary="Change the security settings",
    tag="settings",
    roles=ADMIN,
    body=schemas.SecuritySettingsChanges,
    response=schemas.SecuritySettings,
    audit="settings.update_security",
    resource="settings",
    errors=(400,),
)
def update_settings(ctx: Context) -> Reply:
    return Reply(
        ctx.call("users", "update_security_settings", actor=ctx.actor, changes=ctx.body),
        resource_id="security",
    )


@op(
    "GET",
    "/api-keys",
    operation_id="listApiKeys",
    summary="List API keys",
    tag="api-keys",
    roles=ADMIN,
    response=schemas.ApiKeyPage,
)
def list_api_keys(ctx: Context) -> Reply:
    return Reply({"items": ctx.call("users", "list_api_keys")})


@op(
    "POST",
    "/api-keys",
    operation_id="createApiKey",
    summary="Issue an API key for another system",
    tag="api-keys",
    roles=ADMIN,
    body=schemas.CreateApiKeyRequest,
    response=schemas.ApiKeyCreated,
    status=201,
    audit="api_keys.create",
    resource="api_key",
    errors=(400,),
)
def create_api_key(ctx: Context) -> Reply:
    key = ctx.call("users", "create_api_key", actor=ctx.actor, **ctx.body)
    return Reply(key, status=201, resource_id=key["id"])


@op(
    "POST",
    "/api-keys/<key_id>/revoke",
    operation_id="revokeApiKey",
    summary="Revoke an API key",
    tag="api-keys",
    roles=ADMIN,
    response=schemas.ApiKey,
    audit="api_keys.revoke",
    resource="api_key",
    errors=(404,),
)
def revoke_api_key(ctx: Context) -> Reply:
    return Reply(ctx.call("users", "revoke_api_key", actor=ctx.actor, key_id=ctx.path["key_id"]))


@op(
    "GET",
    "/audit",
    operation_id="listAudit",
    summary="Query the audit log",
    tag="audit",
    roles=ADMIN,
    query=schemas.AuditQuery,
    response=schemas.AuditPage,
    errors=(400,),
)
def list_audit(ctx: Context) -> Reply:
    query = dict(ctx.query)
    for key in ("since", "until"):
        if key in query:
            query[key] = query[key].isoformat()
    return Reply(ctx.call("users", "list_audit", **query))
