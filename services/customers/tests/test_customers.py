"""Customer records through the running service: create, read, edit with versions, duplicates,
roles, consents, attributes, archive, timeline and as_of."""

import time
import uuid

import pytest
from sqlalchemy import text

from services.customers.tests.conftest import (
    actor_of,
    as_,
    principal,
    unique_email,
    unique_mobile,
    unique_tag,
)
from shared.errors import BadRequest, ConcurrencyError, Conflict, Forbidden, NotFound, RuleViolation


def _event_count(engine, customer_id):
    with engine.connect() as conn:
        return conn.execute(
            text("SELECT count(*) FROM events WHERE stream_id = :id"), {"id": customer_id}
        ).scalar()


def test_create_normalises_and_reads_back(customers, admin):
    email, mobile = unique_email("ann"), unique_mobile()
    created = customers.create_customer(
        **as_(admin),
        data={
            "kind": "person",
            "name": "  李娜  ",
            "company": "华为",
            "emails": [{"address": email, "label": "work"}],
            "phones": [
                {"number": mobile, "label": "mobile"},
                {"number": "+44 20 7946 0018", "label": "work", "primary": True},
            ],
            "addresses": [{"country": "cn", "city": "深圳", "postal_code": "518000"}],
            "preferred_channel": "wechat",
            "language": "en-us",
            "preferences": {"categories": ["tea"], "price_min": 1000, "currency": "cny"},
            "tags": ["VIP"],
            "source": "trade fair",
            "external_id": f"erp-{uuid.uuid4().hex[:8]}",
        },
    )
    local, _, domain = email.partition("@")
    assert created["name"] == "李娜"
    assert created["emails"] == [
        {"address": f"{local}@{domain.lower()}", "label": "work", "primary": True}
    ]
    assert [p["number"] for p in created["phones"]] == [f"+86{mobile}", "+442079460018"]
    assert [p["primary"] for p in created["phones"]] == [False, True]
    assert created["addresses"][0]["country"] == "CN" and created["addresses"][0]["primary"]
    assert created["language"] == "en-US" and created["tags"] == ["vip"]
    assert created["preferences"]["currency"] == "CNY"
    assert created["status"] == "active" and created["version"] == 1
    assert created["order_count"] == 0 and created["contact_hidden"] is False
    assert created["owner_id"] is None and created["merged_into"] is None
    assert customers.get_customer(viewer=admin, customer_id=created["id"]) == created


def test_unknown_customer_and_bad_ids(customers, admin):
    with pytest.raises(NotFound):
        customers.get_customer(viewer=admin, customer_id=str(uuid.uuid4()))
    with pytest.raises(BadRequest):
        customers.get_customer(viewer=admin, customer_id="42")


def test_duplicate_email_or_phone_conflicts_unless_forced(customers, admin, make_customer):
    first = make_customer()
    email, phone = first["emails"][0]["address"], first["phones"][0]["number"]
    with pytest.raises(Conflict) as caught:
        make_customer(emails=[{"address": email.upper()}])
    assert caught.value.extra["code"] == "duplicate"
    assert caught.value.extra["field"] == "email"
    assert caught.value.extra["existing_id"] == first["id"]
    with pytest.raises(Conflict) as caught:
        make_customer(phones=[{"number": phone}])
    assert (caught.value.extra["field"], caught.value.extra["existing_id"]) == (
        "phone",
        first["id"],
    )
    forced = make_customer(emails=[{"address": email}], force=True)
    assert forced["id"] != first["id"]

    external_id = f"ext-{uuid.uuid4().hex[:8]}"
    make_customer(external_id=external_id)
    for force in (False, True):  # an external id is never forced
        with pytest.raises(Conflict) as caught:
            make_customer(external_id=external_id, force=force)
        assert caught.value.extra["field"] == "external_id"

    # An archived customer's contacts are free.
    for holder in (first, forced):
        customers.archive_customer(**as_(admin), customer_id=holder["id"])
    assert make_customer(emails=[{"address": email}])["status"] == "active"


def test_stale_edit_changes_nothing(customers, admin, make_customer, customers_engine):
    created = make_customer(name="Stale Test")
    customer_id = created["id"]
    current = customers.update_customer(
        **as_(admin),
        customer_id=customer_id,
        changes={"name": "Fresh Name"},
        expected_version=created["version"],
    )
    assert current["version"] == 2 and current["name"] == "Fresh Name"
    events = _event_count(customers_engine, customer_id)
    with pytest.raises(ConcurrencyError) as caught:
        customers.update_customer(
            **as_(admin),
            customer_id=customer_id,
            changes={"name": "Lost Update", "phones": []},
            expected_version=1,
        )
    assert caught.value.extra["actual_version"] == 2
    assert customers.get_customer(viewer=admin, customer_id=customer_id) == current
    assert _event_count(customers_engine, customer_id) == events
    for call in (
        lambda: customers.set_tags(
            **as_(admin), customer_id=customer_id, add=["x"], expected_version=1
        ),
        lambda: customers.archive_customer(
            **as_(admin), customer_id=customer_id, expected_version=1
        ),
    ):
        with pytest.raises(ConcurrencyError):
            call()
    assert _event_count(customers_engine, customer_id) == events


def test_update_changed_fields_only_and_phone_region(customers, admin, make_customer):
    created = make_customer(addresses=[{"country": "CN"}])
    same = customers.update_customer(
        **as_(admin),
        customer_id=created["id"],
        changes={"name": created["name"]},
        expected_version=1,
    )
    assert same["version"] == 1  # nothing changed, nothing recorded
    updated = customers.update_customer(
        **as_(admin),
        customer_id=created["id"],
        changes={
            "addresses": [{"country": "GB", "city": "London"}],
            "phones": [{"number": "020 7946 0018"}],
            "company": "",
        },
        expected_version=1,
    )
    assert updated["phones"] == [{"number": "+442079460018", "label": "mobile", "primary": True}]
    assert updated["company"] is None and updated["version"] == 2
    with pytest.raises(BadRequest) as caught:
        customers.update_customer(
            **as_(admin),
            customer_id=created["id"],
            changes={"phones": [{"number": "138 1234 5678"}]},  # a Chinese mobile, read in GB
            expected_version=2,
        )
    assert list(caught.value.extra["errors"]) == ["phones"]


def test_sales_see_and_change_only_their_own(customers, admin, make_customer):
    alice, bob = principal("sales"), principal("sales")
    mine = make_customer(by=alice)
    assert mine["owner_id"] == alice["id"]
    with pytest.raises(Forbidden):
        make_customer(by=alice, owner_id=bob["id"])
    for attempt in (
        lambda: customers.get_customer(viewer=bob, customer_id=mine["id"]),
        lambda: customers.update_customer(
            **as_(bob), customer_id=mine["id"], changes={"name": "x"}, expected_version=1
        ),
        lambda: customers.timeline(viewer=bob, customer_id=mine["id"]),
        lambda: customers.set_tags(**as_(bob), customer_id=mine["id"], add=["x"]),
        lambda: customers.export_customer_data(viewer=bob, customer_id=mine["id"]),
    ):
        with pytest.raises(NotFound):
            attempt()
    tag = unique_tag()
    customers.set_tags(**as_(alice), customer_id=mine["id"], add=[tag])
    assert [c["id"] for c in customers.search_customers(viewer=alice, tag=tag)["items"]] == [
        mine["id"]
    ]
    assert customers.search_customers(viewer=bob, tag=tag)["items"] == []
    with pytest.raises(Forbidden):  # only admins and managers assign
        customers.assign_owner(**as_(alice), customer_id=mine["id"], owner_id=bob["id"])
    manager = principal("manager")
    moved = customers.assign_owner(**as_(manager), customer_id=mine["id"], owner_id=bob["id"])
    assert moved["owner_id"] == bob["id"]
    assert customers.get_customer(viewer=bob, customer_id=mine["id"])["id"] == mine["id"]
    with pytest.raises(NotFound):
        customers.get_customer(viewer=alice, customer_id=mine["id"])
    # An admin's customer without an owner is nobody's: no sales user sees it.
    unowned = make_customer()
    with pytest.raises(NotFound):
        customers.get_customer(viewer=bob, customer_id=unowned["id"])


def test_a_duplicate_owned_by_another_sales_user_does_not_leak_its_id(make_customer):
    alice, bob = principal("sales"), principal("sales")
    theirs = make_customer(by=alice)
    with pytest.raises(Conflict) as caught:
        make_customer(by=bob, emails=theirs["emails"])
    assert caught.value.extra["field"] == "email" and caught.value.extra["existing_id"] is None


def test_a_query_of_nothing_searchable_finds_nothing(customers, admin, make_customer):
    """``%``, ``_`` or ``\\`` hold no term to search by: they match no customer, where they
    matched every one (as if no query had been given)."""
    tag = unique_tag()
    make_customer(tags=[tag])
    assert len(customers.search_customers(viewer=admin, tag=tag, q="  ")["items"]) == 1
    for q in ("%", "_", "\\", "-"):
        assert customers.search_customers(viewer=admin, tag=tag, q=q)["items"] == [], q


def test_analysts_read_without_contact_details(customers, admin, make_customer):
    analyst = principal("analyst")
    tag = unique_tag()
    created = make_customer(addresses=[{"country": "CN", "city": "上海"}], tags=[tag])
    seen = customers.get_customer(viewer=analyst, customer_id=created["id"])
    assert seen["emails"] == seen["phones"] == seen["addresses"] == []
    assert seen["contact_hidden"] is True and seen["name"] == created["name"]
    [listed] = customers.search_customers(viewer=analyst, tag=tag)["items"]
    assert listed == seen
    # Nor can they probe for them.
    email, mobile = created["emails"][0]["address"], created["phones"][0]["number"]
    for q in (email, email.split("@")[0], mobile, mobile[3:]):
        assert customers.search_customers(viewer=analyst, tag=tag, q=q)["items"] == []
        assert customers.search_customers(viewer=admin, tag=tag, q=q)["items"]
    [event] = customers.timeline(viewer=analyst, customer_id=created["id"])["items"]
    assert not {"emails", "phones", "addresses"} & set(event["changes"])
    assert event["changes"]["name"] == created["name"]
    exported = customers.export_customer_data(viewer=analyst, customer_id=created["id"])
    assert created["emails"][0]["address"] not in str(exported)
    with pytest.raises(Forbidden):
        make_customer(by=analyst)
    with pytest.raises(Forbidden):
        customers.record_consent(
            **as_(analyst), customer_id=created["id"], channel="sms", granted=True, method="phone"
        )


def test_consent_history(customers, admin, make_customer):
    created = make_customer()
    agent = principal("sales")
    customers.assign_owner(**as_(admin), customer_id=created["id"], owner_id=agent["id"])
    customers.record_consent(
        **as_(agent),
        customer_id=created["id"],
        channel="email",
        granted=True,
        method="web_form",
        note="newsletter box ticked",
    )
    withdrawn = customers.record_consent(
        **as_(agent),
        customer_id=created["id"],
        channel="email",
        granted=False,
        method="phone",
        note="called to unsubscribe",
    )
    sms = customers.record_consent(
        **as_(admin), customer_id=created["id"], channel="sms", granted=True, method="paper"
    )
    assert withdrawn["consents"]["email"]["granted"] is False
    assert sms["consents"]["sms"] == {
        "granted": True,
        "method": "paper",
        "at": sms["updated_at"],
    }
    history = customers.consent_history(viewer=admin, customer_id=created["id"])
    assert [(h["channel"], h["granted"], h["method"]) for h in history] == [
        ("sms", True, "paper"),
        ("email", False, "phone"),
        ("email", True, "web_form"),
    ]
    assert history[1]["note"] == "called to unsubscribe"
    assert history[1]["recorded_by"] == agent["id"] and history[0]["recorded_by"] == admin["id"]
    with pytest.raises(BadRequest) as caught:
        customers.record_consent(
            **as_(admin), customer_id=created["id"], channel="fax", granted=True, method="magic"
        )
    assert set(caught.value.extra["errors"]) == {"channel", "method"}


def test_attributes(customers, admin, make_customer):
    key = f"level_{uuid.uuid4().hex[:6]}"
    defined = customers.define_attribute(
        actor=actor_of(admin), key=key, type="choice", label="Level", options=["gold", "silver"]
    )
    assert defined["key"] == key and defined["options"] == ["gold", "silver"]
    assert defined["version"] == 1
    relabelled = customers.define_attribute(
        actor=actor_of(admin), key=key, type="choice", label="等级", options=["gold", "silver"]
    )
    assert relabelled["label"] == "等级" and relabelled["version"] == 2
    assert key in [d["key"] for d in customers.list_attributes()]
    with pytest.raises(RuleViolation):
        customers.define_attribute(actor=actor_of(admin), key=key, type="number", label="L")
    with pytest.raises(Forbidden):
        customers.define_attribute(
            actor=actor_of(principal("manager")), key="x_" + key, type="number", label="L"
        )
    created = make_customer(attributes={key: "gold"})
    assert created["attributes"] == {key: "gold"}
    with pytest.raises(BadRequest) as caught:
        customers.set_attributes(
            **as_(admin), customer_id=created["id"], values={key: "bronze", "nope": 1}
        )
    assert set(caught.value.extra["errors"]) == {key, "nope"}
    with pytest.raises(BadRequest) as caught:
        make_customer(attributes={key: "bronze"})
    assert list(caught.value.extra["errors"]) == ["attributes"]
    removed = customers.set_attributes(
        **as_(admin), customer_id=created["id"], values={key: None}, expected_version=1
    )
    assert removed["attributes"] == {} and removed["version"] == 2


def test_archive_and_restore(customers, admin, make_customer):
    tag = unique_tag()
    created = make_customer(tags=[tag])
    archived = customers.archive_customer(**as_(admin), customer_id=created["id"])
    assert archived["status"] == "archived"
    assert customers.search_customers(viewer=admin, tag=tag)["items"] == []
    [found] = customers.search_customers(viewer=admin, tag=tag, status="archived")["items"]
    assert found["id"] == created["id"]
    assert customers.archive_customer(**as_(admin), customer_id=created["id"]) == archived
    restored = customers.restore_customer(**as_(admin), customer_id=created["id"])
    assert restored["status"] == "active" and restored["version"] == 3


def test_timeline_and_as_of(customers, admin, make_customer):
    created = make_customer(name="Version One", company="Old Co")
    time.sleep(0.01)
    v1_time = customers.get_customer(viewer=admin, customer_id=created["id"])["updated_at"]
    customers.update_customer(
        **as_(admin),
        customer_id=created["id"],
        changes={"name": "Version Two", "preferences": {"notes": "likes green tea"}},
        expected_version=1,
    )
    customers.set_tags(**as_(admin), customer_id=created["id"], add=["later"])
    now = customers.get_customer(viewer=admin, customer_id=created["id"])

    then = customers.get_customer(viewer=admin, customer_id=created["id"], as_of=v1_time)
    assert then["name"] == "Version One" and then["tags"] == [] and then["version"] == 1
    assert then["preferences"]["notes"] is None
    assert (
        customers.get_customer(viewer=admin, customer_id=created["id"], as_of=now["updated_at"])
        == now
    )
    with pytest.raises(NotFound):
        customers.get_customer(
            viewer=admin, customer_id=created["id"], as_of="2000-01-01T00:00:00Z"
        )

    page = customers.timeline(viewer=admin, customer_id=created["id"], limit=2)
    assert [item["type"] for item in page["items"]] == [
        "customer.tagged",
        "customer.preferences_updated",
    ]
    rest = customers.timeline(viewer=admin, customer_id=created["id"], cursor=page["next_cursor"])
    assert [item["type"] for item in rest["items"]] == ["customer.updated", "customer.registered"]
    assert rest["next_cursor"] is None
    updated = rest["items"][0]
    assert updated["changes"] == {"name": "Version Two"}
    assert updated["actor_id"] == admin["id"] and updated["actor_kind"] == "user"
    assert updated["request_id"].startswith("req-") and updated["version"] == 2
    assert page["items"][1]["changes"] == {"notes": "likes green tea"}
    assert rest["items"][1]["changes"]["name"] == "Version One"


def test_concurrent_creates_with_one_email_make_one_customer(customers_engine, admin):
    """Six transactions create a customer with the same address at once (the command layer,
    each on a connection of its own): one wins, the others see it and conflict."""
    import eventlet
    from sqlalchemy.orm import Session

    from services.customers.commands import CustomerCommands
    from services.customers.schemas import CustomerData
    from services.customers.uow import UnitOfWork

    data = CustomerData().load({"name": "Racer", "emails": [{"address": unique_email("race")}]})
    started = eventlet.event.Event()

    def create(_):
        with Session(customers_engine) as session:
            uow = UnitOfWork(session, {"actor_id": admin["id"], "actor_kind": "user"})
            started.wait()
            try:
                customer_id = CustomerCommands(uow).create(admin, data, force=False)
                uow.commit()
                return customer_id
            except Conflict as exc:
                uow.rollback()
                return exc

    pool = eventlet.GreenPool(6)
    running = [pool.spawn(create, n) for n in range(6)]
    eventlet.sleep(0)
    started.send(True)
    results = [thread.wait() for thread in running]
    created = [r for r in results if isinstance(r, str)]
    conflicts = [r for r in results if isinstance(r, Conflict)]
    assert len(created) == 1 and len(conflicts) == 5
    assert {c.extra["existing_id"] for c in conflicts} == set(created)


def test_external_id_stays_unique_on_update(customers, admin, make_customer):
    external_id = f"ext-{uuid.uuid4().hex[:8]}"
    holder = make_customer(external_id=external_id)
    other = make_customer()
    with pytest.raises(Conflict) as caught:
        customers.update_customer(
            **as_(admin),
            customer_id=other["id"],
            changes={"external_id": external_id},
            expected_version=1,
        )
    assert caught.value.extra["existing_id"] == holder["id"]
    assert customers.get_customer(viewer=admin, customer_id=other["id"]) == other


def test_privacy_export_holds_everything(customers, admin, make_customer):
    key = f"vip_{uuid.uuid4().hex[:6]}"
    customers.define_attribute(actor=actor_of(admin), key=key, type="boolean", label="VIP")
    created = make_customer(
        attributes={key: True},
        preferences={"notes": "prefers calls after 6pm"},
        consents=[{"channel": "email", "granted": True, "method": "web_form", "note": "form 7"}],
    )
    source = make_customer(name="Old Record")
    customers.merge_customers(
        actor=actor_of(admin), target_id=created["id"], source_id=source["id"]
    )
    exported = customers.export_customer_data(viewer=admin, customer_id=created["id"])
    assert exported["customer"] == customers.get_customer(viewer=admin, customer_id=created["id"])
    assert [r["id"] for r in exported["merged_records"]] == [source["id"]]
    assert exported["merged_records"][0]["name"] == "Old Record"
    assert exported["attributes"] == [
        {"key": key, "label": "VIP", "type": "boolean", "value": True}
    ]
    assert exported["consent_history"][0]["note"] == "form 7"
    assert {item["type"] for item in exported["timeline"]} >= {
        "customer.registered",
        "customer.consent_recorded",
        "customer.merged",
    }
    assert {item["customer_id"] for item in exported["timeline"]} == {created["id"], source["id"]}
    assert exported["exported_at"].endswith("Z")
    import json

    assert json.loads(json.dumps(exported)) == exported  # plain JSON all the way down
