"""Who is calling: a bearer access token or an API key, checked by the users service."""

from __future__ import annotations

import logging

from gateway.operations import Operation, Principal, Reply
from shared.errors import CmsError, Unauthorized

log = logging.getLogger(__name__)


def authenticate(request, rpc, required: bool) -> Principal | None:
    """The caller's principal; None when anonymous. Bad credentials are 401 where the
    operation needs a caller, and ignored on public operations."""
    try:
        return _principal(request, rpc)
    except Unauthorized:
        if required:
            raise
        return None


def _principal(request, rpc) -> Principal | None:
    header = request.headers.get("Authorization", "")
    api_key = request.headers.get("X-API-Key", "")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized(
                "use: Authorization: Bearer <access token>", {"code": "token_invalid"}
            )
        found = rpc.call("users", "authenticate", access_token=token.strip())
        return Principal(
            kind="user",
            id=found["user_id"],
            role=found["role"],
            session_id=found.get("session_id"),
            mfa_setup_required=bool(found.get("mfa_setup_required")),
            language=found.get("language"),
        )
    if api_key:
        found = rpc.call("users", "authenticate_api_key", key=api_key.strip())
        return Principal(kind="api_key", id=found["api_key_id"], role=found["role"])
    return None


def record_audit(
    operation: Operation,
    principal: Principal,
    request,
    path: dict,
    status: int,
    reply: Reply | None,
    client_ip: str | None,
    rpc,
) -> None:
    """One audit entry per write through the gateway, allowed or not."""
    resource_id = (reply.resource_id if reply else None) or next(iter(path.values()), None)
    entry = {
        "actor_id": principal.id,
        "actor_kind": principal.kind,
        "actor_role": principal.role,
        "action": operation.audit,
        "method": request.method,
        "path": request.path,
        "resource_type": operation.resource,
        "resource_id": resource_id,
        "status": status,
        "ip": client_ip,
        "request_id": request.request_id,
    }
    try:
        rpc.call("users", "record_audit", entry=entry)
    except CmsError as exc:
        log.error("could not record audit entry %s: %s", entry, exc)
