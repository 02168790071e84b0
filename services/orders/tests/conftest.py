"""Fixtures of the orders service tests: the orders and customers services running in this
process on this run's database and broker, callers of their entrypoints, and helpers that make
products and customers."""

import uuid

import pytest
from nameko.containers import get_container_cls
from nameko.rpc import rpc

from services.customers.service import CustomersService
from services.orders.service import OrdersService
from shared.testing import Caller


def principal(role="admin", user_id=None):
    return {"id": user_id or str(uuid.uuid4()), "role": role, "kind": "user"}


def actor_of(who):
    return {
        "id": who["id"],
        "kind": "user",
        "role": who["role"],
        "ip": "127.0.0.1",
        "request_id": f"req-{uuid.uuid4().hex[:8]}",
        "session_id": None,
    }


def as_(who):
    return {"actor": actor_of(who), "viewer": who}


@pytest.fixture(scope="module")
def customers_container(nameko_config):
    container = get_container_cls(nameko_config)(CustomersService, nameko_config)
    container.start()
    yield container
    container.stop()


@pytest.fixture(scope="module")
def orders_container(nameko_config, customers_container):
    container = get_container_cls(nameko_config)(OrdersService, nameko_config)
    container.start()
    yield container
    container.stop()


class PaymentsStandIn:
    """The payments service's ``order_balance`` as these tests set it (``paid`` and
    ``pending``: order id → amount): the orders service asks it before a sales user's cancel
    or return and before a change of lines, and a test must be able to make payments know of
    money the orders service has not heard of."""

    name = "payments"
    paid: dict[str, int] = {}
    pending: dict[str, int] = {}

    @rpc
    def order_balance(self, order_id):
        return {
            "order_id": order_id,
            "paid_amount": self.paid.get(order_id, 0),
            "pending_amount": self.pending.get(order_id, 0),
        }


@pytest.fixture(scope="module")
def payments_standin(nameko_config):
    """A running :class:`PaymentsStandIn` (its ``paid`` and ``pending`` are the tests' to set)."""
    PaymentsStandIn.paid, PaymentsStandIn.pending = {}, {}
    container = get_container_cls(nameko_config)(PaymentsStandIn, nameko_config)
    container.start()
    yield PaymentsStandIn
    container.stop()


@pytest.fixture(scope="module")
def orders(orders_container):
    return Caller(orders_container)


@pytest.fixture(scope="module")
def customers(customers_container):
    return Caller(customers_container)


@pytest.fixture(scope="module")
def admin():
    return principal("admin")


@pytest.fixture(scope="module")
def make_customer(customers, admin):
    def make(by=None, **data):
        data.setdefault("name", f"Buyer {uuid.uuid4().hex[:6]}")
        data.setdefault("emails", [{"address": f"b-{uuid.uuid4().hex[:10]}@example.com"}])
        return customers.create_customer(**as_(by or admin), data=data, force=True)

    return make


@pytest.fixture(scope="module")
def make_product(orders, admin):
    def make(price=1000, currency="CNY", **data):
        data.setdefault("sku", f"SKU-{uuid.uuid4().hex[:8]}")
        data.setdefault("name", f"Product {uuid.uuid4().hex[:4]}")
        return orders.create_product(
            actor=actor_of(admin), data={"price": price, "currency": currency, **data}
        )

    return make


@pytest.fixture(scope="module")
def place(orders, admin):
    def place_order(customer_id, *lines, by=None, **data):
        body = {
            "customer_id": customer_id,
            "lines": [
                {"product_id": product["id"], "quantity": quantity} for product, quantity in lines
            ],
            **data,
        }
        return orders.place_order(**as_(by or admin), data=body)

    return place_order
