"""RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

import json
import math
from typing import Any

from werkzeug.wrappers import Response

from shared.errors import CmsError

PROBLEM_TYPE_BASE = "https://cms.example/problems/"


def problem_body(status: int, title: str, detail: str = "", **extra: Any) -> dict[str, Any]:
    """An RFC 9457 problem as JSON data: a response's body, or one item's of a bulk answer."""
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + title.lower().replace(" ", "-"),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return body


def error_body(error: CmsError) -> dict[str, Any]:
    """The problem ``error`` answers, as JSON data."""
    return problem_body(error.status, error.title, error.detail, **problem_extra(error))


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    body = problem_body(status, title, detail, **extra)
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        mimetype="application/problem+json",
    )


#: Statuses whose ``retry_after`` member is also said as the ``Retry-After`` header (RFC 9110
#: §10.2.3), which HTTP clients and proxies read without knowing our problem members.
RETRY_AFTER_STATUSES = (429, 503)


def problem_from_error(error: CmsError) -> Response:
    response = problem(error.status, error.title, error.detail, **problem_extra(error))
    retry_after = error.extra.get("retry_after")
    if error.status in RETRY_AFTER_STATUSES and retry_after is not None:
        try:
            response.headers["Retry-After"] = str(max(1, math.ceil(float(retry_after))))
        except (TypeError, ValueError):
            pass
    return response


#: 401 codes that mean the credentials sent were refused (RFC 6750 ``invalid_token``), as
#: opposed to none sent or a wrong password at sign-in.
INVALID_TOKEN_CODES = frozenset(
    {"token_invalid", "token_expired", "session_revoked", "api_key_invalid", "api_key_revoked"}
)


def www_authenticate(code: str | None, authorization: str | None) -> str:
    """The ``WWW-Authenticate`` of a 401 (RFC 9110 §11.6.1 requires one): ``Bearer``, with
    ``error="invalid_token"`` (RFC 6750 §3.1) when a bearer token was sent and refused, or
    ``error="invalid_request"`` when the Authorization header was not a bearer token."""
    challenge = 'Bearer realm="cms"'
    if not authorization or code not in INVALID_TOKEN_CODES:
        return challenge
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return f'{challenge}, error="invalid_request"'
    return f'{challenge}, error="invalid_token"'


def problem_extra(error: CmsError) -> dict[str, Any]:
    """The error's extra members, its field errors in the one shape (:func:`flat_errors`)."""
    extra = dict(error.extra)
    if isinstance(extra.get("errors"), dict):
        extra["errors"] = flat_errors(extra["errors"])
    return extra


def flat_errors(errors: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Field errors in one shape, whichever layer found them: ``{"dotted.path": [messages]}``.
    marshmallow nests them (``{"lines": {"0": {"quantity": […]}}}``) and a service may give a
    path already (``{"lines.0.product_id": […]}``); both become ``lines.0.quantity``. An error
    of a whole nested object (marshmallow's ``_schema``) is named by the object's path."""
    flat: dict[str, Any] = {}
    for key, value in errors.items():
        if not prefix:
            path = str(key)
        elif key == "_schema":
            path = prefix
        else:
            path = f"{prefix}.{key}"
        if isinstance(value, dict):
            for inner, messages in flat_errors(value, path).items():
                _add(flat, inner, messages)
        else:
            _add(flat, path, value)
    return flat


def _add(flat: dict[str, Any], path: str, messages: Any) -> None:
    listed = messages if isinstance(messages, list) else [messages]
    flat[path] = [*flat[path], *listed] if path in flat else listed


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None):
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        mimetype="application/json",
        headers=headers,
    )
