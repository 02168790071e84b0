"""The OpenAPI 3 document, generated from the operation registry and its marshmallow schemas."""

from __future__ import annotations

import re
from functools import lru_cache

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin

from gateway import schemas
from gateway.operations import Operation, Registry

ERROR_TITLES = {
    400: "Invalid request (per-field messages in `errors`)",
    401: "Not signed in, or the token is expired, tampered with or revoked",
    403: "The caller's role may not do this",
    404: "No such record",
    409: "Conflict with the current state (duplicate, concurrent change)",
    412: "If-Match does not match the record's current version",
    413: "Request body too large",
    415: "The body is not JSON: send `Content-Type: application/json`",
    422: "A business rule forbids this",
    428: "If-Match is required",
    429: "Too many requests; retry after `retry_after` seconds",
    503: "A service did not answer in time",
}


SYSTEM_PATHS = {
    "/healthz": ("healthz", "The gateway process is up"),
    "/readyz": ("readyz", "Every service answers (503 names those that do not)"),
    "/api/openapi.json": ("openapi", "This document"),
}


def openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule)


def _operation_spec(operation: Operation) -> dict:
    spec: dict = {
        "operationId": operation.operation_id,
        "summary": operation.summary,
        "tags": [operation.tag],
        "x-roles": sorted(operation.roles) if operation.roles else "public",
    }
    if operation.public:
        spec["security"] = []
    elif not operation.api_keys:
        spec["security"] = [{"bearerAuth": []}]
    params = [
        {"in": "path", "name": name, "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"<(?:[^:>]+:)?([^>]+)>", operation.rule)
    ]
    if operation.query is not None:
        params.append({"in": "query", "schema": operation.query})
    if 428 in operation.errors:
        params.append(
            {
                "in": "header",
                "name": "If-Match",
                "required": True,
                "schema": {"type": "string"},
                "description": "the ETag of the record as you read it",
            }
        )
    if operation.idempotent:
        params.append(
            {
                "in": "header",
                "name": "Idempotency-Key",
                "required": False,
                "schema": {"type": "string", "minLength": 1, "maxLength": 255},
                "description": "a key of the caller's choosing (a UUID): a retry with the same "
                "key and request within 24 hours gets the first answer and changes nothing; "
                "the same key with another request is 422",
            }
        )
    if params:
        spec["parameters"] = params
    if operation.body is not None:
        spec["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": operation.body}},
        }
    success: dict = {"description": operation.summary}
    if operation.status != 204 and operation.response is not None:
        schema = (
            {"type": "array", "items": operation.response}
            if operation.many
            else (operation.response)
        )
        success["content"] = {"application/json": {"schema": schema}}
    if operation.etag:
        success["headers"] = {"ETag": {"schema": {"type": "string"}}}
    responses: dict = {str(operation.status): success}
    codes = set(operation.errors) | {413, 503}
    if operation.body is not None or operation.query is not None or "<" in operation.rule:
        codes.add(400)  # a body, a query or an id in the path that is not well-formed
    if operation.body is not None:
        codes.add(415)  # a body sent as another media type
    if operation.is_write:
        codes.add(422)  # any change may break a business rule
    if not operation.public:
        codes |= {401, 403}
    for code in sorted(codes):
        responses[str(code)] = {"$ref": f"#/components/responses/Problem{code}"}
    # answered by the HTTP server itself, before the gateway sees the request (no body)
    responses["414"] = {"description": "The URL is longer than 8,192 bytes"}
    spec["responses"] = responses
    return spec


def build_spec(registry: Registry, version: str = "0.1.0") -> dict:
    spec = APISpec(
        title="CMS API",
        version=version,
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Customer management system: JSON API behind the gateway. Errors are "
            "RFC 9457 application/problem+json. Authenticate with a bearer access token "
            "(POST /api/v1/auth/login) or, for other systems, an API key in X-API-Key."
        },
    )
    spec.components.schema("Problem", schema=schemas.Problem)
    spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    spec.components.security_scheme(
        "apiKey", {"type": "apiKey", "in": "header", "name": "X-API-Key"}
    )
    for code, description in ERROR_TITLES.items():
        spec.components.response(
            f"Problem{code}",
            {
                "description": description,
                "content": {"application/problem+json": {"schema": "Problem"}},
            },
        )
    paths: dict[str, dict] = {}
    for operation in registry.operations.values():
        paths.setdefault(openapi_path(operation.rule), {})[operation.method.lower()] = (
            _operation_spec(operation)
        )
    for path, operations in paths.items():
        spec.path(path=path, operations=operations)
    for path, summary in SYSTEM_PATHS.items():
        spec.path(
            path=path,
            operations={
                "get": {
                    "operationId": summary[0],
                    "summary": summary[1],
                    "tags": ["system"],
                    "security": [],
                    "x-roles": "public",
                    "responses": {
                        "200": {"description": summary[1]},
                        "503": {"$ref": "#/components/responses/Problem503"},
                    },
                }
            },
        )
    document = spec.to_dict()
    document["security"] = [{"bearerAuth": []}, {"apiKey": []}]
    return document


@lru_cache(maxsize=1)
def cached_spec() -> dict:
    from gateway import routes  # noqa: F401 - registers the operations
    from gateway.operations import registry

    return build_spec(registry)
