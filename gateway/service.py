"""nameko HTTP entrypoints of the gateway: the JSON API, its OpenAPI document, health, and
the web UI."""

from __future__ import annotations

from nameko.dependency_providers import Config
from nameko.events import EventDispatcher

from gateway import routes  # noqa: F401 - registers the operations
from gateway.auth import authenticate, record_audit
from gateway.clients import client_ip
from gateway.http import api
from gateway.openapi import cached_spec
from gateway.operations import Router, registry
from gateway.problems import json_response, problem
from gateway.routes.customer_imports import IMPORT_MAX_BYTES
from gateway.static import serve_ui
from shared.config import SERVICES
from shared.context import RequestContext
from shared.rpc import Rpc

READINESS_TIMEOUT = 2.0
UI_METHODS = "GET,POST,PUT,PATCH,DELETE,OPTIONS"
ROUTER = Router(registry, authenticate, record_audit)


class GatewayService:
    """The one HTTP entry point."""

    name = "gateway"
    rpc = Rpc()
    context = RequestContext()
    config = Config()
    publish = EventDispatcher()  # the audit trail's entries (gateway.auth.record_audit)

    @api("GET,POST,PUT,PATCH,DELETE", "/api/v1/<path:path>")
    def api_v1(self, request, path):
        """Every operation of the JSON API (see gateway/routes)."""
        address = client_ip(
            request.remote_addr,
            request.headers.get("X-Forwarded-For"),
            self.config.get("TRUSTED_PROXIES") or (),
        )
        return ROUTER.dispatch(request, self.rpc, address, self.publish)

    @api("POST", "/api/v1/customers/imports", max_body=IMPORT_MAX_BYTES)
    def customer_import(self, request):
        """The import upload: the same operation as any other, with a larger body limit."""
        return self.api_v1(request, "customers/imports")

    @api("GET", "/api/openapi.json")
    def openapi(self, request):
        return json_response(cached_spec())

    @api("GET", "/healthz")
    def healthz(self, request):
        """The gateway process is up."""
        return json_response({"status": "ok"})

    @api("GET", "/readyz")
    def readyz(self, request):
        """Ready only when every service answers an RPC ping in time."""
        answers = self.rpc.ping_all(SERVICES, timeout=READINESS_TIMEOUT)
        services = {
            name: (
                {"status": "ok", "last_position": answer.get("last_position")}
                if isinstance(answer, dict)
                else {"status": "unavailable", "error": str(answer)}
            )
            for name, answer in answers.items()
        }
        missing = sorted(name for name, state in services.items() if state["status"] != "ok")
        if missing:
            return problem(
                503,
                "Service unavailable",
                f"not answering: {', '.join(missing)}",
                missing=missing,
                services=services,
            )
        return json_response({"status": "ready", "services": services})

    @api(UI_METHODS, "/")
    def ui_index(self, request):
        return self.ui(request, "")

    @api(UI_METHODS, "/<path:path>")
    def ui(self, request, path):
        """The web UI's files, and its index for every app route. Other methods are a 405
        problem with the security headers (werkzeug's own 405 page would lack them)."""
        if request.method not in ("GET", "HEAD"):
            response = problem(405, "Method not allowed", f"{request.method} /{path}")
            response.headers["Allow"] = "GET, HEAD"
            return response
        return serve_ui(path)
