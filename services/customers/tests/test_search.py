"""Search (DESIGN §5): Chinese names by their characters and pinyin, partial Latin names,
companies, e-mail and phone fragments; filters; keyset pages without duplicates or gaps.

Every test scopes its searches with a tag of its own: one database serves the whole run."""

import uuid

import pytest

from services.customers.tests.conftest import as_, principal, unique_mobile, unique_tag
from services.customers.tests.test_rebuild import rebuild_and_compare
from shared.errors import BadRequest


@pytest.fixture
def tag():
    return unique_tag()


def _ids(result):
    return [item["id"] for item in result["items"]]


def _found(customers, viewer, tag, **filters):
    return {
        item["name"]
        for item in customers.search_customers(viewer=viewer, tag=tag, **filters)["items"]
    }


def test_two_character_chinese_name(customers, admin, make_customer, tag):
    for name in ("穆琳", "穆琳琳", "琳穆", "穆 琳"):
        make_customer(name=name, tags=[tag])
    assert _found(customers, admin, tag, q="穆琳") == {"穆琳", "穆琳琳"}
    assert _found(customers, admin, tag, q="琳") == {"穆琳", "穆琳琳", "琳穆", "穆 琳"}
    assert _found(customers, admin, tag, q="琳琳") == {"穆琳琳"}


def test_pinyin_full_spelling_initials_and_syllables(customers, admin, make_customer, tag):
    make_customer(name="张伟", tags=[tag])
    make_customer(name="张小伟", tags=[tag])
    make_customer(name="王伟", tags=[tag])
    assert _found(customers, admin, tag, q="zhangwei") == {"张伟"}
    assert _found(customers, admin, tag, q="ZW") == {"张伟"}
    assert _found(customers, admin, tag, q="zxw") == {"张小伟"}
    assert _found(customers, admin, tag, q="xiaowei") == {"张小伟"}
    assert _found(customers, admin, tag, q="zhang wei") == {"张伟", "张小伟"}
    assert _found(customers, admin, tag, q="wei") == {"张伟", "张小伟", "王伟"}


def test_partial_pinyin(customers, admin, make_customer, tag, customers_engine):
    """A name's pinyin typed halfway: any contiguous run of syllables or of initials."""
    make_customer(name="穆琳琅", tags=[tag])
    make_customer(name="穆青", tags=[tag])
    for query in ("mulin", "linlang", "ml", "ll", "mulinlang", "mll", "lin"):
        assert _found(customers, admin, tag, q=query) == {"穆琳琅"}, query
    assert _found(customers, admin, tag, q="mu") == {"穆琳琅", "穆青"}
    assert _found(customers, admin, tag, q="mulang") == set()  # not contiguous
    rebuild_and_compare(customers_engine)  # a rebuild computes the same tokens
    assert _found(customers, admin, tag, q="linlang") == {"穆琳琅"}


def test_partial_latin_name_company_email_and_phone(customers, admin, make_customer, tag):
    marker = uuid.uuid4().hex[:8]
    mobile = unique_mobile()
    make_customer(
        name=f"Bartholomew {marker}",
        company="Globex Trading",
        emails=[{"address": f"bart.{marker}@globex.example"}],
        phones=[{"number": mobile}],
        tags=[tag],
    )
    make_customer(name="Lisa Simpson", company="腾讯科技", tags=[tag])
    bart = {f"Bartholomew {marker}"}
    assert _found(customers, admin, tag, q="tholo") == bart  # partial name (trigram)
    assert _found(customers, admin, tag, q="bartholomew") == bart  # a whole word (token)
    assert _found(customers, admin, tag, q="lobex trad") == bart  # company, both terms
    assert _found(customers, admin, tag, q=f"t.{marker}@glo") == bart  # part of an e-mail
    spaced = f"{mobile[3:7]} {mobile[7:]}"
    assert _found(customers, admin, tag, q=spaced) == bart  # part of a phone, typed spaced
    assert _found(customers, admin, tag, q=f"+86 {mobile[:5]}") == bart
    assert _found(customers, admin, tag, q="腾讯") == {"Lisa Simpson"}  # Chinese company
    assert _found(customers, admin, tag, q="simpson lisa") == {"Lisa Simpson"}
    assert _found(customers, admin, tag, q="nobody-like-this") == set()
    assert _found(customers, admin, tag, q="%") == set()  # a wildcard is text, and no name holds it
    make_customer(name="Agent 20071234", company="Room 4711 Ltd", tags=[tag])
    for digits in ("20071234", "4711"):  # digits alone may be a name or company, not a phone
        assert _found(customers, admin, tag, q=digits) == {"Agent 20071234"}, digits


def test_filters(customers, admin, make_customer, tag):
    owner = principal("sales")
    first = make_customer(name="Filter A", tags=[tag])
    second = make_customer(name="Filter B", tags=[tag], owner_id=owner["id"])
    third = make_customer(name="Filter C", tags=[tag])
    customers.record_consent(
        **as_(admin), customer_id=third["id"], channel="wechat", granted=True, method="web_form"
    )
    customers.record_consent(
        **as_(admin), customer_id=first["id"], channel="wechat", granted=False, method="phone"
    )
    assert _found(customers, admin, tag, owner_id=owner["id"]) == {"Filter B"}
    assert _found(customers, admin, tag, consent="wechat") == {"Filter C"}
    assert _found(customers, admin, tag, has_orders=True) == set()
    assert len(_found(customers, admin, tag, has_orders=False)) == 3
    window = _found(
        customers,
        admin,
        tag,
        created_from=second["created_at"],
        created_to=third["created_at"],
    )
    assert window == {"Filter B"}
    assert _found(customers, admin, tag, created_from=third["created_at"]) == {"Filter C"}
    customers.archive_customer(**as_(admin), customer_id=first["id"])
    assert _found(customers, admin, tag) == {"Filter B", "Filter C"}
    assert _found(customers, admin, tag, status="all") == {"Filter A", "Filter B", "Filter C"}
    assert _found(customers, owner, tag, status="all") == {"Filter B"}


@pytest.mark.parametrize(
    "sort", ["-created_at", "created_at", "name", "-name", "updated_at", "-updated_at"]
)
def test_keyset_pages_have_no_duplicates_or_gaps(customers, admin, make_customer, sort):
    tag = unique_tag()
    names = ["Kim", "Adams", "Kim", "Zhou", "周杰", "Baker", "Kim"]
    created = [make_customer(name=name, tags=[tag]) for name in names]
    customers.update_customer(  # updated_at order differs from created_at order
        **as_(admin), customer_id=created[0]["id"], changes={"source": "x"}, expected_version=1
    )
    everything = customers.search_customers(viewer=admin, tag=tag, sort=sort, limit=200)
    assert everything["next_cursor"] is None and len(everything["items"]) == len(names)
    key = sort.lstrip("-")
    expected = sorted(everything["items"], key=lambda c: (c[key], c["id"]))
    if sort.startswith("-"):
        expected.reverse()
    assert _ids(everything) == [c["id"] for c in expected]

    seen, cursor, pages = [], None, 0
    while True:
        page = customers.search_customers(viewer=admin, tag=tag, sort=sort, limit=2, cursor=cursor)
        seen.extend(_ids(page))
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == _ids(everything) and pages == 4


def test_a_cursor_is_for_its_own_sort(customers, admin, make_customer, tag):
    for _ in range(2):
        make_customer(tags=[tag])
    page = customers.search_customers(viewer=admin, tag=tag, limit=1)
    with pytest.raises(BadRequest) as caught:
        customers.search_customers(viewer=admin, tag=tag, sort="name", cursor=page["next_cursor"])
    assert "cursor" in caught.value.extra["errors"]
    with pytest.raises(BadRequest):
        customers.search_customers(viewer=admin, cursor="garbage!")
