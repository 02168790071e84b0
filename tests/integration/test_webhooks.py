"""Webhooks end to end: a receiver on the loopback that fails for a while and then recovers
gets every event, exactly once after de-duplication, in order per stream; an endpoint that
keeps failing is paused with the reason for its owner, and resumes without losing anything;
the delivery log shows each attempt and a delivery can be re-sent."""

import json
import time
import uuid

import eventlet
import pytest
from eventlet import wsgi
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.webhooks import signing
from services.webhooks.endpoints import purge_delivered
from tests.integration.conftest import last_positions, read_feed
from tests.integration.flows import create_customer, customer_flows

pytestmark = pytest.mark.slow
SECRET = "integration-test-secret-0123456789"


class Receiver:
    """An HTTP endpoint on 127.0.0.1 that answers 500 while ``failing`` (or for its first
    ``fail_first`` requests) and 204 after."""

    def __init__(self, fail_first=None):
        self.failing = fail_first is None
        self.fail_first = fail_first
        self.requests = []  # every request that arrived: (headers, body, answered status)
        self.socket = eventlet.listen(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}/hooks/cms"
        self.thread = eventlet.spawn(wsgi.server, self.socket, self.app, log_output=False)

    def app(self, environ, start_response):
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {
            key[5:].replace("_", "-").title(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        failures = sum(1 for _h, _b, code in self.requests if code >= 300)
        failing = self.failing or (self.fail_first is not None and failures < self.fail_first)
        status = "500 Internal Server Error" if failing else "204 No Content"
        self.requests.append((headers, body, int(status[:3])))
        start_response(status, [("Content-Type", "text/plain")])
        return [b"down for maintenance"] if failing else [b""]

    def accepted(self):
        """De-duplicated on the webhook id, in arrival order: ``[(id, envelope)]``."""
        seen, result = set(), []
        for headers, body, status in self.requests:
            if status >= 300:
                continue
            delivery_id = headers[signing.ID_HEADER.title()]
            if delivery_id not in seen:
                seen.add(delivery_id)
                result.append((delivery_id, json.loads(body)))
        return result

    def stop(self):
        self.thread.kill()
        self.socket.close()


def _await(condition, seconds=30.0, what="condition"):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        eventlet.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def receiver():
    receiving = Receiver()
    yield receiving
    receiving.stop()


def _register(stack, token, url, **extra):
    response = stack.call(
        "POST",
        "/api/v1/webhooks",
        token=token,
        json={"url": url, "event_types": ["customer.*"], "secret": SECRET, **extra},
    )
    assert response.status_code == 201, response.text
    return response.json()


def _endpoint(stack, token, webhook_id):
    response = stack.call("GET", f"/api/v1/webhooks/{webhook_id}", token=token)
    assert response.status_code == 200, response.text
    return response.json()


def _check_signatures(receiver):
    for headers, body, _status in receiver.requests:
        assert signing.verify(
            SECRET,
            headers[signing.TIMESTAMP_HEADER.title()],
            body,
            headers[signing.SIGNATURE_HEADER.title()],
        ), headers
        assert headers[signing.EVENT_TYPE_HEADER.title()] == json.loads(body)["type"]


def _assert_exactly_once_in_order(receiver, expected):
    accepted = receiver.accepted()
    event_ids = [envelope["event_id"] for _id, envelope in accepted]
    assert len(event_ids) == len(set(event_ids)), "an event arrived under two delivery ids"
    assert sorted(event_ids) == sorted(e["event_id"] for e in expected)
    by_stream = {}
    for _id, envelope in accepted:
        by_stream.setdefault(envelope["stream_id"], []).append(envelope["stream_version"])
    for stream, versions in by_stream.items():
        assert versions == sorted(versions), f"stream {stream} out of order: {versions}"
    by_id = {e["event_id"]: e for e in expected}
    for _id, envelope in accepted:
        assert envelope == by_id[envelope["event_id"]]


def test_a_failing_receiver_that_recovers_gets_every_event_once_in_order(
    stack, admin_token, analyst_token
):
    # fails its first requests (a burst of failures does not pause), then recovers
    receiver = Receiver(fail_first=12)
    try:
        _recovers(stack, admin_token, analyst_token, receiver)
    finally:
        receiver.stop()


def _recovers(stack, admin_token, analyst_token, receiver):
    """Deliveries carry the envelopes as the bus does: personal data sealed, as the feed
    shows it to an analyst."""
    start = last_positions(stack.config)["customers"]
    hook = _register(stack, admin_token, receiver.url)
    assert hook["status"] == "active" and hook["secret"] == SECRET
    customer_flows(stack, admin_token)
    expected = [e for e in read_feed(stack, analyst_token, "customers") if e["position"] > start]
    # the feed shows erased people's values as erased; the webhook carries the sealed original
    expected_ids = {e["event_id"] for e in expected}
    _await(
        lambda: {env["event_id"] for _id, env in receiver.accepted()} >= expected_ids,
        what="every event",
    )
    accepted = {env["event_id"]: env for _id, env in receiver.accepted()}
    for event in expected:
        if "$erased" not in json.dumps(event):
            assert accepted[event["event_id"]] == event
    _assert_exactly_once_in_order(receiver, [accepted[e["event_id"]] for e in expected])
    _check_signatures(receiver)
    state = _endpoint(stack, admin_token, hook["id"])
    assert state["status"] == "active" and state["consecutive_failures"] == 0
    log = stack.call(
        "GET",
        f"/api/v1/webhooks/{hook['id']}/deliveries",
        token=admin_token,
        params={"status": "delivered", "limit": 200},
    ).json()["items"]
    assert len(log) == len(expected)
    retried = next(d for d in log if d["attempts"] > 1)
    detail = stack.call(
        "GET", f"/api/v1/webhooks/{hook['id']}/deliveries/{retried['id']}", token=admin_token
    ).json()
    codes = [attempt["status_code"] for attempt in detail["attempt_log"]]
    assert codes[-1] == 204 and 500 in codes[:-1]
    assert detail["envelope"]["event_id"] == retried["event_id"]
    stack.call("DELETE", f"/api/v1/webhooks/{hook['id']}", token=admin_token)


def test_an_endpoint_that_keeps_failing_is_paused_then_resumed_without_loss(
    stack, admin_token, analyst_token, receiver, service_engine
):
    start = last_positions(stack.config)["customers"]
    hook = _register(stack, admin_token, receiver.url, event_types=["customer.registered"])
    created = [create_customer(stack, admin_token)["id"] for _ in range(3)]
    _await(
        lambda: _endpoint(stack, admin_token, hook["id"])["consecutive_failures"] >= 10,
        what="failed attempts",
    )
    failing = _endpoint(stack, admin_token, hook["id"])
    assert failing["status"] == "active" and failing["failing_since"] is not None
    # while it fails, the delivery log shows what is being retried and why
    path = f"/api/v1/webhooks/{hook['id']}/deliveries"
    retrying = stack.call("GET", path, token=admin_token, params={"status": "retrying"})
    assert retrying.json()["items"], retrying.text
    assert all("HTTP 500" in d["last_error"] for d in retrying.json()["items"])
    # it has failed for 72 hours without a success (the clock moved on): the next failure
    # pauses it
    with service_engine("webhooks").begin() as conn:
        conn.execute(
            text(
                "UPDATE endpoints SET failing_since = failing_since - interval '73 hours' "
                "WHERE id = :id"
            ),
            {"id": hook["id"]},
        )
    _await(
        lambda: _endpoint(stack, admin_token, hook["id"])["status"] == "paused",
        what="the endpoint to be paused",
    )
    paused = _endpoint(stack, admin_token, hook["id"])
    assert "72 hours without a success" in paused["paused_reason"]
    assert "500" in paused["paused_reason"] and "resume" in paused["paused_reason"]
    attempts = len(receiver.requests)
    receiver.failing = False
    eventlet.sleep(0.5)  # paused: nothing is attempted, however long we wait
    assert len(receiver.requests) == attempts
    resumed = stack.call("POST", f"/api/v1/webhooks/{hook['id']}/resume", token=admin_token)
    assert resumed.status_code == 200 and resumed.json()["status"] == "active"
    expected = read_feed(stack, analyst_token, "customers", types=["customer.registered"])
    expected = [e for e in expected if e["position"] > start]
    assert {e["stream_id"] for e in expected} == set(created)
    _await(lambda: len(receiver.accepted()) >= len(expected), what="the paused deliveries")
    _assert_exactly_once_in_order(receiver, expected)
    # re-sending a delivery sends the same id again: the receiver drops it as a duplicate
    delivery_id, envelope = receiver.accepted()[0]
    resent = stack.call(
        "POST",
        f"/api/v1/webhooks/{hook['id']}/deliveries/{delivery_id}/resend",
        token=admin_token,
    )
    assert resent.status_code == 202, resent.text
    _await(
        lambda: (
            sum(1 for h, _b, _s in receiver.requests if h.get("Cms-Webhook-Id") == delivery_id) >= 2
        ),
        what="the re-sent delivery",
    )
    _assert_exactly_once_in_order(receiver, expected)
    _check_signatures(receiver)
    assert envelope["type"] == "customer.registered"
    # housekeeping: delivered entries leave the log after LOG_DAYS (here: at once)
    _await(
        lambda: (
            stack.call("GET", path, token=admin_token, params={"status": "pending"}).json()["items"]
            == []
        ),
        what="the re-sent delivery to be delivered",
    )
    with Session(service_engine("webhooks")) as session:
        assert purge_delivered(session, 0) >= len(expected)
    assert stack.call("GET", path, token=admin_token).json()["items"] == []
    stack.call("DELETE", f"/api/v1/webhooks/{hook['id']}", token=admin_token)


def test_filters_by_changed_fields(stack, admin_token, receiver):
    receiver.failing = False
    hook = _register(
        stack,
        admin_token,
        receiver.url,
        event_types=["customer.updated", "customer.tagged"],
        fields=["company"],
    )
    customer = create_customer(stack, admin_token)
    for changes in ({"name": f"Only name {uuid.uuid4().hex[:4]}"}, {"company": "新公司"}):
        current = stack.call("GET", f"/api/v1/customers/{customer['id']}", token=admin_token)
        response = stack.call(
            "PATCH",
            f"/api/v1/customers/{customer['id']}",
            token=admin_token,
            json=changes,
            headers={"If-Match": current.headers["ETag"]},
        )
        assert response.status_code == 200, response.text
    stack.call(
        "POST", f"/api/v1/customers/{customer['id']}/tags", token=admin_token, json={"add": ["x"]}
    )
    _await(lambda: len(receiver.accepted()) >= 2, what="the matching events")
    eventlet.sleep(0.3)
    got = [
        (envelope["type"], sorted(envelope["payload"].get("changes", {})))
        for _id, envelope in receiver.accepted()
    ]
    assert got == [("customer.updated", ["company"]), ("customer.tagged", [])]
    stack.call("DELETE", f"/api/v1/webhooks/{hook['id']}", token=admin_token)
