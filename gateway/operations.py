"""The API's operations, declared once: route, roles, request and response schemas.

The router, the permission checks, the audit trail and the OpenAPI document are all derived
from these declarations, so none of them can drift from the others.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_to_bytes

from marshmallow import Schema, ValidationError
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from gateway.credentials import CREDENTIALS
from gateway.problems import json_response, problem
from gateway.ratelimit import LIMITER as API_KEY_LIMITER
from shared import jsontext
from shared.errors import (
    BadRequest,
    CmsError,
    ConcurrencyError,
    Forbidden,
    PreconditionFailed,
    Unauthorized,
)
from shared.schemas import schema_instance

ROLES = ("admin", "manager", "sales", "analyst")
ANY_ROLE = frozenset(ROLES)
PUBLIC = None  # an operation anyone may call, with or without credentials

API_PREFIX = "/api/v1"


@dataclass(frozen=True)
class Principal:
    """Who is calling: a signed-in user or an API key, with one role."""

    kind: str  # "user" | "api_key"
    id: str
    role: str
    session_id: str | None = None
    mfa_setup_required: bool = False
    language: str | None = None


@dataclass
class Reply:
    body: Any = None
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    resource_id: str | None = None


@dataclass
class Context:
    """Everything a handler needs about the request it serves."""

    request: Request
    rpc: Any
    principal: Principal | None
    path: dict[str, str]
    body: dict[str, Any]
    query: dict[str, Any]
    client_ip: str | None

    @property
    def request_id(self) -> str:
        return self.request.request_id

    @property
    def actor(self) -> dict[str, Any]:
        """The ``actor`` argument of every mutating RPC."""
        principal = self.principal
        return {
            "id": principal.id if principal else None,
            "kind": principal.kind if principal else "anonymous",
            "role": principal.role if principal else None,
            "session_id": principal.session_id if principal else None,
            "ip": self.client_ip,
            "request_id": self.request_id,
        }

    def if_match(self) -> int:
        """The stream version in ``If-Match`` (required on edits).

        ``If-Match: *`` (RFC 9110: "any current representation") is a 428: every edit here
        is checked against the version the client read, and ``*`` would let a client
        overwrite a change it never saw, the lost update the header exists to prevent."""
        raw = (self.request.headers.get("If-Match") or "").strip()
        if not raw:
            raise PreconditionRequired("send If-Match with the ETag you read")
        if raw == "*":
            raise PreconditionRequired(
                "If-Match: * does not protect against lost updates here: send the ETag you "
                'read (the ETag header of a GET of the record, like "3")',
                {"code": "etag_required", "errors": {"If-Match": [ETAG_NEEDED]}},
            )
        value = raw.removeprefix("W/").strip('"')
        if not _VERSION.match(value):
            raise BadRequest.for_fields({"If-Match": ["Must be an ETag from this API."]})
        return int(value)

    def call(self, service: str, method: str, /, **kwargs: Any) -> Any:
        try:
            return self.rpc.call(service, method, **kwargs)
        except BadRequest as exc:
            raise _as_body_errors(exc, kwargs) from exc
        except ConcurrencyError as exc:
            if "expected_version" in kwargs and kwargs["expected_version"] is not None:
                raise PreconditionFailed(
                    "the record changed since you read it; reload and try again", exc.extra
                ) from exc
            raise
        finally:  # also after a failure or a time-out: the change may have been made
            CREDENTIALS.after_call(service, method)


def _as_body_errors(exc: BadRequest, kwargs: dict[str, Any]) -> BadRequest:
    """A service names the fields of an RPC argument that carried the request body (e.g.
    ``{"changes": {"phone": [...]}}``); the client sent those fields at the top level."""
    errors = exc.extra.get("errors")
    if isinstance(errors, dict):
        flat: dict[str, Any] = {}
        for key, messages in errors.items():
            if isinstance(kwargs.get(key), dict) and isinstance(messages, dict):
                flat.update(messages)
            else:
                flat[key] = messages
        if flat != errors:
            return BadRequest(exc.detail, {**exc.extra, "errors": flat})
    return exc


#: An ETag of this API: a stream version, in ASCII digits ("²" is a digit to str.isdigit)
_VERSION = re.compile(r"^[0-9]{1,18}$")
ETAG_NEEDED = 'Must be the ETag you read, like "3"; * is not accepted.'


class PreconditionRequired(CmsError):
    status = 428
    title = "Precondition required"


class UnsupportedMediaType(CmsError):
    status = 415
    title = "Unsupported media type"


Handler = Callable[[Context], Reply]


@dataclass(frozen=True)
class Operation:
    method: str
    rule: str
    operation_id: str
    summary: str
    tag: str
    roles: frozenset[str] | None
    handler: Handler
    body: type[Schema] | None = None
    query: type[Schema] | None = None
    response: type[Schema] | None = None
    many: bool = False
    status: int = 200
    api_keys: bool = True
    mfa_setup: bool = False
    audit: str | None = None
    resource: str | None = None
    etag: bool = False
    errors: tuple[int, ...] = ()
    idempotent: bool = False  # takes an Idempotency-Key (gateway.idempotency)
    raw_body: bool = False  # reads the request's bytes itself (an upload), not JSON

    @property
    def is_write(self) -> bool:
        return self.method != "GET"

    @property
    def public(self) -> bool:
        return self.roles is PUBLIC


class Registry:
    """All operations of the API; ``op(...)`` declares one."""

    def __init__(self):
        self.operations: dict[str, Operation] = {}

    def op(
        self,
        method: str,
        rule: str,
        *,
        operation_id: str,
        summary: str,
        tag: str,
        roles: frozenset[str] | None,
        **options: Any,
    ) -> Callable[[Handler], Handler]:
        if roles is not PUBLIC and not (roles and roles <= ANY_ROLE):
            raise ValueError(f"{operation_id}: roles must be PUBLIC or a subset of {ROLES}")

        def register(handler: Handler) -> Handler:
            if operation_id in self.operations:
                raise ValueError(f"operation {operation_id} declared twice")
            self.operations[operation_id] = Operation(
                method,
                API_PREFIX + rule,
                operation_id,
                summary,
                tag,
                roles,
                handler,
                **options,
            )
            return handler

        return register

    def url_map(self) -> Map:
        return Map(
            [
                Rule(operation.rule, methods=[operation.method], endpoint=operation)
                for operation in self.operations.values()
            ],
            strict_slashes=False,
            # "/customers//timeline" (an id left out) must not become "/customers/timeline"
            merge_slashes=False,
        )


registry = Registry()
op = registry.op


def _normalised(value: Any, path: tuple, errors: dict) -> Any:
    """``value`` with every time in UTC; a string holding a NUL character (which no
    PostgreSQL text can hold) is an error of its field, nested as marshmallow nests them."""
    if isinstance(value, str):
        if "\x00" in value:
            node = errors
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node.setdefault(path[-1] if path else "_schema", []).append(
                "Must not contain NUL characters."
            )
        return value
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value
    if isinstance(value, dict):
        return {key: _normalised(item, (*path, key), errors) for key, item in value.items()}
    if isinstance(value, list):
        return [_normalised(item, (*path, i), errors) for i, item in enumerate(value)]
    return value


def load(schema: type[Schema] | None, data: Any, where: str) -> dict[str, Any]:
    """``data`` validated by ``schema``: a 400 naming each bad field, times in UTC."""
    if schema is None:
        return {}
    try:
        loaded = schema_instance(schema).load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, dict) else {where: exc.messages}
        raise BadRequest.for_fields(messages, f"the {where} is invalid") from exc
    errors: dict = {}
    loaded = _normalised(loaded, (), errors)
    if errors:
        raise BadRequest.for_fields(errors, f"the {where} is invalid")
    return loaded


#: ``application/json`` and its structured-syntax relatives (``application/merge-patch+json``)
_JSON_MEDIA_TYPE = re.compile(r"^application/(?:[a-z0-9!#$&^_.-]+\+)?json$")


def _is_json(request: Request) -> bool:
    """Whether the request says its body is JSON (in UTF-8, the only charset JSON has)."""
    charset = request.mimetype_params.get("charset", "utf-8").lower()
    return bool(_JSON_MEDIA_TYPE.match(request.mimetype)) and charset in ("utf-8", "utf8")


def parse_json_body(request: Request) -> Any:
    """The JSON body of ``request`` (``{}`` without one); a body of another media type is a
    415, whatever it holds: a form post or ``text/plain`` is never read as JSON. A string (or
    key) that is not Unicode text (a lone surrogate, ``"\\ud800"``, which JSON's escapes can
    spell but UTF-8 cannot hold) is a 400 naming its field."""
    raw = request.get_data(cache=True)
    if not raw.strip():
        return {}
    if not _is_json(request):
        sent = request.headers.get("Content-Type") or "none"
        raise UnsupportedMediaType(
            f"the body must be JSON: send Content-Type: application/json (got {sent})",
            {"errors": {"Content-Type": ["Must be application/json."]}},
        )
    try:
        value = jsontext.loads(raw)
    except jsontext.TooDeep as exc:
        raise BadRequest.for_fields(
            {"body": [f"Nested too deeply (at most {jsontext.MAX_DEPTH} levels)."]},
            "the body is nested too deeply",
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest.for_fields({"body": ["Not valid JSON."]}, "the body is not JSON") from exc
    errors: dict[str, list[str]] = {}
    if _SURROGATE_ESCAPE.search(raw):  # only an escape can spell a surrogate: else no walk
        _find_unencodable(value, "", errors)
    if errors:
        raise BadRequest.for_fields(errors, "the body holds text that is not valid Unicode")
    return value


NOT_UNICODE = "Must be valid Unicode text (a lone surrogate such as \\ud800 is not)."
#: JSON's spelling of a UTF-16 surrogate (U+D800-U+DFFF), paired or not: raw UTF-8 bytes
#: cannot hold one, so a body without this escape needs no walk for them
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _printable(text: str) -> str:
    """``text`` with whatever UTF-8 cannot hold spelt as ``\\udxxx``, to name a bad key."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _find_unencodable(value: Any, path: str, errors: dict[str, list[str]]) -> None:
    """Each string (value or key) in ``value`` that UTF-8 cannot encode, by its dotted path
    (the body nests at most ``jsontext.MAX_DEPTH`` levels, so recursing is safe)."""
    if isinstance(value, str):
        if not _encodable(value):
            errors.setdefault(path or "body", []).append(NOT_UNICODE)
    elif isinstance(value, dict):
        for key, item in value.items():
            inner = f"{path}.{_printable(key)}" if path else _printable(key)
            if not _encodable(key):
                errors.setdefault(inner, []).append(NOT_UNICODE)
            _find_unencodable(item, inner, errors)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _find_unencodable(item, f"{path}.{index}" if path else str(index), errors)


def refuse_any_body(request: Request) -> None:
    """For an operation that takes no body: none, an empty one or ``{}`` is fine; any field is
    a 400 naming it (a field sent there would otherwise be ignored: ``{"amount": 5000}`` on a
    capture captured the whole payment)."""
    value = parse_json_body(request)
    if value is None or value == {}:
        return
    if isinstance(value, dict):
        raise BadRequest.for_fields(
            {key: ["Unknown field."] for key in value}, "this operation takes no body"
        )
    raise BadRequest.for_fields({"body": ["This operation takes no body."]})


#: What an upload (an import's file as the body) may be declared as: a CSV under any of its
#: usual names (Windows with Excel installed calls a .csv ``application/vnd.ms-excel``), an
#: XLSX workbook, or bytes of no stated kind (the web UI's fallback when the browser does not
#: know the file's type; a request without Content-Type is read as such, RFC 9110 §8.3).
UPLOAD_TYPES = frozenset(
    {
        "text/csv",
        "text/plain",
        "text/comma-separated-values",
        "application/csv",
        "application/vnd.ms-excel",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/octet-stream",
    }
)


def require_upload_type(request: Request) -> None:
    """A 415 naming Content-Type unless the body is declared as a file of ours: JSON, a form
    (curl's ``--data-binary`` alone sends ``application/x-www-form-urlencoded``) or a
    multipart form is not a CSV or XLSX file and is never imported as one."""
    if not request.mimetype or request.mimetype in UPLOAD_TYPES:
        return
    sent = request.headers.get("Content-Type")
    raise UnsupportedMediaType(
        f"send the file itself as the body with its type: Content-Type: text/csv, or "
        f"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet for XLSX "
        f"(got {sent})",
        {"errors": {"Content-Type": ["Must be text/csv or the XLSX type."]}},
    )


_QUERY_NOT_UTF8 = "Must be UTF-8, percent-encoded (%E5%BC%A0 for 张)."


def query_dict(request: Request) -> dict[str, Any]:
    """The query's parameters, the last of each name. A query that is not UTF-8 is a 400:
    raw bytes (a client that did not percent-encode, or cut a character in two) name
    ``query``; a percent-encoded value that is not UTF-8 (``?q=%ff``, or a surrogate's
    ``%ED%A0%80``) names its parameter (werkzeug would keep it as the text ``%ff``)."""
    raw = request.query_string
    if not raw.isascii():
        raise BadRequest.for_fields({"query": [_QUERY_NOT_UTF8]}, "the query string is not UTF-8")
    params: dict[str, Any] = {}
    errors: dict[str, list[str]] = {}
    for part in raw.split(b"&"):
        if not part:
            continue
        name, _, value = part.replace(b"+", b" ").partition(b"=")
        try:
            key = unquote_to_bytes(name).decode("utf-8")
        except UnicodeDecodeError:
            errors["query"] = [_QUERY_NOT_UTF8]
            continue
        try:
            params[key] = unquote_to_bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            errors[key] = [_QUERY_NOT_UTF8]
    if errors:
        raise BadRequest.for_fields(errors, "the query string is not UTF-8")
    return params


def rate_limited(retry_after: int) -> Response:
    response = problem(
        429,
        "Too many requests",
        "this API key made too many requests; wait and try again",
        code="rate_limited",
        retry_after=retry_after,
    )
    response.headers["Retry-After"] = str(retry_after)
    return response


class Router:
    """Matches a request to its operation, authenticates, authorises, validates, calls the
    handler, audits writes, and shapes the response."""

    def __init__(self, registry: Registry, authenticate, audit):
        self.registry = registry
        self.url_map = registry.url_map()
        self.authenticate = authenticate
        self.audit = audit

    def dispatch(self, request: Request, rpc, client_ip: str | None, publish=None) -> Response:
        """``publish``: the gateway's event dispatcher, which the audit trail publishes to."""
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            operation, path = adapter.match()
        except NotFound:
            return problem(404, "Not found", f"no operation at {request.path}")
        except MethodNotAllowed as exc:
            response = problem(405, "Method not allowed", f"{request.method} {request.path}")
            response.headers["Allow"] = ", ".join(sorted(exc.valid_methods or ()))
            return response
        principal = None
        status = 500
        reply = None
        try:
            principal = self.authenticate(request, rpc, required=not operation.public)
            if principal is not None and principal.kind == "api_key":
                retry_after = API_KEY_LIMITER.hit(principal.id)
                if retry_after:
                    status = 429
                    return rate_limited(retry_after)
            self.authorise(operation, principal)
            context = Context(
                request=request,
                rpc=rpc,
                principal=principal,
                path=path,
                body=self.body(operation, request),
                query=load(operation.query, query_dict(request), "query"),
                client_ip=client_ip,
            )
            reply = operation.handler(context)
            status = reply.status
            return self.respond(operation, reply)
        except CmsError as exc:
            status = exc.status
            raise
        finally:
            if operation.is_write and principal is not None and operation.audit:
                self.audit(operation, principal, request, path, status, reply, client_ip, publish)

    @staticmethod
    def body(operation: Operation, request: Request) -> dict[str, Any]:
        """The validated body; for an operation without one, a check that none was sent. An
        upload reads its own bytes, and so does a public operation without a body schema (the
        signed provider webhook, whose body is the provider's: gateway/routes/
        payment_webhooks.py)."""
        if operation.body is not None:
            return load(operation.body, parse_json_body(request), "body")
        if not (operation.raw_body or operation.public):
            refuse_any_body(request)
        return {}

    @staticmethod
    def authorise(operation: Operation, principal: Principal | None) -> None:
        if operation.public:
            return
        if principal is None:
            raise Unauthorized("sign in first", {"code": "authentication_required"})
        if principal.kind == "api_key" and not operation.api_keys:
            raise Forbidden("API keys cannot use this operation", {"code": "user_only"})
        if principal.mfa_setup_required and not operation.mfa_setup:
            raise Forbidden(
                "your role requires two-factor sign-in: enrol an authenticator first",
                {"code": "mfa_setup_required"},
            )
        if principal.role not in operation.roles:
            allowed = ", ".join(role for role in ROLES if role in operation.roles)
            raise Forbidden(
                f"the {principal.role} role may not use {operation.operation_id} "
                f"({operation.summary}); allowed: {allowed}",
                {"code": "role_forbidden", "allowed_roles": allowed.split(", ")},
            )

    @staticmethod
    def respond(operation: Operation, reply: Reply) -> Response:
        if isinstance(reply.body, Response):  # a handler that streams its own body (CSV)
            reply.body.headers.extend(reply.headers)
            return reply.body
        if reply.status == 204 or reply.body is None:
            return Response(
                status=204 if reply.status in (200, 204) else reply.status, headers=reply.headers
            )
        body = reply.body
        if operation.response is not None:
            body = schema_instance(operation.response, operation.many).dump(body)
        headers = dict(reply.headers)
        if operation.etag and isinstance(reply.body, dict) and "version" in reply.body:
            headers["ETag"] = f'"{reply.body["version"]}"'
        return json_response(body, status=reply.status, headers=headers)
