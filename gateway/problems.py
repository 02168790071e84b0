"""RFC 9457 ``application/problem+json`` responses."""

from __future__ import annotations

import json
from typing import Any

from werkzeug.wrappers import Response

from shared.errors import CmsError

PROBLEM_TYPE_BASE = "https://cms.example/problems/"


def problem(status: int, title: str, detail: str = "", **extra: Any) -> Response:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + title.lower().replace(" ", "-"),
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
    return problem(error.status, error.title, error.detail, **error.extra)


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None):
    return Response(
        json.dumps(body, ensure_ascii=False),
        status=status,
        mimetype="application/json",
        headers=headers,
    )
