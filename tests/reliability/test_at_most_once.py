"""RPCs are served at most once: a request RabbitMQ delivers a second time (its first consumer
died before acknowledging it) is answered with a 503, not carried out again. The chaos run
shows why: without it an order placed by one request was sometimes placed twice when the
orders process was killed between committing and replying."""

from types import SimpleNamespace

import pytest
from nameko.rpc import Rpc

from shared.errors import ServiceUnavailable
from shared.rpc import refuse_redelivered_requests


class Orders:
    name = "orders"

    def place_order(self, customer_id):
        raise AssertionError("never called here: the worker is only spawned")


class Container:
    service_name = "orders"
    service_cls = Orders

    def __init__(self):
        self.spawned = []
        self.shared_extensions = {}
        self.config = {}

    def spawn_worker(self, *args, **kwargs):
        self.spawned.append((args, kwargs))


def test_a_redelivered_request_is_refused_and_a_first_delivery_is_served():
    refuse_redelivered_requests()
    refuse_redelivered_requests()  # idempotent
    container = Container()
    entrypoint = Rpc().bind(container, "place_order")
    body = {"args": [], "kwargs": {"customer_id": "c1"}}
    again = SimpleNamespace(delivery_info={"redelivered": True}, headers={})
    with pytest.raises(ServiceUnavailable) as refused:
        entrypoint.handle_message(body, again)
    assert refused.value.extra == {"service": "orders", "code": "interrupted"}
    assert container.spawned == []
    first = SimpleNamespace(delivery_info={"redelivered": False}, headers={})
    entrypoint.handle_message(body, first)
    assert len(container.spawned) == 1
