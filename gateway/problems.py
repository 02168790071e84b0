"""RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

from shared.errors import CmsError

PROBLEM_TYPE_BASE = "https://cms.example/problems/"


def problem_type(title: str) -> str:
    """The ``type`` URI of a problem with this title."""
    return PROBLEM_TYPE_BASE + title.lower().replace(" ", "-")


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    body: dict[str, Any] = {
        "type": problem_type(title),
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        mimetype="application/problem+json",
    )


def problem_from_error(error: CmsError) -> Response:
    return problem(error.status, error.title, error.detail, **problem_extra(error))


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
