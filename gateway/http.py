"""The gateway's HTTP entrypoint: nameko's ``HttpRequestHandler`` with a request id, a body
size limit, security headers, and problem+json for every error (never a traceback)."""

from __future__ import annotations

import io
import json
import logging
import re
import time
import uuid
from functools import partial

from eventlet.event import Event
from nameko.web.handlers import HttpRequestHandler
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.routing import PathConverter, Rule
from werkzeug.wrappers import Response

from gateway.messages import localise_problem, wants_chinese
from gateway.problems import problem, problem_from_error, www_authenticate
from gateway.server import NoDelayWebServer
from shared.errors import CmsError
from shared.logs import request_id_var

log = logging.getLogger("gateway.access")

MAX_BODY_BYTES = 1024 * 1024
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
        "script-src 'self'; connect-src 'self'; font-src 'self' data:; object-src 'none'; "
        "base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
    ),
}


def request_id_for(request) -> str:
    """The caller's ``X-Request-ID`` when it is sane, else a new one."""
    given = request.headers.get("X-Request-ID", "")
    return given if _REQUEST_ID.match(given) else str(uuid.uuid4())


def _problem_code(response: Response) -> str | None:
    """The ``code`` member of a problem response, if it has one."""
    if response.mimetype != "application/problem+json":
        return None
    try:
        body = json.loads(response.get_data())
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None


class _AnyPath(PathConverter):
    """werkzeug's path converter, but also across line breaks (``%0A`` in a path would
    otherwise match no route and get werkzeug's bare HTML 404)."""

    regex = "[^/](?s:.)*?"


class _Rule(Rule):
    def get_converter(self, variable_name, converter_name, args, kwargs):
        if converter_name == "path":
            return _AnyPath(self.map, *args, **kwargs)
        return super().get_converter(variable_name, converter_name, args, kwargs)


class _CappedBody(io.RawIOBase):
    """A chunked request body that raises 413 past ``limit`` bytes instead of ending there."""

    def __init__(self, source, limit: int):
        self.source, self.left = source, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.source.read(min(len(buffer), self.left + 1))
        if len(data) > self.left:
            raise RequestEntityTooLarge()
        self.left -= len(data)
        buffer[: len(data)] = data
        return len(data)


class ApiEntrypoint(HttpRequestHandler):
    """Use as ``@api("GET", "/path")``. The handler runs in a worker whose context data holds
    the request id, so it travels in the headers of every RPC the handler makes."""

    server = NoDelayWebServer()

    def __init__(self, method, url, max_body: int | None = None, **kwargs):
        self.max_body = max_body
        # errors meant for the caller are answered, not failures of the gateway: nameko logs
        # them as warnings
        kwargs.setdefault("expected_exceptions", (CmsError,))
        super().__init__(method, url, **kwargs)

    def get_url_rule(self):
        return _Rule(self.url, methods=self.method.split(","))

    def handle_request(self, request):
        started = time.monotonic()
        request_id = request_id_for(request)
        token = request_id_var.set(request_id)
        request.shallow = False
        request.request_id = request_id
        try:
            response = self._respond(request, request_id)
        finally:
            request_id_var.reset(token)
        if response.mimetype == "application/problem+json" and wants_chinese(
            request.headers.get("Accept-Language")
        ):
            response.set_data(
                json.dumps(localise_problem(json.loads(response.get_data())), ensure_ascii=False)
            )
        if response.status_code == 401 and "WWW-Authenticate" not in response.headers:
            response.headers["WWW-Authenticate"] = www_authenticate(
                _problem_code(response), request.headers.get("Authorization")
            )
        response.headers.setdefault("Vary", "Accept-Language")
        response.headers["X-Request-ID"] = request_id
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        log.info(
            "%s %s %s %.1fms",
            request.method,
            request.path,
            response.status_code,
            (time.monotonic() - started) * 1000,
            extra={"request_id": request_id},
        )
        return response

    def _respond(self, request, request_id: str) -> Response:
        limit = self.max_body or int(self.container.config.get("MAX_BODY_BYTES", MAX_BODY_BYTES))
        if request.content_length is not None and request.content_length > limit:
            return problem(413, "Request body too large", f"the limit is {limit} bytes")
        request.max_content_length = limit
        if (
            request.content_length is None
            and "chunked" in request.headers.get("Transfer-Encoding", "").lower()
        ):
            # eventlet ends a chunked body itself but does not say so: without this werkzeug
            # reads a chunked body as empty, and with a bare limit it would cut it short
            request.environ["wsgi.input"] = io.BufferedReader(
                _CappedBody(request.environ["wsgi.input"], limit)
            )
            request.environ["wsgi.input_terminated"] = True
            request.max_content_length = limit + 1
        try:
            args, kwargs = self.get_entrypoint_parameters(request)
            self.check_signature(args, kwargs)
            event = Event()
            self.container.spawn_worker(
                self,
                args,
                kwargs,
                context_data={"request_id": request_id, "correlation_id": request_id},
                handle_result=partial(self.handle_result, event),
            )
            return self.response_from_result(event.wait())
        except Exception as exc:  # noqa: BLE001 - every error becomes a problem response
            return self.response_from_exception(exc)

    def response_from_exception(self, exc) -> Response:
        if isinstance(exc, CmsError) and exc.status != 500:
            return problem_from_error(exc)
        if getattr(exc, "code", None) == 413:  # werkzeug's RequestEntityTooLarge
            return problem(413, "Request body too large")
        log.error("unhandled error: %r", exc, exc_info=exc)
        return problem(500, "Internal error", "the error was logged; quote the request id")


api = ApiEntrypoint.decorator
