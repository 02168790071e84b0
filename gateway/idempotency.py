"""``Idempotency-Key``: what the gateway hands a service so that a retried write happens once
(the service enforces it with ``shared.idempotency``)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from gateway.operations import Context
from shared.config import settings
from shared.errors import BadRequest

IDEMPOTENCY_HEADER = "Idempotency-Key"


def _key(ctx: Context) -> str | None:
    key = ctx.request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 255:
        raise BadRequest.for_fields({IDEMPOTENCY_HEADER: ["Must be 1 to 255 characters."]})
    return key


def _hash(request: dict[str, Any]) -> str:
    """The request's fingerprint, keyed, so a card number in a body never lies in the
    database even hashed."""
    material = json.dumps(request, sort_keys=True, default=str)
    secret = hmac.new(settings().secret_key.encode(), b"idempotency", hashlib.sha256).digest()
    return hmac.new(secret, material.encode(), hashlib.sha256).hexdigest()


def idempotency(ctx: Context, operation: str) -> dict[str, str] | None:
    """``{"key", "hash"}`` when the caller sent an Idempotency-Key."""
    key = _key(ctx)
    if key is None:
        return None
    return {"key": key, "hash": _hash({"operation": operation, "path": ctx.path, "body": ctx.body})}


def item_idempotency(ctx: Context, operation: str, index: int, item: Any) -> dict[str, str] | None:
    """The key of item ``index`` of a bulk request sent with an Idempotency-Key: the same
    request retried does each item once (the items already done answer as they did); the key
    used with other items is refused item by item (``idempotency_key_reused``)."""
    key = _key(ctx)
    if key is None:
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()
    return {
        "key": f"{operation}#{index}#{digest}",
        "hash": _hash({"operation": operation, "index": index, "item": item}),
    }
