"""TOTP (RFC 6238) second factor and one-time recovery codes.

Codes are 6 digits, 30-second steps, accepted one step early or late (clock drift). A step
that was used once is never accepted again for the same user (replay protection): callers
keep the last used step and pass it in.
"""

from __future__ import annotations

import hmac
import re
import secrets
from datetime import datetime

import pyotp
import qrcode
from qrcode.image.svg import SvgPathImage

from services.users.tokens import digest

DIGITS = 6
DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
#: 16 base32 characters = 80 random bits per recovery code.
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_RECOVERY_GROUPS, _RECOVERY_GROUP_SIZE = 4, 4
_TOTP_PATTERN = re.compile(rf"^\d{{{DIGITS}}}$")


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters: 160 bits


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
