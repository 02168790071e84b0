"""Another system's view of the event bus: a plain AMQP client (kombu, no nameko) binds one
queue to every service's exchange with ``#``, flows are driven through the gateway, and every
message received must match the catalogue's JSON Schema for its type and version. Then the
HTTP feed, replayed from cursor 0, must give exactly the stream received live."""

import time
import uuid

import pytest
from jsonschema import Draft202012Validator, FormatChecker
from kombu import Connection, Consumer, Exchange, Queue, binding

from shared import catalogue
from shared.config import SERVICES
from tests.integration.conftest import last_positions, read_feed
from tests.integration.flows import customer_flows, order_payment_refund_flows

pytestmark = pytest.mark.slow
SEALED_KEY = "$sealed"


@pytest.fixture(scope="module")
def subscriber(stack, admin_token):
    """A queue bound to ``<service>.events`` with ``#`` for every service, and the positions
    each service had reached before it was bound."""
    connection = Connection(stack.config["AMQP_URI"], connect_timeout=5)
    channel = connection.channel()
    exchanges = [Exchange(f"{s}.events", type="topic", durable=True) for s in SERVICES]
    queue = Queue(
        f"integration-subscriber-{uuid.uuid4().hex[:8]}",
        bindings=[binding(exchange, routing_key="#") for exchange in exchanges],
        exclusive=True,
    )
    for exchange in exchanges:
        exchange(channel).declare()
    queue(channel).declare()
    start = last_positions(stack.config)
    received = []

    def on_message(body, message):
        received.append(
            {
                "body": body,
                "exchange": message.delivery_info["exchange"],
                "routing_key": message.delivery_info["routing_key"],
                "content_type": message.content_type,
                "delivery_mode": message.properties.get("delivery_mode"),
            }
        )
        message.ack()

    consumer = Consumer(channel, queues=[queue], callbacks=[on_message], accept=["json"])
    consumer.consume()

    def drain_until(done, seconds=30.0):
        deadline = time.monotonic() + seconds
        while not done() and time.monotonic() < deadline:
            try:
                connection.drain_events(timeout=0.2)
            except TimeoutError:
                pass
        return done()

    yield {"start": start, "received": received, "drain_until": drain_until}
    consumer.cancel()
    connection.release()


@pytest.fixture(scope="module")
def flows(stack, admin_token, subscriber):
    ids = customer_flows(stack, admin_token)
    key = stack.call(
        "POST", "/api/v1/api-keys", token=admin_token, json={"name": "erp", "role": "manager"}
    )
    assert key.status_code == 201, key.text
    return {**ids, **order_payment_refund_flows(stack, admin_token, ids["customer"])}


def _feed_after_start(stack, token, start):
    return {
        service: [e for e in read_feed(stack, token, service) if e["position"] > start[service]]
        for service in SERVICES
    }


@pytest.fixture(scope="module")
def streams(stack, analyst_token, subscriber, flows):
    """``(feed, live)`` per service: events after the subscriber was bound, as replayed from
    the feed (as an analyst: personal data stays sealed, as on the bus) and as received on the
    bus (de-duplicated on event_id)."""
    start = subscriber["start"]
    feed = _feed_after_start(stack, analyst_token, start)
    wanted = {e["event_id"] for events in feed.values() for e in events}

    def seen():
        return {m["body"]["event_id"] for m in subscriber["received"]}

    assert subscriber["drain_until"](lambda: wanted <= seen()), wanted - seen()
    live: dict[str, dict[str, dict]] = {service: {} for service in SERVICES}
    for message in subscriber["received"]:
        body = message["body"]
        if body["position"] > start[body["source"]]:
            live[body["source"]].setdefault(body["event_id"], body)
    last = {s: (feed[s][-1]["position"] if feed[s] else start[s]) for s in SERVICES}
    live_lists = {
        s: sorted(
            (e for e in live[s].values() if e["position"] <= last[s]), key=lambda e: e["position"]
        )
        for s in SERVICES
    }
    return feed, live_lists


def test_every_message_matches_the_catalogue(subscriber, streams):
    validators = {
        key: Draft202012Validator(catalogue.strict(schema), format_checker=FormatChecker())
        for key, schema in catalogue.current_schemas().items()
    }
    types = set()
    for message in subscriber["received"]:
        body = message["body"]
        if body["type"].startswith("test."):
            continue  # appended straight into a service's log by a mechanism test of this run
        key = f"{body['type']}.v{body['schema_version']}"
        assert key in validators, f"{key} is not in the catalogue"
        errors = [e.message for e in validators[key].iter_errors(body)]
        assert not errors, f"{key}: {errors}"
        assert message["exchange"] == f"{body['source']}.events"
        assert message["routing_key"] == body["type"]
        assert message["content_type"] == "application/json"
        assert message["delivery_mode"] == 2
        types.add(body["type"])
    expected = {
        "customer.registered",
        "customer.updated",
        "customer.tagged",
        "customer.consent_recorded",
        "customer.archived",
        "customer.restored",
        "customer.merged",
        "customer.merge_undone",
        "customer.erased",
        "api_key.issued",
        "product.created",
        "order.placed",
        "payment.captured",
        "payment.refunded",
    }
    assert expected <= types, expected - types


def _same_but_erased(feed_value, live_value) -> bool:
    """Equal, except that the feed may show ``$erased`` where the bus carried the sealed value
    of that subject."""
    if isinstance(feed_value, dict) and set(feed_value) == {"$erased"}:
        return (
            isinstance(live_value, dict)
            and SEALED_KEY in live_value
            and live_value[SEALED_KEY]["subject"] == feed_value["$erased"]["subject"]
        )
    if isinstance(feed_value, dict) and isinstance(live_value, dict):
        return feed_value.keys() == live_value.keys() and all(
            _same_but_erased(feed_value[k], live_value[k]) for k in feed_value
        )
    if isinstance(feed_value, list) and isinstance(live_value, list):
        return len(feed_value) == len(live_value) and all(
            _same_but_erased(f, v) for f, v in zip(feed_value, live_value, strict=True)
        )
    return feed_value == live_value


def test_replay_from_cursor_zero_equals_the_live_stream(streams, flows):
    feed, live = streams
    assert feed["customers"] and feed["orders"] and feed["payments"], "the flows appended events"
    for service in SERVICES:
        assert [e["event_id"] for e in feed[service]] == [e["event_id"] for e in live[service]]
        positions = [e["position"] for e in feed[service]]
        assert positions == sorted(set(positions))
        for replayed, received in zip(feed[service], live[service], strict=True):
            assert _same_but_erased(replayed, received), (replayed, received)
    erased_marks = [
        e
        for e in feed["customers"]
        if e["stream_id"] == flows["erased"] and "$erased" in str(e["payload"])
    ]
    assert erased_marks, "the erased customer's sealed values read as erased in the feed"
    untouched = [e for e in feed["customers"] if e["stream_id"] == flows["customer"]]
    assert untouched and all("$erased" not in str(e["payload"]) for e in untouched)


def test_the_feed_filters_by_type_and_pages_with_its_cursor(stack, admin_token, streams):
    whole = read_feed(stack, admin_token, "customers")
    paged = read_feed(stack, admin_token, "customers", limit=3)
    assert [e["event_id"] for e in paged] == [e["event_id"] for e in whole]
    only = read_feed(stack, admin_token, "customers", types=["customer.tagged", "customer.erased"])
    assert only and {e["type"] for e in only} == {"customer.tagged", "customer.erased"}
    assert [e["event_id"] for e in only] == [
        e["event_id"] for e in whole if e["type"] in ("customer.tagged", "customer.erased")
    ]
