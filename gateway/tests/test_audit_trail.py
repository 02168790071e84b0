"""The gateway's audit trail when the broker does not take an entry at once."""

import uuid

import eventlet
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from gateway import auth, routes  # noqa: F401 - routes register the operations
from gateway.operations import Principal, registry


def _request() -> Request:
    request = Request(EnvironBuilder(method="POST", path="/api/v1/orders").get_environ())
    request.request_id = uuid.uuid4().hex
    return request


def test_an_entry_the_broker_refuses_is_published_again_later_with_the_same_id(monkeypatch):
    monkeypatch.setattr(auth, "AUDIT_RETRY_DELAYS", (0.01, 0.01, 0.01))
    published: list[tuple[str, dict]] = []

    def publish(event_type: str, entry: dict) -> None:
        if len(published) < 2:  # the broker is restarting: refused twice
            published.append((event_type, entry))
            raise ConnectionError("connection refused")
        published.append((event_type, entry))

    operation = next(op for op in registry.operations.values() if op.audit == "orders.place")
    principal = Principal(kind="user", id="u-1", role="sales")
    auth.record_audit(operation, principal, _request(), {}, 201, None, "10.0.0.1", publish)
    with eventlet.Timeout(5):
        while len(published) < 3:
            eventlet.sleep(0.01)
    eventlet.sleep(0.1)
    assert len(published) == 3  # none after the one the broker took
    assert {event_type for event_type, _ in published} == {auth.AUDIT_ENTRY}
    assert len({entry["entry_id"] for _, entry in published}) == 1
    assert published[0][1]["action"] == "orders.place"
    assert published[0][1]["status"] == 201
