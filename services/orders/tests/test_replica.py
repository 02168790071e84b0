"""The customer replica: contract-shaped customers envelopes, applied once, in any order."""

import uuid

from sqlalchemy import text

from services.orders.replica import apply_customer_event, consume
from shared.consumer import apply_once


def envelope(event_type, customer_id, version, **payload):
    return {
        "event_id": str(uuid.uuid4()),
        "type": event_type,
        "schema_version": 1,
        "source": "customers",
        "stream_type": "customer",
        "stream_id": customer_id,
        "stream_version": version,
        "position": 0,
        "occurred_at": "2026-01-01T00:00:00Z",
        "metadata": {},
        "payload": {"customer_id": customer_id, **payload},
    }


def row(session, customer_id):
    return session.execute(
        text("SELECT status, owner_id, merged_into FROM customers WHERE id = :id"),
        {"id": customer_id},
    ).first()


def test_events_apply_once_and_in_any_order(service_engine):
    from sqlalchemy.orm import Session

    customer, target = str(uuid.uuid4()), str(uuid.uuid4())
    registered = envelope("customer.registered", customer, 1, owner_id="u1")
    archived = envelope("customer.archived", customer, 2)
    assigned = envelope("customer.assigned", customer, 3, owner_id="u2", previous_owner_id="u1")
    with Session(service_engine("orders")) as session:
        assert consume(session, archived)  # before its registration: out of order
        assert consume(session, assigned)
        assert consume(session, registered)
        assert not consume(session, registered)  # redelivered
        assert tuple(row(session, customer)) == ("archived", "u2", None)
        consume(session, envelope("customer.restored", customer, 4))
        assert row(session, customer).status == "active"
        merged = envelope(
            "customer.merged",
            customer,
            5,
            merge_id=str(uuid.uuid4()),
            source_id=customer,
            target_id=target,
            previous_status="active",
        )
        consume(session, merged)
        assert row(session, customer).status == "merged"
        assert str(row(session, customer).merged_into) == target
        consume(
            session,
            envelope(
                "customer.merge_undone",
                customer,
                6,
                merge_id=str(uuid.uuid4()),
                source_id=customer,
                target_id=target,
            ),
        )
        assert row(session, customer).status == "active"
        consume(session, envelope("customer.erased", customer, 7))
        assert row(session, customer).status == "erased"
        assert not consume(session, envelope("customer.tagged", customer, 8, tags=["x"]))


def test_erasure_destroys_the_key_of_this_service(service_engine):
    from sqlalchemy.orm import Session

    from shared.sealing import Vault

    customer = str(uuid.uuid4())
    with Session(service_engine("orders")) as session:
        sealed = Vault(session).seal(customer, "secret")
        session.commit()
        apply_once(
            session,
            "test.replica",
            envelope("customer.erased", customer, 2),
            apply_customer_event,
        )
        assert Vault(session).unseal(sealed) is None


def test_a_catch_up_page_folds_to_what_one_event_at_a_time_does(service_engine):
    """``apply_customer_events`` (runs of registrations in one statement) against
    ``apply_customer_event`` one by one, on the same page: registrations before and after
    other events, an assignment that arrived before its registration, a re-registration
    older than what is stored."""
    from sqlalchemy.orm import Session

    from services.orders.replica import apply_customer_events

    def page(ids):
        a, b, c, d = ids
        return [
            envelope("customer.registered", a, 1, owner_id="u1"),
            envelope("customer.registered", b, 1, owner_id=None),
            envelope("customer.archived", a, 2),
            envelope("customer.registered", c, 1, owner_id="u3"),
            envelope("customer.registered", d, 1, owner_id="u4"),
        ]

    one_by_one = [str(uuid.uuid4()) for _ in range(4)]
    at_once = [str(uuid.uuid4()) for _ in range(4)]
    with Session(service_engine("orders")) as session:
        for ids in (one_by_one, at_once):  # c was assigned (version 2) before the page came
            apply_customer_event(session, envelope("customer.assigned", ids[2], 2, owner_id="u9"))
        for event in page(one_by_one):
            apply_customer_event(session, event)
        apply_customer_events(session, page(at_once))
        session.commit()
        expected = [tuple(row(session, customer)) for customer in one_by_one]
        assert [tuple(row(session, customer)) for customer in at_once] == expected
        assert expected == [
            ("archived", "u1", None),
            ("active", None, None),
            ("active", "u9", None),
            ("active", "u4", None),
        ]
        apply_customer_events(session, page(at_once)[:2])  # older than stored: no change
        assert tuple(row(session, at_once[0])) == ("archived", "u1", None)
        session.rollback()
