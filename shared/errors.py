"""Error types that cross service boundaries.

Each carries the HTTP status the gateway answers with. They are registered with nameko's
remote-exception registry, so an error raised in a service arrives at its RPC caller as the
same class (with the same arguments) instead of a generic ``RemoteError``.
"""

from __future__ import annotations

import json
from typing import Any

from nameko.exceptions import registry


class CmsError(Exception):
    """Base of every error a caller is meant to see. ``detail`` is safe to show a user."""

    status = 500
    title = "Internal error"

    def __init__(self, detail: str = "", extra: dict[str, Any] | str | None = None):
        # nameko turns every argument that is not a string into its str() on the way through
        # RPC (numbers, booleans and None included), so ``extra`` travels as a JSON string.
        if isinstance(extra, str):
            extra = json.loads(extra) if extra else {}
        self.detail = detail
        self.extra = dict(extra or {})
        super().__init__(detail, json.dumps(self.extra, ensure_ascii=False, default=str))

    def __str__(self) -> str:
        return self.detail or self.title


class BadRequest(CmsError):
    """Input that does not have the right shape; ``extra['errors']`` maps fields to messages."""

    status = 400
    title = "Invalid request"

    @classmethod
    def for_fields(cls, errors: dict[str, Any], detail: str = "Some fields are invalid"):
        return cls(detail, {"errors": errors})


class Unauthorized(CmsError):
    status = 401
    title = "Authentication required"


class Forbidden(CmsError):
    status = 403
    title = "Forbidden"


class NotFound(CmsError):
    status = 404
    title = "Not found"


class Conflict(CmsError):
    status = 409
    title = "Conflict"


class ConcurrencyError(Conflict):
    """A stream changed since the caller read it (expected version did not match)."""

    title = "Concurrent modification"

    @classmethod
    def for_stream(cls, stream_id: str, expected: int | None, actual: int) -> ConcurrencyError:
        return cls(
            f"stream {stream_id} is at version {actual}, expected {expected}",
            {
                "code": "concurrent_modification",
                "stream_id": stream_id,
                "expected_version": expected,
                "actual_version": actual,
            },
        )


class PreconditionFailed(CmsError):
    status = 412
    title = "Precondition failed"


class PayloadTooLarge(CmsError):
    status = 413
    title = "Request body too large"


class RuleViolation(CmsError):
    """The request is well formed but a business rule forbids it."""

    status = 422
    title = "Unprocessable request"


class TooManyRequests(CmsError):
    status = 429
    title = "Too many requests"


class ServiceUnavailable(CmsError):
    status = 503
    title = "Service unavailable"


class EventSchemaError(CmsError):
    """An event payload does not match its registered schema (a programming error)."""

    status = 500
    title = "Event does not match its schema"


def _register(*classes: type[CmsError]) -> None:
    for cls in classes:
        registry[f"{cls.__module__}.{cls.__name__}"] = cls


_register(
    CmsError,
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    Conflict,
    ConcurrencyError,
    PreconditionFailed,
    PayloadTooLarge,
    RuleViolation,
    TooManyRequests,
    ServiceUnavailable,
    EventSchemaError,
)
