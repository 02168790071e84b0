"""A customer archived, merged away or erased through the gateway cannot get an order in the
very next request: the gateway has the orders service apply the change to its customer
replica before it answers (``sync_customers``), not a moment later when the live event comes.

The orders service here has no live consumers of those three events, so only that step can
tell it (its periodic catch-up runs at start, then every 30 s): without it, the order would go
through. The last test stops the orders service, to show that the change is made and answered
even when orders cannot take it at once."""

import uuid

import pytest
from nameko.runners import ServiceRunner

from gateway.tests.conftest import Api, _config, _free_port
from gateway.tests.test_orders_api import customer, place
from services.orders.service import OrdersService


class OrdersWithoutLiveStatus(OrdersService):
    """The orders service with its live ``customer.archived``, ``customer.merged`` and
    ``customer.erased`` consumers left out (a method without the decorator is no
    entrypoint)."""

    def on_customer_archived(self, envelope):
        raise AssertionError("not an entrypoint here")

    def on_customer_merged(self, envelope):
        raise AssertionError("not an entrypoint here")

    def on_customer_erased(self, envelope):
        raise AssertionError("not an entrypoint here")


def _run(nameko_config, *services) -> tuple[ServiceRunner, Api]:
    port = _free_port()
    runner = ServiceRunner(_config(nameko_config, port))
    for service in services:
        runner.add_service(service)
    runner.start()
    return runner, Api(f"http://127.0.0.1:{port}")


@pytest.fixture(scope="module")
def stack(nameko_config):
    from gateway.service import GatewayService
    from services.customers.service import CustomersService
    from services.users.service import UsersService

    runner, client = _run(
        nameko_config, GatewayService, UsersService, CustomersService, OrdersWithoutLiveStatus
    )
    yield runner, client
    runner.stop()


@pytest.fixture(scope="module")
def api(stack):
    return stack[1]


@pytest.fixture(scope="module")
def token(admin):
    return admin[1]


@pytest.fixture(scope="module")
def product(api, token):
    body = {"sku": f"P-{uuid.uuid4().hex[:8]}", "name": "Pu-erh", "price": 2500, "currency": "CNY"}
    created = api.call("POST", "/api/v1/products", token=token, json=body)
    assert created.status_code == 201, created.text
    return created.json()


def _refused(response, state):
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "customer_not_active"
    assert response.json()["state"] == state


def test_an_archived_customer_gets_no_order_in_the_next_request(api, token, product):
    buyer = customer(api, token)
    assert place(api, token, buyer["id"], product).status_code == 201
    archived = api.call(
        "POST", f"/api/v1/customers/{buyer['id']}/archive", token=token, headers={"If-Match": '"1"'}
    )
    assert archived.status_code == 200, archived.text
    _refused(place(api, token, buyer["id"], product), "archived")
    restored = api.call("POST", f"/api/v1/customers/{buyer['id']}/restore", token=token)
    assert restored.status_code == 200, restored.text
    assert place(api, token, buyer["id"], product).status_code == 201


def test_a_customer_merged_away_gets_no_order_in_the_next_request(api, token, product):
    kept, merged = customer(api, token), customer(api, token)
    assert place(api, token, merged["id"], product).status_code == 201
    done = api.call(
        "POST",
        f"/api/v1/customers/{kept['id']}/merge",
        token=token,
        json={"source_id": merged["id"]},
    )
    assert done.status_code == 200, done.text
    _refused(place(api, token, merged["id"], product), "merged")
    assert place(api, token, kept["id"], product).status_code == 201


def test_an_erased_customer_gets_no_order_in_the_next_request(api, token, product):
    buyer = customer(api, token)
    assert place(api, token, buyer["id"], product).status_code == 201
    erased = api.call(
        "POST", f"/api/v1/customers/{buyer['id']}/erase", token=token, json={"confirm": True}
    )
    assert erased.status_code == 200, erased.text
    _refused(place(api, token, buyer["id"], product), "erased")


def test_the_change_is_made_and_answered_when_orders_is_not_running(stack, token):
    runner, api = stack
    buyer = customer(api, token)
    (orders,) = [c for c in runner.containers if c.service_name == "orders"]
    orders.stop()
    archived = api.call(
        "POST", f"/api/v1/customers/{buyer['id']}/archive", token=token, headers={"If-Match": '"1"'}
    )
    assert archived.status_code == 200, archived.text
    assert archived.json()["status"] == "archived"
    shown = api.call("GET", f"/api/v1/customers/{buyer['id']}", token=token)
    assert shown.json()["status"] == "archived"
