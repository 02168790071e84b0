"""nameko HTTP entrypoints of the gateway."""

from __future__ import annotations

from nameko.web.handlers import http

from gateway.problems import json_response, problem
from shared.config import SERVICES
from shared.rpc import Rpc

READINESS_TIMEOUT = 2.0


class GatewayService:
    """Health and readiness of the whole system."""

    name = "gateway"
    rpc = Rpc()

    @http("GET", "/healthz")
    def healthz(self, request):
        """The gateway process is up."""
        return json_response({"status": "ok"})

    @http("GET", "/readyz")
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
