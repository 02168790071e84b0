"""/healthz and /readyz with real services behind the gateway."""

import socket

import pytest
import requests

from gateway.service import GatewayService
from services.analytics.service import AnalyticsService
from services.customers.service import CustomersService
from services.orders.service import OrdersService
from services.payments.service import PaymentsService
from services.users.service import UsersService


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def gateway_config(nameko_config):
    port = _free_port()
    config = dict(nameko_config, WEB_SERVER_ADDRESS=f"127.0.0.1:{port}")
    return config, f"http://127.0.0.1:{port}"


def test_healthz_answers_while_services_are_down(runner_factory, gateway_config):
    config, base = gateway_config
    runner_factory(config, GatewayService).start()
    response = requests.get(f"{base}/healthz", timeout=5)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_names_the_services_that_do_not_answer(runner_factory, gateway_config):
    config, base = gateway_config
    runner_factory(config, GatewayService, UsersService, OrdersService).start()
    response = requests.get(f"{base}/readyz", timeout=10)
    assert response.status_code == 503
    assert response.headers["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 503
    assert problem["missing"] == ["analytics", "customers", "payments"]
    assert problem["services"]["users"]["status"] == "ok"


def test_readyz_is_ready_when_every_service_answers(runner_factory, gateway_config):
    config, base = gateway_config
    runner_factory(
        config,
        GatewayService,
        UsersService,
        CustomersService,
        OrdersService,
        PaymentsService,
        AnalyticsService,
    ).start()
    response = requests.get(f"{base}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["services"]) == {"users", "customers", "orders", "payments", "analytics"}
