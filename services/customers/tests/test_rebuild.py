"""The read models are a function of the event log: drop them, replay, get the same rows."""

import uuid

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from services.customers import tables
from services.customers.projections import rebuild
from services.customers.tests.conftest import actor_of, as_, principal, unique_email


def snapshot(engine):
    with engine.connect() as conn:
        return {
            table.name: sorted(
                (tuple(row) for row in conn.execute(select(table))), key=lambda r: str(r[0])
            )
            for table in tables.READ_MODELS
        }


def rebuild_and_compare(engine):
    """Rebuild the read models from the log and check they equal what they were."""
    live = snapshot(engine)
    with Session(engine) as session:
        replayed = rebuild(session)
        session.commit()
    assert snapshot(engine) == live
    return replayed, live


def _exercise(customers):
    """Every kind of event the read models fold."""
    admin, agent = principal("admin"), principal("sales")
    key = "level"
    customers.define_attribute(
        actor=actor_of(admin), key=key, type="choice", label="Level", options=["a", "b"]
    )
    customers.define_attribute(
        actor=actor_of(admin), key=key, type="choice", label="等级", options=["a", "b", "c"]
    )
    customers.define_attribute(actor=actor_of(admin), key="visits", type="number", label="V")
    one = customers.create_customer(
        **as_(agent),
        data={
            "name": "张伟",
            "company": "阿里巴巴",
            "emails": [{"address": unique_email()}],
            "phones": [{"number": "+8613900000001"}],
            "addresses": [{"country": "CN", "city": "杭州"}],
            "preferences": {"categories": ["tea"], "price_min": 1, "currency": "CNY"},
            "attributes": {key: "a"},
            "consents": [{"channel": "sms", "granted": True, "method": "paper", "note": "n"}],
            "external_id": f"x-{uuid.uuid4().hex[:6]}",
        },
    )
    customers.update_customer(
        **as_(agent),
        customer_id=one["id"],
        changes={"name": "张伟强", "preferences": {"notes": "tea"}, "language": "en"},
        expected_version=one["version"],
    )
    customers.set_tags(**as_(agent), customer_id=one["id"], add=["vip", "b2b"])
    customers.set_tags(**as_(agent), customer_id=one["id"], remove=["b2b"])
    customers.set_attributes(**as_(agent), customer_id=one["id"], values={key: "c", "visits": 3})
    customers.assign_owner(**as_(admin), customer_id=one["id"], owner_id=None)
    customers.record_consent(
        **as_(admin), customer_id=one["id"], channel="sms", granted=False, method="phone"
    )
    two = customers.create_customer(**as_(admin), data={"name": "Lisa", "kind": "company"})
    customers.archive_customer(**as_(admin), customer_id=two["id"])
    customers.restore_customer(**as_(admin), customer_id=two["id"])
    three = customers.create_customer(
        **as_(admin), data={"name": "Dup", "emails": [{"address": unique_email()}]}
    )
    merged = customers.merge_customers(
        actor=actor_of(admin), target_id=one["id"], source_id=three["id"]
    )
    customers.undo_merge(actor=actor_of(admin), merge_id=merged["merge_id"])
    customers.merge_customers(actor=actor_of(admin), target_id=one["id"], source_id=three["id"])
    four = customers.create_customer(**as_(admin), data={"name": "Gone", "phones": []})
    customers.erase_customer(actor=actor_of(admin), customer_id=four["id"])
    return one, two, three, four


def test_rebuild_equals_live_on_a_database_of_its_own(isolated_customers, isolated_engine):
    one, two, three, four = _exercise(isolated_customers)
    with isolated_engine.begin() as conn:  # orders will feed this: a rebuild carries it over
        conn.execute(text("UPDATE customers SET order_count = 2 WHERE id = :id"), {"id": two["id"]})
    live = snapshot(isolated_engine)
    assert len(live["customers"]) == 4
    assert len(live["merges"]) == 2 and len(live["attribute_definitions"]) == 2
    with isolated_engine.begin() as conn:  # a read model gone wrong
        conn.execute(text("UPDATE customers SET name = 'garbage', search_tokens = '{}'"))
        conn.execute(text("DELETE FROM merges"))
        conn.execute(text("DELETE FROM attribute_definitions WHERE key = 'visits'"))
    with Session(isolated_engine) as session:
        replayed = rebuild(session)
        session.commit()
    assert replayed > 20
    assert snapshot(isolated_engine) == live
    viewer = principal("admin")
    got = isolated_customers.get_customer(viewer=viewer, customer_id=three["id"])
    assert got["id"] == one["id"] and got["redirected_from"] == three["id"]
    assert isolated_customers.get_customer(viewer=viewer, customer_id=two["id"])["order_count"] == 2
    assert (
        isolated_customers.get_customer(viewer=viewer, customer_id=four["id"])["name"] == "(erased)"
    )
    assert (
        isolated_customers.search_customers(viewer=viewer, q="zwq")["items"][0]["id"] == one["id"]
    )


def test_rebuild_equals_live_on_the_shared_database(customers_engine, make_customer):
    make_customer(name="Rebuilt 李")
    rebuild_and_compare(customers_engine)


def test_a_failed_rebuild_changes_nothing(customers_engine, make_customer, monkeypatch):
    make_customer()
    live = snapshot(customers_engine)
    from services.customers import projections

    def broken(conn, event):
        raise RuntimeError("boom")

    monkeypatch.setattr(projections, "project_merge", broken)
    with Session(customers_engine) as session, pytest.raises(RuntimeError):
        rebuild(session)
    assert snapshot(customers_engine) == live
