"""API conventions that hold for every request: problem+json, request ids, size limits,
security headers, the OpenAPI document, and 503 when a service does not answer."""

import json
import socket
import time
import uuid

import eventlet
import pytest
import requests
from nameko.rpc import rpc
from openapi_spec_validator import validate

from gateway.openapi import openapi_path
from gateway.operations import registry
from gateway.service import GatewayService


@pytest.fixture
def gateway(runner_factory, gateway_config):
    config, base = gateway_config
    runner_factory(config, GatewayService).start()
    return base


def _problem(response, status):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == status and body["title"] and body["type"]
    assert "Traceback" not in response.text
    return body


def test_unknown_paths_and_methods_are_problems(gateway):
    _problem(requests.get(f"{gateway}/api/v1/nothing-here", timeout=5), 404)
    # an empty segment (a client that left an id out) is no path of ours, not a redirect
    # to another operation's path (werkzeug merges the slashes by default)
    empty = requests.get(f"{gateway}/api/v1/customers//timeline", timeout=5, allow_redirects=False)
    _problem(empty, 404)
    response = requests.delete(f"{gateway}/api/v1/auth/login", timeout=5)
    _problem(response, 405)
    assert response.headers["Allow"] == "POST"


def test_protected_operations_need_credentials(gateway):
    body = _problem(requests.get(f"{gateway}/api/v1/users", timeout=5), 401)
    assert body["code"] == "authentication_required"
    body = _problem(
        requests.get(f"{gateway}/api/v1/users", headers={"Authorization": "Basic eDp5"}, timeout=5),
        401,
    )
    assert body["code"] == "token_invalid"


def test_bad_bodies_name_the_field(gateway):
    url = f"{gateway}/api/v1/auth/login"
    json_type = {"Content-Type": "application/json"}
    body = _problem(requests.post(url, data=b"{not json", headers=json_type, timeout=5), 400)
    assert body["errors"] == {"body": ["Not valid JSON."]}
    body = _problem(requests.post(url, json={"email": "nope", "password": ""}, timeout=5), 400)
    assert set(body["errors"]) == {"email", "password"}
    body = _problem(
        requests.post(url, json={"email": "a@b.co", "password": "x", "role": "admin"}, timeout=5),
        400,
    )
    assert body["errors"] == {"role": ["Unknown field."]}
    body = _problem(requests.post(url, json=["a", "list"], timeout=5), 400)
    assert "_schema" in body["errors"]


def test_a_body_that_is_not_sent_as_json_is_a_415(gateway):
    url = f"{gateway}/api/v1/auth/login"
    raw = b'{"email": "nope", "password": ""}'
    for content_type in (None, "text/plain", "application/x-www-form-urlencoded", "text/json"):
        headers = {"Content-Type": content_type} if content_type else {}
        body = _problem(requests.post(url, data=raw, headers=headers, timeout=5), 415)
        assert "Content-Type: application/json" in body["detail"]
        assert body["errors"] == {"Content-Type": ["Must be application/json."]}
    # JSON by any of its names is read (and found invalid here), and no body needs no type
    for content_type in (
        "application/json",
        "Application/JSON; charset=UTF-8",
        "application/merge-patch+json",
    ):
        response = requests.post(url, data=raw, headers={"Content-Type": content_type}, timeout=5)
        assert set(_problem(response, 400)["errors"]) == {"email", "password"}
    latin1 = {"Content-Type": "application/json; charset=iso-8859-1"}
    _problem(requests.post(url, data=raw, headers=latin1, timeout=5), 415)


def test_deeply_nested_bodies_are_a_400_naming_the_body(gateway):
    url = f"{gateway}/api/v1/auth/login"
    json_type = {"Content-Type": "application/json"}
    for raw in (b"[" * 3000 + b"]" * 3000, b"[" * 3000, b'{"a":' * 100 + b"1" + b"}" * 100):
        body = _problem(requests.post(url, data=raw, headers=json_type, timeout=5), 400)
        assert body["errors"]["body"] == ["Nested too deeply (at most 32 levels)."]
        assert "nested too deeply" in body["detail"]


def test_oversized_bodies_are_refused_with_413(gateway):
    response = requests.post(
        f"{gateway}/api/v1/auth/login", data=b"x" * (1024 * 1024 + 1), timeout=10
    )
    _problem(response, 413)


def test_every_response_carries_a_request_id_and_security_headers(gateway):
    mine = f"test-{uuid.uuid4()}"
    response = requests.get(f"{gateway}/healthz", headers={"X-Request-ID": mine}, timeout=5)
    assert response.headers["X-Request-ID"] == mine
    generated = requests.get(f"{gateway}/api/v1/users", timeout=5).headers["X-Request-ID"]
    assert uuid.UUID(generated)
    hostile = requests.get(f"{gateway}/healthz", headers={"X-Request-ID": "a b<script>"}, timeout=5)
    assert hostile.headers["X-Request-ID"] != "a b<script>"
    for response in (hostile, requests.get(f"{gateway}/", timeout=5)):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
        assert response.headers["X-Frame-Options"] == "DENY"


def test_openapi_document_is_valid_and_covers_every_operation(gateway):
    document = requests.get(f"{gateway}/api/openapi.json", timeout=5).json()
    validate(document)
    documented = {
        (path, method.upper()): spec
        for path, operations in document["paths"].items()
        for method, spec in operations.items()
    }
    for operation in registry.operations.values():
        spec = documented.get((openapi_path(operation.rule), operation.method))
        assert spec is not None, f"{operation.operation_id} is missing from the OpenAPI document"
        assert spec["operationId"] == operation.operation_id
        assert "responses" in spec and str(operation.status) in spec["responses"]
        if not operation.public:
            assert {"401", "403"} <= set(spec["responses"])
        if operation.body is not None:
            assert "requestBody" in spec
    assert len(documented) == len(registry.operations) + 3  # + healthz, readyz, openapi


class SlowUsers:
    """Stands in for an overloaded users service: answers after the gateway gave up."""

    name = "users"

    @rpc
    def authenticate(self, access_token):
        eventlet.sleep(3)
        return {}


def test_a_service_that_does_not_answer_in_time_is_a_503(runner_factory, gateway_config):
    config, base = gateway_config
    config = dict(config, RPC_TIMEOUT=1)
    runner_factory(config, GatewayService, SlowUsers).start()
    started = time.monotonic()
    response = requests.get(
        f"{base}/api/v1/users", headers={"Authorization": "Bearer abc"}, timeout=10
    )
    body = _problem(response, 503)
    assert "users" in body["detail"]
    assert time.monotonic() - started < 3


def test_a_service_that_is_not_running_is_a_503(runner_factory, gateway_config):
    config, base = gateway_config
    runner_factory(dict(config, RPC_TIMEOUT=1), GatewayService).start()
    response = requests.get(
        f"{base}/api/v1/me", headers={"Authorization": "Bearer abc"}, timeout=10
    )
    assert "users" in _problem(response, 503)["detail"]


def _raw(gateway: str, request_line: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """A request with bytes ``requests`` would percent-encode, sent as they are."""
    host, port = gateway.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            request_line
            + b"\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(body)
            + body
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    head, _, payload = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), payload


def test_a_query_that_is_not_utf8_is_a_400_naming_the_query(gateway):
    """curl sends ``?q=张`` as raw bytes (and the server received them cut short): a 400
    naming the query, not a 500."""
    login = b'{"email": "a@b.co", "password": "x"}'
    for query in (b"q=\xe5\xbc", b"q=\xff", b"q=%E5%BC%A0&x=\xe5"):
        status, payload = _raw(gateway, b"POST /api/v1/auth/login?" + query + b" HTTP/1.1", login)
        body = json.loads(payload)
        assert status == 400 and body["status"] == 400, payload
        assert list(body["errors"]) == ["query"]
