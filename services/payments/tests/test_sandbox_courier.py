"""The sandbox courier's delivery order and concurrency (the sends themselves are covered
end to end by the payment tests, through the gateway)."""

from __future__ import annotations

import eventlet

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
