"""The aggregate, pure: commands decide events, folding them gives the record (no database)."""

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from services.customers import domain
from services.customers.domain import ERASED_NAME, AttributeDefinition, Customer
from shared.errors import BadRequest, RuleViolation

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def fold(customer, changes, at=None):
    """Apply decided changes as if recorded (one second apart)."""
    for offset, (event_type, payload) in enumerate(changes):
        moment = (at or T0) + timedelta(seconds=customer.version + offset)
        customer.apply(event_type, payload, moment)
    return customer


def registered(customer_id, **data):
    data.setdefault("name", "张伟")
    data.setdefault("emails", [])
    data.setdefault("phones", [])
    data.setdefault("addresses", [])
    customer = Customer(customer_id)
    return fold(customer, Customer.register(customer_id, data, "admin-1"))


def test_register_folds_into_the_record():
    consents = [{"channel": "sms", "granted": True, "method": "paper", "note": "signed"}]
    customer = registered(
        "c1",
        emails=[{"address": "a@b.cn", "label": "work", "primary": True}],
        tags=["vip", "vip", "b2b"],
        preferences={"price_min": 100, "currency": "CNY"},
        consents=consents,
    )
    assert customer.exists and customer.version == 2 and customer.status == "active"
    assert customer.tags == ["b2b", "vip"]
    assert customer.preferences["price_min"] == 100 and customer.preferences["brands"] == []
    assert customer.consents["sms"]["granted"] and customer.consents["sms"]["method"] == "paper"


def test_a_price_needs_a_currency_and_an_ordered_range():
    with pytest.raises(BadRequest) as caught:
        Customer.register("c1", {"name": "x", "preferences": {"price_min": 5}}, None)
    assert caught.value.extra["errors"] == {
        "preferences": {"currency": ["Required when a price is given."]}
    }
    customer = registered("c2", preferences={"price_min": 5, "currency": "CNY"})
    with pytest.raises(BadRequest) as caught:
        customer.update({"preferences": {"price_max": 1}})
    assert "price_max" in caught.value.extra["errors"]["preferences"]


def test_update_records_only_what_changes():
    customer = registered("c1", company="ACME")
    assert customer.update({"name": "张伟", "company": "ACME"}) == []
    changes = customer.update({"name": "张伟强", "company": "ACME", "preferences": {"notes": "n"}})
    assert changes == [
        ("customer.updated", {"customer_id": "c1", "changes": {"name": "张伟强"}}),
        ("customer.preferences_updated", {"customer_id": "c1", "changes": {"notes": "n"}}),
    ]
    fold(customer, changes)
    assert customer.name == "张伟强" and customer.preferences["notes"] == "n"


def test_tags_and_attributes():
    customer = registered("c1", tags=["a"])
    with pytest.raises(BadRequest):
        customer.set_tags(["x"], ["x"])
    changes = customer.set_tags(["b"], ["a", "zzz"])
    assert changes == [
        ("customer.tagged", {"customer_id": "c1", "tags": ["b"]}),
        ("customer.untagged", {"customer_id": "c1", "tags": ["a"]}),
    ]
    fold(customer, changes)
    assert customer.tags == ["b"]
    fold(customer, customer.set_attributes({"level": 3, "vip": True}))
    assert customer.set_attributes({"level": 3}) == []
    fold(customer, customer.set_attributes({"level": None}))
    assert customer.attributes == {"vip": True}


def test_merge_then_undo_restores_both_exactly():
    target = registered(
        "t",
        emails=[{"address": "t@x.cn", "label": "work", "primary": True}],
        tags=["a"],
        preferences={"categories": ["tea"]},
    )
    source = registered(
        "s",
        company="ACME",
        emails=[
            {"address": "T@x.cn", "label": "home", "primary": True},
            {"address": "s@x.cn", "label": "home", "primary": False},
        ],
        phones=[{"number": "+8613900000001", "label": "mobile", "primary": True}],
        tags=["a", "b"],
        preferences={"categories": ["tea", "wine"], "price_min": 1, "currency": "CNY"},
        consents=[{"channel": "email", "granted": True, "method": "web_form"}],
    )
    fold(source, source.archive())
    source.attributes = {"level": 2}
    before = (target.record(), source.record())

    target_changes, source_changes = domain.merge(target, source, "m1")
    absorbed = target_changes[0][1]["absorbed"]
    assert [e["address"] for e in absorbed["emails"]] == ["s@x.cn"]  # t@x.cn differs in case only
    assert absorbed["emails"][0]["primary"] is False
    assert absorbed["phones"][0]["primary"] is True  # the target had none
    assert absorbed["tags"] == ["b"] and absorbed["categories"] == ["wine"]
    assert absorbed["company"] == "ACME" and absorbed["attributes"] == {"level": 2}
    fold(target, target_changes)
    fold(source, source_changes)
    assert source.status == "merged" and source.merged_into == "t"
    assert target.company == "ACME" and target.tags == ["a", "b"] and "email" in target.consents
    with pytest.raises(RuleViolation):
        source.update({"name": "x"})

    target_changes, source_changes = domain.undo_merge(target, source, "m1")
    fold(target, target_changes)
    fold(source, source_changes)
    after = (target.record(), source.record())
    for old, new in zip(before, after, strict=True):
        for key in ("version", "updated_at"):
            old.pop(key), new.pop(key)
        assert new == old
    assert source.status == "archived"
    with pytest.raises(RuleViolation):
        domain.undo_merge(target, source, "m1")


def test_merging_into_itself_is_refused():
    customer = registered("c1")
    with pytest.raises(BadRequest):
        domain.merge(customer, customer, "m")


def test_erase_leaves_placeholders_and_folds_the_same_from_unreadable_events():
    customer = registered("c1", company="ACME", emails=[{"address": "a@b.cn", "primary": True}])
    changes = customer.erase()
    fold(customer, changes)
    assert customer.erase() == []
    with pytest.raises(RuleViolation):
        customer.update({"name": "back"})
    # A rebuild opens the erased customer's sealed values as None.
    replay = Customer("c1")
    unreadable = {
        "customer_id": "c1",
        "kind": "person",
        "name": None,
        "company": None,
        "emails": None,
        "phones": None,
        "addresses": None,
        "preferred_channel": None,
        "language": "zh-CN",
        "preferences": domain.empty_preferences(),
        "tags": [],
        "attributes": None,
        "owner_id": None,
        "source": None,
        "external_id": None,
    }
    events = [
        SimpleNamespace(type="customer.registered", payload=unreadable, occurred_at=T0),
        SimpleNamespace(type="customer.erased", payload={"customer_id": "c1"}, occurred_at=T0),
    ]
    replay = Customer.from_events("c1", events)
    assert replay.name == customer.name == ERASED_NAME
    assert replay.emails == customer.emails == [] and replay.company is None


def test_attribute_definitions():
    definition = AttributeDefinition("level")
    changes = definition.define("choice", "Level", ["gold", "silver"])
    fold(definition, changes)
    assert definition.define("choice", "Level", ["gold", "silver"]) == []
    assert definition.define("choice", "等级", ["gold", "silver"]) == [
        ("attribute.updated", {"key": "level", "changes": {"label": "等级"}})
    ]
    with pytest.raises(RuleViolation) as caught:
        definition.define("number", "Level", None)
    assert caught.value.extra["code"] == "attribute_type_fixed"
