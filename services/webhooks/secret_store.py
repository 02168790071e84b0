"""Endpoint signing secrets at rest: AES-256-GCM under a key derived from ``CMS_SECRET_KEY``
(HKDF-SHA256, a label of its own), the endpoint's id bound in as associated data, so a row
copied to another endpoint or a stolen database dump does not give the secrets away."""

from __future__ import annotations

import base64
import os
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.config import settings
from shared.errors import ServiceUnavailable

LABEL = b"cms.webhooks.endpoint-secret"
PREFIX = "v1:"


@lru_cache(maxsize=4)
def _key(master: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=LABEL).derive(master.encode())


def seal(secret: str, endpoint_id: str, master: str | None = None) -> str:
    nonce = os.urandom(12)
    data = AESGCM(_key(master or settings().secret_key)).encrypt(
        nonce, secret.encode(), str(endpoint_id).encode()
    )
    return PREFIX + base64.b64encode(nonce + data).decode("ascii")


def open_(stored: str, endpoint_id: str, master: str | None = None) -> str:
    if not stored.startswith(PREFIX):
        raise ServiceUnavailable("a webhook secret has an unknown format", {"code": "secret"})
    raw = base64.b64decode(stored[len(PREFIX) :])
    try:
        return (
            AESGCM(_key(master or settings().secret_key))
            .decrypt(raw[:12], raw[12:], str(endpoint_id).encode())
            .decode()
        )
    except InvalidTag:
        raise ServiceUnavailable(
            "a webhook secret does not decrypt (was CMS_SECRET_KEY changed?)",
            {"code": "secret"},
        ) from None
