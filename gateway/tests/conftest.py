"""A gateway on a free port, with whichever services a test asks for, and an HTTP client."""

import random
import socket

import pytest
import requests
from nameko.runners import ServiceRunner

PASSWORD = "Plenty-Long-Passphrase-7"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _config(nameko_config, port):
    # The tests play many clients from one machine: the loopback is a trusted proxy, and each
    # client names its own address in X-Forwarded-For.
    return dict(
        nameko_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}", TRUSTED_PROXIES=["127.0.0.1"]
    )


@pytest.fixture
def gateway_config(nameko_config):
    """``(config, base_url)`` for a gateway listening on a port of its own."""
    port = _free_port()
    return _config(nameko_config, port), f"http://127.0.0.1:{port}"


class Api:
    """A client of the JSON API at one address of its own."""

    def __init__(self, base: str, ip: str | None = None):
        self.base = base
        self.ip = ip or f"198.51.{random.randint(0, 255)}.{random.randint(1, 254)}"

    def client(self) -> "Api":
        """Another client (another address) of the same gateway."""
        return Api(self.base)

    def call(self, method, path, token=None, api_key=None, **kwargs):
        headers = {"X-Forwarded-For": self.ip, **kwargs.pop("headers", {})}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if api_key:
            headers["X-API-Key"] = api_key
        return requests.request(method, self.base + path, headers=headers, timeout=15, **kwargs)

    def login(self, email, password=PASSWORD, **extra):
        response = self.call(
            "POST", "/api/v1/auth/login", json={"email": email, "password": password, **extra}
        )
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture(scope="module")
def api(nameko_config):
    """The gateway and every service, running in this process for a module."""
    from gateway.service import GatewayService
    from services.analytics.service import AnalyticsService
    from services.customers.service import CustomersService
    from services.orders.service import OrdersService
    from services.payments.service import PaymentsService
    from services.users.service import UsersService
    from services.webhooks.service import WebhooksService

    port = _free_port()
    runner = ServiceRunner(_config(nameko_config, port))
    for service in (
        GatewayService,
        UsersService,
        CustomersService,
        OrdersService,
        PaymentsService,
        AnalyticsService,
        WebhooksService,
    ):
        runner.add_service(service)
    runner.start()
    yield Api(f"http://127.0.0.1:{port}")
    runner.stop()


@pytest.fixture(scope="module")
def admin(api, nameko_config):
    """``(email, access token)`` of an admin created through the users service."""
    import uuid

    from nameko.standalone.rpc import ClusterRpcProxy

    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    actor = {"id": "system", "kind": "system", "role": "admin", "ip": None, "request_id": None}
    with ClusterRpcProxy(nameko_config, timeout=15) as cluster:
        cluster.users.create_user(
            actor=actor, email=email, name="Admin", role="admin", password=PASSWORD
        )
    return email, api.login(email)["access_token"]
