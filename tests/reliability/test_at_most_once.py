"""RPCs are served at most once: a request RabbitMQ delivers a second time (its first consumer
died before acknowledging it) is answered with a 503, not carried out again. The chaos run
shows why: without it an order placed by one request was sometimes placed twice when the
orders process was killed between committing and replying."""

from types import SimpleNamespace

import pytest
from kombu.exceptions import OperationalError
from nameko.containers import get_container_cls
from nameko.exceptions import RpcTimeout
from nameko.messaging import QueueConsumer
from nameko.rpc import Responder, Rpc, rpc
from nameko.standalone.rpc import ClusterRpcProxy

import shared.rpc
from shared.errors import ServiceUnavailable
from shared.outages import survive_broker_restarts
from shared.rpc import RpcClient, refuse_redelivered_requests


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


class Echo:
    name = "echo_at_most_once"

    @rpc
    def echo(self, value):
        return value


def test_a_reply_rabbitmq_does_not_take_leaves_the_service_running(nameko_config, monkeypatch):
    """RabbitMQ restarting between a request and its reply: the reply cannot be published.
    nameko would kill the whole container; the caller times out instead (a 503 through the
    gateway) and the service goes on serving."""
    survive_broker_restarts()
    container = get_container_cls(nameko_config)(Echo, nameko_config)
    container.start()
    failures = [OperationalError("[Errno 111] ECONNREFUSED")]
    original = Responder.send_response

    def send_response(self, result, exc_info):
        if failures:
            raise failures.pop()
        return original(self, result, exc_info)

    monkeypatch.setattr(Responder, "send_response", send_response)
    try:
        with ClusterRpcProxy(nameko_config, timeout=3) as cluster:
            with pytest.raises(RpcTimeout):
                cluster.echo_at_most_once.echo("lost")
            assert not container._died.ready()
            assert cluster.echo_at_most_once.echo("answered") == "answered"
    finally:
        container.stop()


def test_a_request_rabbitmq_does_not_take_is_a_503(monkeypatch):
    class Refused:
        """nameko's MethodProxy while RabbitMQ refuses connections."""

        def __init__(self, *args):
            pass

        def call_async(self, *args, **kwargs):
            raise OperationalError("[Errno 111] ECONNREFUSED")

    monkeypatch.setattr(shared.rpc, "MethodProxy", Refused)
    client = RpcClient(worker_ctx=SimpleNamespace(), reply_listener=None, timeout=1)
    with pytest.raises(ServiceUnavailable) as refused:
        client.call("orders", "place_order", customer_id="c1")
    assert refused.value.extra == {"service": "orders", "code": "broker_unavailable"}


def test_an_acknowledgement_on_a_closed_connection_leaves_the_service_running(
    nameko_config, monkeypatch
):
    """An event handled while RabbitMQ goes away cannot be acknowledged: the socket error
    (not amqp's own ConnectionError, which nameko expects) killed the container."""
    survive_broker_restarts()

    class Gone:
        def ack(self):
            raise ConnectionResetError(104, "Connection reset by peer")

        def requeue(self):
            raise BrokenPipeError(32, "Broken pipe")

    message = SimpleNamespace(channel=SimpleNamespace(connection=object()))
    message.ack, message.requeue = Gone().ack, Gone().requeue
    consumer = QueueConsumer()
    consumer.ack_message(message)  # logged, not raised: the broker redelivers it
    consumer.requeue_message(message)
