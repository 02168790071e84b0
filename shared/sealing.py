"""Crypto-shredding for personal data inside immutable events (DESIGN §2).

Personal fields of an event payload are sealed with AES-256-GCM under a key of the data
subject (a customer, a person) kept in the ``subject_keys`` table of the service's schema.
Destroying that key erases the person from the log without touching an event: every sealed
value of theirs becomes unreadable, and readers get ``ERASED`` instead.

A sealed value in a payload looks like::

    {"$sealed": {"subject": "<id>", "alg": "A256GCM", "nonce": "<b64>", "data": "<b64>"}}
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from marshmallow import ValidationError, fields
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

SEALED = "$sealed"
ALGORITHM = "A256GCM"

#: What an unsealed value reads as once its subject was erased.
ERASED = None


def is_sealed(value: Any) -> bool:
    return isinstance(value, dict) and set(value) == {SEALED}


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def open_sealed_values(vault: Vault, value: Any) -> Any:
    """``value`` with every sealed value in it opened; an erased subject's read
    ``{"$erased": {"subject": id}}``, so a reader can tell erased from empty."""
    if is_sealed(value):
        opened = vault.unseal(value)
        if opened is ERASED:
            return {"$erased": {"subject": str(value[SEALED].get("subject"))}}
        return opened
    if isinstance(value, dict):
        return {key: open_sealed_values(vault, item) for key, item in value.items()}
    if isinstance(value, list):
        return [open_sealed_values(vault, item) for item in value]
    return value


class SubjectErased(LookupError):
    """The subject's key was destroyed."""


class Vault:
    """Seals and unseals values with per-subject keys, inside the caller's transaction."""

    def __init__(self, bind: Session | Connection):
        self.bind = bind
        self._keys: dict[str, bytes | None] = {}

    def _execute(self, statement: str, params: dict):
        return self.bind.execute(text(statement), params)

    def key(self, subject: str, create: bool = False) -> bytes | None:
        """The subject's key; a new one when ``create`` and there is none; None if erased."""
        if subject in self._keys:
            return self._keys[subject]
        row = self._execute(
            "SELECT key, destroyed_at FROM subject_keys WHERE subject_id = :subject",
            {"subject": subject},
        ).first()
        if row is None and create:
            self._execute(
                "INSERT INTO subject_keys (subject_id, key) VALUES (:subject, :key) "
                "ON CONFLICT (subject_id) DO NOTHING",
                {"subject": subject, "key": AESGCM.generate_key(bit_length=256)},
            )
            return self.key(subject)
        key = None if row is None or row.destroyed_at is not None else bytes(row.key)
        self._keys[subject] = key
        return key

    def seal(self, subject: str, value: Any) -> dict[str, Any]:
        key = self.key(subject, create=True)
        if key is None:
            raise SubjectErased(subject)
        nonce = os.urandom(12)
        plaintext = json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()
        data = AESGCM(key).encrypt(nonce, plaintext, subject.encode())
        return {
            SEALED: {"subject": subject, "alg": ALGORITHM, "nonce": _b64(nonce), "data": _b64(data)}
        }

    def unseal(self, value: Any) -> Any:
        """The plain value (values that are not sealed pass through); ERASED when the key is
        gone."""
        if not is_sealed(value):
            return value
        sealed = value[SEALED]
        key = self.key(sealed["subject"])
        if key is None:
            return ERASED
        plaintext = AESGCM(key).decrypt(
            base64.b64decode(sealed["nonce"]),
            base64.b64decode(sealed["data"]),
            sealed["subject"].encode(),
        )
        return json.loads(plaintext)

    def seal_fields(self, subject: str, payload: dict, fields: tuple[str, ...]) -> dict:
        """A copy of ``payload`` with the named fields sealed."""
        return {
            name: self.seal(subject, value) if name in fields and value is not None else value
            for name, value in payload.items()
        }

    def unseal_fields(self, payload: dict) -> dict:
        return {name: self.unseal(value) for name, value in payload.items()}

    def destroy(self, subject: str) -> bool:
        """Erase the subject: their key is overwritten and marked destroyed. True if it
        existed."""
        self._keys[subject] = None
        result = self._execute(
            "UPDATE subject_keys SET key = NULL, destroyed_at = now() "
            "WHERE subject_id = :subject AND destroyed_at IS NULL",
            {"subject": subject},
        )
        return result.rowcount > 0


class SealedField(fields.Field):
    """A marshmallow field for personal data inside an event payload: it accepts only a sealed
    value (``{"$sealed": {"subject", "alg", "nonce", "data"}}``) or null (null is never
    sealed, when ``allow_none``), so a plain value cannot be appended by mistake."""

    def __init__(self, **kwargs: Any):
        kwargs.setdefault("metadata", {}).setdefault(
            "description", "personal data sealed with the data subject's key (crypto-shredding)"
        )
        super().__init__(**kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        inner = value.get(SEALED) if is_sealed(value) else None
        if not isinstance(inner, dict) or set(inner) != {"subject", "alg", "nonce", "data"}:
            raise ValidationError("Personal data must be sealed.")
        if inner["alg"] != ALGORITHM or not all(isinstance(v, str) for v in inner.values()):
            raise ValidationError("Not a sealed value.")
        return {SEALED: dict(inner)}

    def _serialize(self, value, attr, obj, **kwargs):
        return value
