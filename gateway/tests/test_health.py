"""/healthz and /readyz with real services behind the gateway."""

import requests

from gateway.service import GatewayService
from services.analytics.service import AnalyticsService
from services.customers.service import CustomersService
from services.orders.service import OrdersService
from services.payments.service import PaymentsService
from services.users.service import UsersService
from services.webhooks.service import WebhooksService


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
    assert problem["missing"] == ["analytics", "customers", "payments", "webhooks"]
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
        WebhooksService,
    ).start()
    response = requests.get(f"{base}/readyz", timeout=10)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert set(body["services"]) == {
        "users",
        "customers",
        "orders",
        "payments",
        "analytics",
        "webhooks",
    }
