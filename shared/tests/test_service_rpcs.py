"""ping and read_events, unit-tested with nameko's worker_factory on a real session and
through RPC with a running container."""

import json
import uuid

import pytest
from nameko.testing.services import entrypoint_hook, worker_factory
from sqlalchemy.orm import Session

from services.orders.service import OrdersService
from shared.errors import BadRequest
from shared.events import NewEvent
from shared.eventstore import EventStore


@pytest.fixture
def orders_session(service_engine):
    with Session(service_engine("orders")) as session:
        yield session


def test_ping_reports_the_last_position(orders_session):
    service = worker_factory(OrdersService, db=orders_session)
    answer = service.ping()
    assert answer["service"] == "orders" and answer["status"] == "ok"
    assert answer["last_position"] == EventStore(orders_session).last_position()


def test_read_events_returns_envelopes_and_rejects_bad_arguments(orders_session):
    stream = str(uuid.uuid4())
    store = EventStore(orders_session)
    start = store.last_position()
    store.append("test", stream, [NewEvent("test.a", {"x": 1}), NewEvent("test.b", {})], 0)
    orders_session.commit()
    service = worker_factory(OrdersService, db=orders_session)
    envelopes = service.read_events(after_position=start, limit=10)
    assert [e["type"] for e in envelopes] == ["test.a", "test.b"]
    assert envelopes[0]["source"] == "orders" and envelopes[0]["payload"] == {"x": 1}
    assert service.read_events(after_position=start, limit=1)[0]["type"] == "test.a"
    with pytest.raises(BadRequest) as caught:
        service.read_events(after_position="soon", limit=0)
    assert set(caught.value.extra["errors"]) == {"after_position", "limit"}


def test_read_events_json_keeps_only_the_named_payload_fields(orders_session):
    stream = str(uuid.uuid4())
    store = EventStore(orders_session)
    start = store.last_position()
    store.append("test", stream, [NewEvent("test.c", {"id": "c-1", "secret": "x" * 500})], 0)
    orders_session.commit()
    service = worker_factory(OrdersService, db=orders_session)
    (whole,) = json.loads(service.read_events_json(after_position=start, limit=10))
    (cut,) = json.loads(
        service.read_events_json(after_position=start, limit=10, payload_fields=["id"])
    )
    assert whole["payload"]["secret"] and cut["payload"] == {"id": "c-1"}
    assert cut["event_id"] == whole["event_id"] and cut["type"] == "test.c"
    with pytest.raises(BadRequest) as caught:
        service.read_events_json(after_position=start, payload_fields=[""])
    assert set(caught.value.extra["errors"]) == {"payload_fields"}


def test_read_events_over_rpc(container_factory, nameko_config):
    container = container_factory(OrdersService, nameko_config)
    container.start()
    with entrypoint_hook(container, "read_events") as read_events:
        assert isinstance(read_events(after_position=0, limit=5), list)
    with entrypoint_hook(container, "ping") as ping:
        assert ping()["status"] == "ok"


def test_errors_cross_rpc_as_themselves_with_typed_extras(container_factory, nameko_config):
    from nameko.rpc import rpc

    from shared.errors import ConcurrencyError

    class Failing:
        name = "failing"

        @rpc
        def fail(self):
            raise ConcurrencyError.for_stream("s-1", 0, 3)

    container = container_factory(Failing, nameko_config)
    container.start()
    from nameko.standalone.rpc import ServiceRpcProxy

    with ServiceRpcProxy("failing", nameko_config, timeout=10) as proxy:
        with pytest.raises(ConcurrencyError) as caught:
            proxy.fail()
    assert caught.value.extra == {
        "code": "concurrent_modification",
        "stream_id": "s-1",
        "expected_version": 0,
        "actual_version": 3,
    }
    assert caught.value.status == 409


def test_the_session_pool_has_a_connection_per_worker(container_factory, nameko_config):
    container = container_factory(OrdersService, dict(nameko_config, max_workers=7))
    container.start()
    (database,) = [d for d in container.dependencies if d.attr_name == "db"]
    assert database.engine.pool.size() == 7
    assert database.engine.url.username == "cms_orders"
