"""Personal data in the log is sealed under the customer's key; erasing the customer destroys
the key (crypto-shredding, DESIGN §2), scrubs the read model, and leaves nothing personal in
any table of the customers schema; a rebuild gives the same read model."""

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from services.customers.domain import ERASED_NAME
from services.customers.events import registry, sealed_values
from services.customers.tests.conftest import (
    actor_of,
    as_,
    principal,
    unique_email,
    unique_mobile,
)
from services.customers.tests.test_rebuild import rebuild_and_compare
from shared.errors import Forbidden, RuleViolation
from shared.eventstore import EventStore


def _tables(engine):
    with engine.connect() as conn:
        return (
            conn.execute(
                text(
                    "SELECT table_name FROM information_schema.tables "
                    "WHERE table_schema = 'customers' AND table_type = 'BASE TABLE' "
                    "ORDER BY table_name"
                )
            )
            .scalars()
            .all()
        )


def _everything(engine):
    """Every row of every table of the customers schema, as PostgreSQL prints it."""
    with engine.connect() as conn:
        return {
            table: conn.execute(
                text(f"SELECT string_agg(t::text, ' ') FROM \"{table}\" t")
            ).scalar()
            or ""
            for table in _tables(engine)
        }


def _found(values, engine):
    return {
        (value, table)
        for table, dump in _everything(engine).items()
        for value in values
        if value in dump
    }


def _raw_log(engine):
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT string_agg(payload::text || ' ' || metadata::text, ' ') FROM events")
        ).scalar()


@pytest.fixture
def attribute_key(customers, admin):
    key = f"wechat_{uuid.uuid4().hex[:6]}"
    customers.define_attribute(actor=actor_of(admin), key=key, type="string", label="WeChat")
    return key


def test_personal_data_is_sealed_and_erasure_leaves_none(
    customers, customers_engine, admin, attribute_key
):
    marker = uuid.uuid4().hex[:10]
    name, new_name = f"Erin {marker}", f"艾琳{marker}"
    company = f"Erin Holdings {marker}"
    email, other_email = unique_email(f"erin{marker}"), unique_email(f"erin2{marker}")
    mobile, other_mobile = unique_mobile(), unique_mobile()
    street, notes = f"{marker} Nanjing Road", f"allergic to {marker}"
    consent_note, wechat = f"signed form {marker}", f"wx_{marker}"
    external_id = f"crm-{marker}"
    created = customers.create_customer(
        **as_(admin),
        data={
            "name": name,
            "company": company,
            "emails": [{"address": email}],
            "phones": [{"number": mobile}],
            "addresses": [{"country": "CN", "city": "上海", "street": street}],
            "preferences": {"notes": notes, "brands": ["Moutai"]},
            "attributes": {attribute_key: wechat},
            "external_id": external_id,
            "tags": ["vip"],
        },
    )
    customer_id = created["id"]
    customers.update_customer(
        **as_(admin), customer_id=customer_id, changes={"name": new_name}, expected_version=1
    )
    customers.record_consent(
        **as_(admin),
        customer_id=customer_id,
        channel="email",
        granted=True,
        method="paper",
        note=consent_note,
    )
    duplicate = customers.create_customer(
        **as_(admin),
        data={"name": f"Erin dup {marker}", "emails": [{"address": other_email}],
              "phones": [{"number": other_mobile}]},
    )  # fmt: skip
    customers.merge_customers(
        actor=actor_of(admin), target_id=customer_id, source_id=duplicate["id"]
    )
    personal = [
        name, new_name, company, email.split("@")[0], other_email.split("@")[0], mobile,
        other_mobile, street, notes, consent_note, wechat, external_id, f"Erin dup {marker}",
    ]  # fmt: skip

    # Sealed from the start: nothing personal in the raw log, yet the service reads it all.
    log = _raw_log(customers_engine)
    assert [value for value in personal if value in log] == []
    with Session(customers_engine) as session:
        store = EventStore(session)
        events = store.load_stream(customer_id) + store.load_stream(duplicate["id"])
    for event in events:  # what a consumer receives matches the catalogue
        registry.validate_envelope(event.envelope("customers"))
    assert sum(1 for event in events for _ in sealed_values(event.payload)) > 10
    full = customers.get_customer(viewer=admin, customer_id=customer_id)
    assert full["name"] == new_name and full["attributes"] == {attribute_key: wechat}
    assert len(full["emails"]) == 2 and full["preferences"]["notes"] == notes

    # The scan below sees plain values where they are: in the read model, before erasure.
    assert {table for _, table in _found(personal, customers_engine)} == {"customers"}
    with pytest.raises(Forbidden):
        customers.erase_customer(actor=actor_of(principal("sales")), customer_id=customer_id)
    erased = customers.erase_customer(actor=actor_of(admin), customer_id=duplicate["id"])

    assert erased["id"] == customer_id and erased["status"] == "erased"  # the person, resolved
    assert (erased["name"], erased["company"], erased["external_id"]) == (ERASED_NAME, None, None)
    assert erased["emails"] == erased["phones"] == erased["addresses"] == []
    assert erased["attributes"] == {} and erased["preferences"]["notes"] is None
    assert erased["preferences"]["brands"] == ["Moutai"] and erased["tags"] == ["vip"]
    assert erased["erased_at"] and erased["consents"]["email"]["granted"] is True
    assert customers.get_customer(viewer=admin, customer_id=customer_id) == erased
    source = customers.get_customer(viewer=admin, customer_id=duplicate["id"])  # erased too
    assert (source["status"], source["name"], source["merged_into"]) == (
        "erased",
        ERASED_NAME,
        customer_id,
    )
    assert source["emails"] == source["phones"] == []
    assert customers.search_customers(viewer=admin, q=marker, status="all")["items"] == []
    assert customers.erase_customer(actor=actor_of(admin), customer_id=customer_id) == erased

    # No personal value of theirs anywhere in the customers schema.
    assert _found(personal, customers_engine) == set()
    with customers_engine.connect() as conn:
        keys = conn.execute(
            text("SELECT key, destroyed_at FROM subject_keys WHERE subject_id = ANY(:ids)"),
            {"ids": [customer_id, duplicate["id"]]},
        ).all()
    assert len(keys) == 2 and all(k is None and at is not None for k, at in keys)

    # The history stays, its personal values read as null.
    timeline = customers.timeline(viewer=admin, customer_id=customer_id, limit=200)["items"]
    assert timeline[0]["type"] == "customer.erased"
    registered = next(
        i
        for i in timeline
        if i["type"] == "customer.registered" and i["customer_id"] == customer_id
    )
    assert registered["changes"]["name"] is None and registered["changes"]["emails"] is None
    assert registered["changes"]["preferences"]["brands"] == ["Moutai"]
    history = customers.consent_history(viewer=admin, customer_id=customer_id)
    assert history[0]["note"] is None and history[0]["method"] == "paper"
    assert (
        customers.get_customer(viewer=admin, customer_id=customer_id, as_of=created["created_at"])[
            "name"
        ]
        == ERASED_NAME
    )
    exported = customers.export_customer_data(viewer=admin, customer_id=customer_id)
    assert [value for value in personal if value in str(exported)] == []

    # Nothing more happens to an erased customer.
    with pytest.raises(RuleViolation) as caught:
        customers.update_customer(
            **as_(admin),
            customer_id=customer_id,
            changes={"name": "Back"},
            expected_version=erased["version"],
        )
    assert caught.value.extra["code"] == "customer_erased"

    rebuild_and_compare(customers_engine)
    assert customers.get_customer(viewer=admin, customer_id=customer_id) == erased
    assert _found(personal, customers_engine) == set()
