"""The deliverer against the webhooks schema, with the clock in the test's hands: when an
endpoint is paused, what the delivery log shows while it fails, what a failing target's answer
leaves in the log, and that a name resolving to a private address is never connected to."""

import uuid
from datetime import UTC, datetime, timedelta

import eventlet
import pytest
from eventlet import wsgi
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.webhooks import config, delivery
from services.webhooks.endpoints import Endpoints

ADMIN = {"id": "admin-1", "role": "admin"}
SECRET = "whsec_test-secret-0123456789abcdef"
T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def engine(service_engine):
    return service_engine("webhooks")


@pytest.fixture
def settings():
    return config.load({})  # the defaults: retried for 72 h, paused after 72 h of failing


@pytest.fixture
def endpoint(engine, settings):
    with Session(engine) as session:
        created = Endpoints(session, settings).create(
            ADMIN,
            {"url": "https://erp.example.com/hooks", "event_types": ["*"], "secret": SECRET},
        )
    yield created["id"]
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM endpoints WHERE id = :id"), {"id": created["id"]})


def _deliveries(engine, endpoint_id, count):
    ids = [uuid.uuid4() for _ in range(count)]
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO deliveries (id, endpoint_id, event_id, source, position, "
                "stream_id, event_type, envelope) VALUES (:id, :endpoint, :id, 'orders', "
                ":position, :stream, 'order.placed', CAST(:envelope AS jsonb))"
            ),
            [
                {
                    "id": delivery_id,
                    "endpoint": endpoint_id,
                    "position": n,
                    "stream": f"order-{n}",  # separate streams: all due at once
                    "envelope": '{"type": "order.placed"}',
                }
                for n, delivery_id in enumerate(ids, 1)
            ],
        )
    return ids


def _row(engine, delivery_id):
    with engine.connect() as conn:
        return conn.execute(
            text(
                "SELECT id, endpoint_id, envelope, attempts, first_attempt_at, event_type "
                "FROM deliveries WHERE id = :id"
            ),
            {"id": delivery_id},
        ).one()


def _fail(engine, settings, delivery_id, at):
    row = _row(engine, delivery_id)
    delivery.record(engine, settings, row, 503, "HTTP 503 Service Unavailable", 5, False, at)


def _endpoint(engine, settings, endpoint_id):
    with Session(engine) as session:
        return Endpoints(session, settings).get(endpoint_id)


def test_a_burst_of_failures_does_not_pause_only_failing_for_the_retry_window_does(
    engine, settings, endpoint
):
    """The trial's case: 60 deliveries failing within minutes of registration added up past
    the old 50-attempt threshold and paused the endpoint after 3 minutes."""
    ids = _deliveries(engine, endpoint, 60)
    for n, delivery_id in enumerate(ids):
        for retry in range(3):  # each retried on its own schedule (10 s, 20 s, ...)
            _fail(engine, settings, delivery_id, T0 + timedelta(seconds=n + 10 * retry))
    state = _endpoint(engine, settings, endpoint)
    assert state["status"] == "active" and state["consecutive_failures"] == 180
    assert state["failing_since"].startswith("2026-11-02T09:00:00")
    # a success (here the first delivery, an hour later) ends the failing spell
    row = _row(engine, ids[0])
    delivery.record(engine, settings, row, 204, None, 5, True, T0 + timedelta(hours=1))
    state = _endpoint(engine, settings, endpoint)
    assert state["failing_since"] is None and state["consecutive_failures"] == 0
    # then it fails again (a new delivery, hourly) for 71 hours: still retried, still active
    (fresh,) = _deliveries(engine, endpoint, 1)
    restart = T0 + timedelta(hours=2)
    for hour in range(72):
        _fail(engine, settings, fresh, restart + timedelta(hours=hour))
    assert _endpoint(engine, settings, endpoint)["status"] == "active"
    # 72 hours without a success: the delivery has run out of retries, and the endpoint pauses
    _fail(engine, settings, fresh, restart + timedelta(hours=72))
    state = _endpoint(engine, settings, endpoint)
    assert state["status"] == "paused"
    assert "72 hours without a success" in state["paused_reason"]
    assert "HTTP 503" in state["paused_reason"] and "resume" in state["paused_reason"]
    with engine.connect() as conn:
        statuses = dict(
            conn.execute(
                text("SELECT id, status FROM deliveries WHERE id IN (:a, :b)"),
                {"a": fresh, "b": ids[1]},
            ).all()
        )
    assert statuses == {fresh: "failed", ids[1]: "pending"}
    # resuming sends the backlog, with what ran out of retries while the endpoint failed
    with Session(engine) as session:
        resumed = Endpoints(session, settings).resume(endpoint)
    assert resumed["status"] == "active" and resumed["failing_since"] is None
    with engine.connect() as conn:
        left = conn.execute(
            text("SELECT count(*) FROM deliveries WHERE endpoint_id = :e AND status <> 'pending'"),
            {"e": endpoint},
        ).scalar()
    assert left == 1  # the one delivered


def test_pausing_can_be_switched_off(engine, endpoint):
    never = config.load({"WEBHOOK_PAUSE_AFTER_HOURS": 0})
    (delivery_id,) = _deliveries(engine, endpoint, 1)
    _fail(engine, never, delivery_id, T0)
    _fail(engine, never, delivery_id, T0 + timedelta(days=30))
    assert _endpoint(engine, never, endpoint)["status"] == "active"


def test_deliveries_being_retried_are_found_with_their_error(engine, settings, endpoint):
    failing, waiting, done = _deliveries(engine, endpoint, 3)
    _fail(engine, settings, failing, T0)
    row = _row(engine, done)
    delivery.record(engine, settings, row, 200, None, 5, True, T0)
    with Session(engine) as session:
        log = Endpoints(session, settings)
        retrying = log.deliveries(endpoint, "retrying", 50, None)["items"]
        pending = log.deliveries(endpoint, "pending", 50, None)["items"]
    assert [item["id"] for item in retrying] == [str(failing)]
    (item,) = retrying
    assert item["status"] == "pending" and item["retrying"] is True
    assert item["attempts"] == 1 and item["last_status_code"] == 503
    assert item["last_error"] == "HTTP 503 Service Unavailable"
    assert item["next_attempt_at"] is not None
    assert {p["id"]: p["retrying"] for p in pending} == {str(failing): True, str(waiting): False}


class Target:
    """An HTTP server on the loopback answering every request with ``status`` and ``body``."""

    def __init__(self, status="500 Internal Server Error", body=b""):
        self.status, self.body, self.requests = status, body, 0
        self.socket = eventlet.listen(("127.0.0.1", 0))
        self.port = self.socket.getsockname()[1]
        self.thread = eventlet.spawn(wsgi.server, self.socket, self.app, log_output=False)

    def app(self, environ, start_response):
        self.requests += 1
        start_response(self.status, [("Content-Type", "text/plain")])
        return [self.body]

    def stop(self):
        self.thread.kill()
        self.socket.close()


def test_a_failing_targets_answer_is_kept_short_and_clean():
    echo = b"bad signature for secret " + SECRET.encode() + b"\x1b[31m\r\n" + b"x" * 5000
    target = Target(body=echo)
    try:
        code, error = delivery.send(
            f"http://127.0.0.1:{target.port}/hook",
            SECRET,
            str(uuid.uuid4()),
            {"type": "order.placed"},
            5,
            allow_loopback=True,
        )
    finally:
        target.stop()
    assert code == 500 and error.startswith("HTTP 500 Internal Server Error: bad signature")
    assert SECRET not in error and "[secret]" in error
    assert all(c.isprintable() for c in error)
    assert len(error) <= len("HTTP 500 Internal Server Error: ") + delivery.MAX_ANSWER


def test_a_name_that_resolves_to_a_private_address_is_never_connected_to(
    engine, settings, endpoint, monkeypatch
):
    """DNS rebinding: the name was public at registration; now it resolves to the loopback
    (where a target listens) or the metadata service. Nothing is sent; the log says why."""
    target = Target(status="204 No Content")
    resolved = {"rebind.example.com": "127.0.0.1", "meta.example.com": "169.254.169.254"}
    real = delivery.targets.socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        return real(resolved.get(host, host), port, *args, **kwargs)

    monkeypatch.setattr(delivery.targets.socket, "getaddrinfo", getaddrinfo)
    deliverer = delivery.Deliverer.__new__(delivery.Deliverer)
    deliverer.engine, deliverer.settings = engine, settings
    try:
        for host in resolved:
            with engine.begin() as conn:
                conn.execute(
                    text("UPDATE endpoints SET url = :url WHERE id = :id"),
                    {"url": f"https://{host}:{target.port}/hook", "id": endpoint},
                )
            (delivery_id,) = _deliveries(engine, endpoint, 1)
            deliverer.deliver(_row(engine, delivery_id))
            with engine.connect() as conn:
                logged = conn.execute(
                    text("SELECT status, last_error FROM deliveries WHERE id = :id"),
                    {"id": delivery_id},
                ).one()
            assert logged.status == "pending"
            assert logged.last_error.startswith(f"Not sent: {host} resolves to {resolved[host]}")
    finally:
        target.stop()
    assert target.requests == 0
