"""Merging duplicates: the target takes what it lacks, the source's id redirects to it, both
histories are kept, and undoing the merge restores both as they were."""

import pytest

from services.customers.tests.conftest import (
    actor_of,
    as_,
    principal,
    unique_email,
    unique_mobile,
)
from shared.errors import BadRequest, Forbidden, NotFound, RuleViolation


def _comparable(customer):
    """A record without what any change moves (its version and time of last change)."""
    return {k: v for k, v in customer.items() if k not in ("version", "updated_at")}


@pytest.fixture
def pair(customers, admin, make_customer):
    shared_email = unique_email("dup")
    target = make_customer(
        name="王芳",
        emails=[{"address": shared_email, "label": "work"}],
        phones=[],
        tags=["vip"],
        preferences={"categories": ["tea"]},
    )
    source = make_customer(
        name="王芳 (duplicate)",
        company="ACME",
        emails=[{"address": shared_email}, {"address": unique_email("second")}],
        phones=[{"number": unique_mobile()}],
        addresses=[{"country": "CN", "city": "北京"}],
        tags=["b2b"],
        preferences={"categories": ["tea", "wine"], "price_min": 100, "currency": "CNY"},
        consents=[{"channel": "sms", "granted": True, "method": "paper"}],
        force=True,
    )
    customers.update_customer(
        **as_(admin), customer_id=source["id"], changes={"source": "fair"}, expected_version=2
    )
    target = customers.get_customer(viewer=admin, customer_id=target["id"])
    source = customers.get_customer(viewer=admin, customer_id=source["id"])
    return target, source


def test_merge_redirects_and_undo_restores_both(customers, admin, pair):
    target, source = pair
    merged = customers.merge_customers(
        actor=actor_of(admin), target_id=target["id"], source_id=source["id"]
    )
    result = merged["customer"]
    assert result["id"] == target["id"] and result["name"] == "王芳"
    assert [e["address"] for e in result["emails"]] == [
        target["emails"][0]["address"],
        source["emails"][1]["address"],
    ]
    assert [e["primary"] for e in result["emails"]] == [True, False]
    assert result["phones"] == source["phones"] and result["addresses"] == source["addresses"]
    assert result["tags"] == ["b2b", "vip"] and result["company"] == "ACME"
    assert result["preferences"]["categories"] == ["tea", "wine"]
    assert result["preferences"]["price_min"] == 100 and result["source"] == "fair"
    assert result["consents"]["sms"] == source["consents"]["sms"]

    redirected = customers.get_customer(viewer=admin, customer_id=source["id"])
    assert redirected["id"] == target["id"] and redirected["redirected_from"] == source["id"]
    assert customers.search_customers(viewer=admin, q=source["emails"][1]["address"])["items"] == [
        result
    ]
    merged_sources = customers.search_customers(viewer=admin, status="merged", q="duplicate")
    assert source["id"] in [c["id"] for c in merged_sources["items"]]

    # Both histories, newest first, under the target's id (or the source's, redirected).
    timeline = customers.timeline(viewer=admin, customer_id=source["id"], limit=200)["items"]
    streams = {(item["customer_id"], item["type"]) for item in timeline}
    assert (target["id"], "customer.merged") in streams
    assert (source["id"], "customer.merged") in streams
    assert (source["id"], "customer.registered") in streams
    assert (target["id"], "customer.registered") in streams
    assert timeline[0]["type"] == "customer.merged"
    history = customers.consent_history(viewer=admin, customer_id=target["id"])
    assert [(h["customer_id"], h["channel"]) for h in history] == [(source["id"], "sms")]

    # The source cannot change any more; it is merged.
    with pytest.raises(RuleViolation) as caught:
        customers.set_tags(**as_(admin), customer_id=source["id"], add=["x"])
    assert caught.value.extra["code"] == "customer_merged"
    with pytest.raises(RuleViolation):
        customers.merge_customers(
            actor=actor_of(admin), target_id=target["id"], source_id=source["id"]
        )

    undone = customers.undo_merge(actor=actor_of(admin), merge_id=merged["merge_id"])
    assert _comparable(undone["target"]) == _comparable(target)
    assert _comparable(undone["source"]) == _comparable(source)
    assert customers.get_customer(viewer=admin, customer_id=source["id"]) == undone["source"]
    assert undone["source"]["status"] == "active" and undone["source"]["merged_into"] is None
    with pytest.raises(RuleViolation) as caught:
        customers.undo_merge(actor=actor_of(admin), merge_id=merged["merge_id"])
    assert caught.value.extra["code"] == "merge_undone"
    # The timeline of each is its own again, merge and undo included.
    target_types = [
        item["type"] for item in customers.timeline(viewer=admin, customer_id=target["id"])["items"]
    ]
    assert target_types[:2] == ["customer.merge_undone", "customer.merged"]
    assert {
        item["customer_id"]
        for item in customers.timeline(viewer=admin, customer_id=target["id"])["items"]
    } == {target["id"]}


def test_as_of_before_a_merge_is_not_redirected(customers, admin, pair):
    target, source = pair
    customers.merge_customers(actor=actor_of(admin), target_id=target["id"], source_id=source["id"])
    before = customers.get_customer(
        viewer=admin, customer_id=source["id"], as_of=source["updated_at"]
    )
    assert before == source
    after = customers.get_customer(viewer=admin, customer_id=source["id"])
    assert "redirected_from" in after


def test_merge_rules(customers, admin, make_customer):
    alice = principal("sales")
    a, b = make_customer(by=alice), make_customer(by=alice)
    other = make_customer()
    with pytest.raises(BadRequest):
        customers.merge_customers(actor=actor_of(admin), target_id=a["id"], source_id=a["id"])
    with pytest.raises(NotFound):  # sales merge only their own customers
        customers.merge_customers(actor=actor_of(alice), target_id=a["id"], source_id=other["id"])
    merged = customers.merge_customers(actor=actor_of(alice), target_id=a["id"], source_id=b["id"])
    with pytest.raises(NotFound):
        customers.undo_merge(actor=actor_of(principal("sales")), merge_id=merged["merge_id"])
    with pytest.raises(Forbidden):
        customers.merge_customers(
            actor=actor_of(principal("analyst")), target_id=a["id"], source_id=other["id"]
        )
    with pytest.raises(NotFound):
        customers.undo_merge(actor=actor_of(admin), merge_id="6c1f8f62-2d3a-4b7c-9d5e-111111111111")
    customers.undo_merge(actor=actor_of(alice), merge_id=merged["merge_id"])


def test_chained_merges_redirect_to_the_last_target(customers, admin, make_customer):
    a, b, c = make_customer(), make_customer(), make_customer()
    customers.merge_customers(actor=actor_of(admin), target_id=b["id"], source_id=a["id"])
    second = customers.merge_customers(actor=actor_of(admin), target_id=c["id"], source_id=b["id"])
    got = customers.get_customer(viewer=admin, customer_id=a["id"])
    assert got["id"] == c["id"] and got["redirected_from"] == a["id"]
    assert {e["address"] for e in got["emails"]} == {x["emails"][0]["address"] for x in (a, b, c)}
    streams = {
        item["customer_id"]
        for item in customers.timeline(viewer=admin, customer_id=c["id"], limit=200)["items"]
    }
    assert streams == {a["id"], b["id"], c["id"]}
    customers.undo_merge(actor=actor_of(admin), merge_id=second["merge_id"])
    assert customers.get_customer(viewer=admin, customer_id=a["id"])["id"] == b["id"]
