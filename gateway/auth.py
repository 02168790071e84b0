"""Who is calling: a bearer access token or an API key, checked by the users service."""

from __future__ import annotations

import logging
import uuid

import eventlet

from gateway.credentials import CREDENTIALS
from gateway.operations import Operation, Principal, Reply
from shared.errors import CmsError, Unauthorized
from shared.events import isoformat, utcnow

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
        token = token.strip()
        found = CREDENTIALS.lookup(
            "token", token, lambda: rpc.call("users", "authenticate", access_token=token)
        )
        return Principal(
            kind="user",
            id=found["user_id"],
            role=found["role"],
            session_id=found.get("session_id"),
            mfa_setup_required=bool(found.get("mfa_setup_required")),
            language=found.get("language"),
        )
    if api_key:
        api_key = api_key.strip()
        found = CREDENTIALS.lookup(
            "api_key", api_key, lambda: rpc.call("users", "authenticate_api_key", key=api_key)
        )
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
        "at": isoformat(utcnow()),
        "entry_id": str(uuid.uuid4()),
    }
    try:
        reply = rpc.call_async("users", "record_audit", entry=entry)
    except CmsError as exc:
        _audit_later(rpc, entry, exc)
        return
    # The request is in RabbitMQ (published with a confirm, persistent) before the caller
    # gets the answer; the users service's commit of it is awaited after the answer, so no
    # write waits for a second round trip (docs/performance.md).
    eventlet.spawn_n(_await_audit, rpc, reply, entry)


def _audit_later(rpc, entry: dict, exc: Exception) -> None:
    """The users service or the broker is away for a moment (a restart): the entry is tried
    again in the background, keyed by entry_id so that it is never written twice."""
    log.warning("audit entry %s not recorded yet (%s); retrying", entry["entry_id"], exc)
    eventlet.spawn_n(_retry_audit, rpc, entry)


def _await_audit(rpc, reply, entry: dict) -> None:
    try:
        rpc.wait(reply, "users", "record_audit")
    except CmsError as exc:
        _audit_later(rpc, entry, exc)
    except Exception:
        log.exception("the users service refused audit entry %s", entry["entry_id"])


#: Seconds between the background attempts of an audit entry: about 4 minutes in all.
AUDIT_RETRY_DELAYS = (1, 2, 4, 8, 15, 30, 60, 60, 60)


def _retry_audit(rpc, entry: dict) -> None:
    for delay in AUDIT_RETRY_DELAYS:
        eventlet.sleep(delay)
        try:
            rpc.call("users", "record_audit", entry=entry)
        except CmsError:
            continue
        log.info("audit entry %s recorded on a later attempt", entry["entry_id"])
        return
    log.error("could not record audit entry %s", entry)
