"""Who is calling: a bearer access token or an API key, checked by the users service."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import eventlet

from gateway.credentials import CREDENTIALS
from gateway.operations import Operation, Principal, Reply
from shared.errors import Unauthorized
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


#: What the gateway publishes for each write (the users service records it; contract in
#: docs/service-contracts.md).
AUDIT_ENTRY = "audit.entry"


def record_audit(
    operation: Operation,
    principal: Principal,
    request,
    path: dict,
    status: int,
    reply: Reply | None,
    client_ip: str | None,
    publish: Callable[[str, dict], None],
) -> None:
    """One audit entry per write through the gateway, allowed or not.

    ``publish`` is the gateway's event dispatcher: the entry is in RabbitMQ (persistent, the
    publish confirmed) before the caller gets the answer, and the users service records the
    entries in batches from its durable queue (no reply to wait for: docs/performance.md)."""
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
        publish(AUDIT_ENTRY, entry)
    except Exception as exc:  # noqa: BLE001 - whatever the broker said, the entry must not be lost
        # The broker is away for a moment (a restart): the entry is tried again in the
        # background, keyed by entry_id so that it is never recorded twice.
        log.warning("audit entry %s not published yet (%s); retrying", entry["entry_id"], exc)
        eventlet.spawn_n(_retry_audit, publish, entry)


#: Seconds between the background attempts of an audit entry: about 4 minutes in all.
AUDIT_RETRY_DELAYS = (1, 2, 4, 8, 15, 30, 60, 60, 60)


def _retry_audit(publish: Callable[[str, dict], None], entry: dict) -> None:
    for delay in AUDIT_RETRY_DELAYS:
        eventlet.sleep(delay)
        try:
            publish(AUDIT_ENTRY, entry)
        except Exception:  # noqa: BLE001, S112 - tried again after the next delay
            continue
        log.info("audit entry %s published on a later attempt", entry["entry_id"])
        return
    log.error("could not record audit entry %s", entry)
