"""Access tokens (JWT, HS256 only), refresh tokens and API keys.

- Access token: a JWT signed with HMAC-SHA256 under a key derived from ``CMS_SECRET_KEY``
  (``HMAC-SHA256(secret_key, "jwt-access")``), so the raw secret key signs nothing. Only HS256
  is accepted when verifying: ``alg: none`` and every other algorithm are refused.
- Refresh token and API key: 256 random bits, URL-safe. The database keeps only their SHA-256
  (plenty for high-entropy secrets: there is nothing to guess).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt

from shared.config import settings
from shared.errors import Unauthorized

ALGORITHM = "HS256"
ISSUER = "cms-users"
ACCESS_TYPE = "access"
API_KEY_PREFIX = "cms_"
#: Characters of an API key shown in lists to recognise it (``cms_`` + 8).
API_KEY_DISPLAY_LENGTH = 12


def access_key(secret_key: str | None = None) -> bytes:
    secret = settings().secret_key if secret_key is None else secret_key
    return hmac.new(secret.encode(), b"jwt-access", hashlib.sha256).digest()


@dataclass(frozen=True)
class AccessClaims:
    user_id: str
    session_id: str
    role: str
    issued_at: datetime
    expires_at: datetime
    token_id: str


def issue_access_token(
    user_id: str, session_id: str, role: str, now: datetime, ttl_seconds: int
) -> str:
    claims = {
        "iss": ISSUER,
        "typ": ACCESS_TYPE,
        "sub": user_id,
        "sid": session_id,
        "role": role,
        "iat": int(now.timestamp()),
        "exp": int((now + timedelta(seconds=ttl_seconds)).timestamp()),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(claims, access_key(), algorithm=ALGORITHM)


def _invalid(detail: str = "invalid access token") -> Unauthorized:
    return Unauthorized(detail, {"code": "token_invalid"})


def decode_access_token(token: str, leeway: int = 0) -> AccessClaims:
    """Verify signature, algorithm, issuer, type and expiry.

    Raises ``Unauthorized`` with code ``token_expired`` for a genuine but expired token and
    ``token_invalid`` for anything else (bad signature, other algorithm, garbage).
    """
    if not isinstance(token, str) or not token:
        raise _invalid()
    try:
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise _invalid("access token algorithm not accepted")
        claims = jwt.decode(
            token,
            access_key(),
            algorithms=[ALGORITHM],
            issuer=ISSUER,
            leeway=leeway,
            options={"require": ["exp", "iat", "sub", "sid", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("access token expired", {"code": "token_expired"}) from None
    except jwt.PyJWTError:
        raise _invalid() from None
    if claims.get("typ") != ACCESS_TYPE:
        raise _invalid()
    try:
        return AccessClaims(
            user_id=str(uuid.UUID(str(claims["sub"]))),
            session_id=str(uuid.UUID(str(claims["sid"]))),
            role=str(claims.get("role", "")),
            issued_at=datetime.fromtimestamp(int(claims["iat"]), tz=UTC),
            expires_at=datetime.fromtimestamp(int(claims["exp"]), tz=UTC),
            token_id=str(claims.get("jti", "")),
        )
    except (ValueError, TypeError):
        raise _invalid() from None


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)


def new_api_key() -> str:
    return API_KEY_PREFIX + secrets.token_urlsafe(32)


def api_key_display_prefix(key: str) -> str:
    return key[:API_KEY_DISPLAY_LENGTH]


def looks_like_api_key(key: object) -> bool:
    return (
        isinstance(key, str)
        and key.startswith(API_KEY_PREFIX)
        and 20 <= len(key) <= 200
        and key[len(API_KEY_PREFIX) :].replace("-", "").replace("_", "").isalnum()
    )


def digest(secret: str) -> str:
    """SHA-256 hex of a high-entropy secret (refresh token, API key, recovery code)."""
    return hashlib.sha256(secret.encode()).hexdigest()
