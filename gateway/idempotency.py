"""``Idempotency-Key``: what the gateway hands a service so that a retried write happens once
(the service enforces it with ``shared.idempotency``)."""

from __future__ import annotations

import hashlib
import hmac
import json

from gateway.operations import Context
from shared.config import settings
from shared.errors import BadRequest

IDEMPOTENCY_HEADER = "Idempotency-Key"


def idempotency(ctx: Context, operation: str) -> dict[str, str] | None:
    """``{"key", "hash"}`` when the caller sent an Idempotency-Key (the hash is keyed, so a
    card number in a body never lies in the database even hashed)."""
    key = ctx.request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return None
    key = key.strip()
    if not 1 <= len(key) <= 255:
        raise BadRequest.for_fields({IDEMPOTENCY_HEADER: ["Must be 1 to 255 characters."]})
    material = json.dumps(
        {"operation": operation, "path": ctx.path, "body": ctx.body},
        sort_keys=True,
        default=str,
    )
    secret = hmac.new(settings().secret_key.encode(), b"idempotency", hashlib.sha256).digest()
    return {"key": key, "hash": hmac.new(secret, material.encode(), hashlib.sha256).hexdigest()}
