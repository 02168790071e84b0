"""How a webhook delivery is signed, and how a receiver checks it.

The signature is HMAC-SHA256, keyed with the endpoint's secret, over ``"<timestamp>.<body>"``
(the Unix time in seconds as sent in ``CMS-Webhook-Timestamp``, a dot, and the exact bytes of
the request body), sent hex-encoded as ``CMS-Webhook-Signature: v1=<hex>``. A receiver
recomputes it over the raw body, compares in constant time, and refuses timestamps too far
from its own clock (replays).
"""

from __future__ import annotations

import hashlib
import hmac
import time

ID_HEADER = "CMS-Webhook-Id"
TIMESTAMP_HEADER = "CMS-Webhook-Timestamp"
SIGNATURE_HEADER = "CMS-Webhook-Signature"
EVENT_TYPE_HEADER = "CMS-Event-Type"
SCHEME = "v1"


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"{SCHEME}={digest}"


def verify(
    secret: str,
    timestamp: str,
    body: bytes,
    signature: str,
    tolerance: int = 300,
    now: float | None = None,
) -> bool:
    """True when ``signature`` (the header's value; several comma-separated ones are allowed
    while a secret is rotated) is valid for this body and the timestamp is fresh."""
    try:
        sent = int(timestamp)
    except (TypeError, ValueError):
        return False
    if abs((time.time() if now is None else now) - sent) > tolerance:
        return False
    expected = sign(secret, sent, body)
    return any(
        hmac.compare_digest(expected, candidate.strip()) for candidate in signature.split(",")
    )
