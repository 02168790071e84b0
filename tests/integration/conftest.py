"""The whole system in this process (gateway, every service, the webhooks service with short
retry delays and plain http to the loopback allowed), for the integration tests."""

import uuid

import pytest
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import ClusterRpcProxy

from gateway.tests.conftest import PASSWORD, Api, _config, _free_port

WEBHOOK_CONFIG = {
    "WEBHOOK_BACKOFF_BASE": 0.05,
    "WEBHOOK_BACKOFF_MAX": 0.4,
    "WEBHOOK_POLL_INTERVAL": 0.1,
    "WEBHOOK_ALLOW_HTTP_LOOPBACK": True,
    "WEBHOOK_TIMEOUT": 5,
}


def _service_classes():
    from gateway.service import GatewayService
    from services.analytics.service import AnalyticsService
    from services.customers.service import CustomersService
    from services.orders.service import OrdersService
    from services.payments.service import PaymentsService
    from services.users.service import UsersService
    from services.webhooks.service import WebhooksService

    return (
        GatewayService,
        UsersService,
        CustomersService,
        OrdersService,
        PaymentsService,
        AnalyticsService,
        WebhooksService,
    )


@pytest.fixture(scope="module")
def stack(nameko_config):
    """``Api`` of a gateway in front of every service, running for a module."""
    port = _free_port()
    config = dict(_config(nameko_config, port), **WEBHOOK_CONFIG)
    runner = ServiceRunner(config)
    for service in _service_classes():
        runner.add_service(service)
    runner.start()
    api = Api(f"http://127.0.0.1:{port}")
    api.config = config
    yield api
    runner.stop()


def _token(stack, nameko_config, role: str) -> str:
    email = f"{role}-{uuid.uuid4().hex[:8]}@example.com"
    actor = {"id": "system", "kind": "system", "role": "admin", "ip": None, "request_id": None}
    with ClusterRpcProxy(nameko_config, timeout=15) as cluster:
        cluster.users.create_user(
            actor=actor, email=email, name=role.title(), role=role, password=PASSWORD
        )
    return stack.login(email)["access_token"]


@pytest.fixture(scope="module")
def admin_token(stack, nameko_config):
    return _token(stack, nameko_config, "admin")


@pytest.fixture(scope="module")
def analyst_token(stack, nameko_config):
    """An analyst's: the feed keeps personal data sealed for them, as the bus carries it."""
    return _token(stack, nameko_config, "analyst")


def read_feed(api, token, service, after=0, limit=1000, types=None):
    """Every event of ``service`` after ``after`` through the HTTP feed, page by page."""
    items = []
    while True:
        params = {"after": after, "limit": limit}
        if types:
            params["types"] = ",".join(types)
        response = api.call("GET", f"/api/v1/events/{service}", token=token, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        items += page["items"]
        assert page["next_after"] >= after
        after = page["next_after"]
        if not page["has_more"]:
            return items


def last_positions(config) -> dict[str, int]:
    from shared.config import SERVICES

    with ClusterRpcProxy(config, timeout=15) as cluster:
        return {service: getattr(cluster, service).ping()["last_position"] for service in SERVICES}
