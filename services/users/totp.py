"""TOTP (RFC 6238) second factor and one-time recovery codes.

Codes are 6 digits, 30-second steps, accepted one step early or late (clock drift). A step
that was used once is never accepted again for the same user (replay protection): callers
keep the last used step and pass it in.

The shared secret must be readable to check a code, so it cannot be hashed: it is kept
encrypted at rest (:func:`encrypt_secret`), with AES-256-GCM under a key derived from
``CMS_SECRET_KEY`` (HKDF-SHA256, its own label) and the user's id as associated data, so a
database dump alone does not give anyone's second factor, and a row copied onto another user
does not decrypt. Changing ``CMS_SECRET_KEY`` makes the stored secrets unreadable: users with
two-factor sign-in then need an admin to remove it and enrol again.
"""

from __future__ import annotations

import hmac
import os
import re
import secrets
from datetime import datetime
from functools import lru_cache

import pyotp
import qrcode
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from qrcode.image.svg import SvgPathImage

from services.users.tokens import digest
from shared.config import settings
from shared.errors import ServiceUnavailable

DIGITS = 6
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
#: 16 base32 characters = 80 random bits per recovery code.
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY_GROUPS, _RECOVERY_GROUP_SIZE = 4, 4
_TOTP_PATTERN = re.compile(rf"^\d{{{DIGITS}}}$")


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters: 160 bits


# -- the secret at rest -------------------------------------------------------------------------

#: HKDF ``info``: this key is for TOTP secrets and nothing else.
SECRET_KEY_LABEL = b"cms.users.totp-secret"
#: First byte of a stored secret: the format (version 1: nonce ‖ AES-256-GCM ciphertext+tag).
_FORMAT_V1 = b"\x01"
_NONCE_BYTES = 12


def secret_unreadable(detail: str) -> ServiceUnavailable:
    """A stored secret does not decrypt: ``CMS_SECRET_KEY`` changed, or the row was tampered
    with or moved to another user. The caller gets a 503 with ``code: mfa_unreadable`` (a
    shared error type, so it crosses RPC as itself); an admin can remove the second factor so
    that the user enrols again."""
    return ServiceUnavailable(detail, {"code": "mfa_unreadable"})


@lru_cache(maxsize=4)
def _derive_key(master: str) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SECRET_KEY_LABEL).derive(
        master.encode()
    )


def _aead(master: str | None) -> AESGCM:
    return AESGCM(_derive_key(master if master is not None else settings().secret_key))


def encrypt_secret(secret: str, user_id: str, master: str | None = None) -> bytes:
    """What the database keeps of ``user_id``'s TOTP secret. ``master``: the secret key to
    derive from (default: ``CMS_SECRET_KEY``)."""
    nonce = os.urandom(_NONCE_BYTES)
    sealed = _aead(master).encrypt(nonce, secret.encode("ascii"), str(user_id).encode())
    return _FORMAT_V1 + nonce + sealed


def decrypt_secret(stored: bytes, user_id: str, master: str | None = None) -> str:
    stored = bytes(stored)
    if stored[:1] != _FORMAT_V1:
        raise secret_unreadable(f"the TOTP secret of user {user_id} has an unknown format")
    nonce, sealed = stored[1 : 1 + _NONCE_BYTES], stored[1 + _NONCE_BYTES :]
    try:
        return _aead(master).decrypt(nonce, sealed, str(user_id).encode()).decode("ascii")
    except InvalidTag:
        raise secret_unreadable(
            f"the TOTP secret of user {user_id} does not decrypt (was CMS_SECRET_KEY changed?)"
        ) from None


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """The ``otpauth://`` URI as an SVG QR code (pure Python, no image library)."""
    image = qrcode.make(uri, image_factory=SvgPathImage, box_size=10, border=2)
    return image.to_string(encoding="unicode")


def is_totp_code(code: str) -> bool:
    return bool(_TOTP_PATTERN.match(code.strip().replace(" ", "")))


def matching_step(
    secret: str, code: str, now: datetime, last_used_step: int | None = None
) -> int | None:
    """The time step ``code`` belongs to (within the allowed drift), or None. A step at or
    before ``last_used_step`` does not count: a code works once."""
    code = code.strip().replace(" ", "")
    if not _TOTP_PATTERN.match(code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for offset in (0, -DRIFT_STEPS, DRIFT_STEPS):
        step = current + offset
        if last_used_step is not None and step <= last_used_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    codes = set()
    while len(codes) < count:
        raw = "".join(
            secrets.choice(_RECOVERY_ALPHABET)
            for _ in range(_RECOVERY_GROUPS * _RECOVERY_GROUP_SIZE)
        )
        codes.add(
            "-".join(
                raw[i : i + _RECOVERY_GROUP_SIZE] for i in range(0, len(raw), _RECOVERY_GROUP_SIZE)
            )
        )
    return sorted(codes)


def normalise_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch in _RECOVERY_ALPHABET)


def recovery_code_hash(code: str) -> str:
    """What the database keeps of a recovery code (80 random bits: SHA-256 is enough)."""
    return digest("recovery:" + normalise_recovery_code(code))
