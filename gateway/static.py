"""Serves the built web UI (gateway/ui/dist): files as they are, index.html for app routes."""

from __future__ import annotations

import mimetypes
from pathlib import Path

from werkzeug.security import safe_join
from werkzeug.wrappers import Response

from gateway.problems import problem

UI_DIST = Path(__file__).resolve().parent / "ui" / "dist"


def serve_ui(path: str, root: Path = UI_DIST) -> Response:
    index = root / "index.html"
    if not index.is_file():
        return problem(
            503, "Web UI not built", "run `make ui` (or `make run`, which builds it) first"
        )
    target = safe_join(str(root), path) if path else str(index)
    if target is None:
        return problem(404, "Not found", "no such file")
    if path and Path(target).is_file():
        mime = mimetypes.guess_type(target)[0] or "application/octet-stream"
        response = Response(Path(target).read_bytes(), mimetype=mime)
        if path.startswith("assets/"):
            response.headers["Cache-Control"] = "public, max-age=31536000, immutable"
        return response
    if path in ("api", "assets") or path.startswith(("assets/", "api/")):
        return problem(404, "Not found", f"no file {path}; the API is under /api/v1")
    if "." in path.rsplit("/", 1)[-1]:
        return problem(404, "Not found", f"no file {path}")
    response = Response(index.read_bytes(), mimetype="text/html")
    response.headers["Cache-Control"] = "no-cache"
    return response
