"""The sandbox courier's delivery order and concurrency, its claim of a charge the merchant
voided meanwhile, and its stop (the sends themselves are covered end to end by the payment
tests, through the gateway)."""

from __future__ import annotations

import json
import uuid

import eventlet
import pytest
from sqlalchemy import text

from services.payments.sandbox_courier import SENDERS, Courier


def _courier(monkeypatch, fails: set[str] = frozenset()):
    courier = Courier(engine=None, config=None)
    state = {"in_flight": 0, "most": 0, "sent": [], "marked": []}

    def send(event_id: str, body: str, attempt: int) -> bool:
        state["in_flight"] += 1
        state["most"] = max(state["most"], state["in_flight"])
        eventlet.sleep(0.01)
        state["in_flight"] -= 1
        state["sent"].append(event_id)
        return event_id not in fails

    monkeypatch.setattr(courier, "send", send)
    monkeypatch.setattr(courier, "mark_delivered", state["marked"].extend)
    return courier, state


def test_several_charges_are_delivered_at_once_and_each_charges_in_order(monkeypatch):
    courier, state = _courier(monkeypatch)
    batch = [(f"evt{i}", "{}", 1, f"ch{i % 10}") for i in range(20)]  # two per charge
    courier.send_all(batch)
    assert state["most"] == SENDERS
    assert sorted(state["sent"]) == sorted(event for event, *_ in batch)
    assert sorted(state["marked"]) == sorted(state["sent"])
    for charge in range(10):
        assert state["sent"].index(f"evt{charge}") < state["sent"].index(f"evt{charge + 10}")


def test_a_failed_delivery_holds_back_the_rest_of_its_charge_only(monkeypatch):
    courier, state = _courier(monkeypatch, fails={"evt0"})
    courier.send_all([("evt0", "{}", 1, "ch0"), ("evt1", "{}", 1, "ch0"), ("evt2", "{}", 1, "ch1")])
    assert sorted(state["sent"]) == ["evt0", "evt2"]
    assert state["marked"] == ["evt2"]  # evt0 failed; evt1 waits behind it


class _Within:
    """An engine stand-in whose ``begin()`` is a savepoint of one open connection, so the
    courier's claim runs inside the test's transaction and is rolled back with it (it leases
    every due webhook in the schema, other tests' included)."""

    def __init__(self, conn) -> None:
        self.conn = conn

    def begin(self):
        return _Savepoint(self.conn)


class _Savepoint:
    def __init__(self, conn) -> None:
        self.conn = conn

    def __enter__(self):
        self.savepoint = self.conn.begin_nested()
        return self.conn

    def __exit__(self, kind, *_) -> None:
        (self.savepoint.rollback if kind else self.savepoint.commit)()


def _due_charge(conn, ledger_status: str) -> tuple[str, str]:
    """A charge in the sandbox's ledger and its authorisation webhook, due a day ago (first
    in the courier's order)."""
    reference, event_id = f"ch_{uuid.uuid4().hex}", f"evt_{uuid.uuid4().hex}"
    conn.execute(
        text(
            "INSERT INTO sandbox_ledger (reference, kind, merchant_reference, method, amount, "
            "currency, status) VALUES (:ref, 'charge', :merchant, 'card', 5000, 'CNY', :status)"
        ),
        {"ref": reference, "merchant": str(uuid.uuid4()), "status": ledger_status},
    )
    conn.execute(
        text(
            "INSERT INTO sandbox_webhooks (event_id, body, deliver_after, charge_reference, "
            "ledger_status) VALUES (:id, :body, now() - interval '1 day', :ref, 'authorized')"
        ),
        {"id": event_id, "body": json.dumps({"data": {}}), "ref": reference},
    )
    return reference, event_id


def _row(conn, sql: str, key: str):
    return conn.execute(text(sql), {"key": key}).one()


@pytest.mark.parametrize(
    ("ledger_status", "sent", "ledger_after"),
    [("pending", True, "authorized"), ("voided", False, "voided")],
)
def test_a_claimed_webhook_moves_the_ledger_unless_the_charge_was_voided(
    service_engine, ledger_status, sent, ledger_after
):
    with service_engine("payments").connect() as conn:
        outer = conn.begin()
        try:
            reference, event_id = _due_charge(conn, ledger_status)
            due = Courier(engine=_Within(conn), config=None).claim()
            assert (event_id in [claimed for claimed, *_ in due]) is sent
            webhook = _row(
                conn,
                "SELECT cancelled, attempts FROM sandbox_webhooks WHERE event_id = :key",
                event_id,
            )
            assert (webhook.cancelled, webhook.attempts) == (not sent, 1 if sent else 0)
            ledger = _row(
                conn, "SELECT status FROM sandbox_ledger WHERE reference = :key", reference
            )
            assert ledger.status == ledger_after
        finally:
            outer.rollback()


def test_stopping_waits_for_the_batch_in_flight_to_be_sent_and_marked(monkeypatch):
    courier, state = _courier(monkeypatch)
    batches = [[("evt0", "{}", 1, "ch0"), ("evt1", "{}", 1, "ch1")]]
    monkeypatch.setattr(courier, "claim", lambda: batches.pop() if batches else [])
    monkeypatch.setattr(courier, "next_due_in", lambda: 30.0)
    runner = eventlet.spawn(courier.run)
    while not state["in_flight"]:
        eventlet.sleep(0.001)
    courier.stop()
    assert sorted(state["marked"]) == ["evt0", "evt1"]
    assert runner.dead
