"""Pure pieces: search tokens, phone numbers, attribute values, and argument validation in the
service's entrypoints (nameko's worker_factory: no database is touched)."""

import pytest
from nameko.testing.services import worker_factory

from services.customers.search import index_tokens, query_terms
from services.customers.service import CustomersService
from services.customers.validation import attribute_values, normalise_phone
from shared.errors import BadRequest

ACTOR = {"id": "u1", "kind": "user", "role": "admin"}
VIEWER = {"id": "u1", "role": "admin", "kind": "user"}


# -- tokens -------------------------------------------------------------------------------------


def test_chinese_names_get_ngrams_pinyin_and_initials():
    tokens = set(index_tokens("张伟", None))
    assert {"张", "伟", "张伟", "zhangwei", "zw", "zhang", "wei"} <= tokens
    assert {"穆", "琳", "穆琳", "mulin", "ml"} <= set(index_tokens("穆琳", None))
    three = set(index_tokens("欧阳娜娜", "阿里巴巴（中国）有限公司"))
    assert {"ouyangnana", "oynn", "yangnana", "欧阳", "娜娜", "阿里", "巴巴", "公司"} <= three


def test_partial_pinyin_runs_of_syllables_and_initials():
    tokens = set(index_tokens("穆琳琅", None))
    assert {"mulinlang", "mll", "mu", "lin", "lang"} <= tokens  # as before
    assert {"mulin", "linlang", "ml", "ll"} <= tokens  # typed halfway
    assert "mulang" not in tokens and "ml" in tokens  # runs are contiguous
    six = set(index_tokens("欧阳娜娜丽莎", None))
    assert {"yangnana", "nanali", "lisha", "ynnl", "nnls"} <= six
    long_name = set(index_tokens("爱新觉罗溥仪先生", None))  # beyond six: whole and given name
    assert {"aixinjueluopuyixiansheng", "xinjueluopuyixiansheng"} <= long_name
    assert "jueluo" not in long_name


def test_surname_readings_and_u_umlaut():
    assert {"zengguofan", "zgf", "cengguofan"} <= set(index_tokens("曾国藩", None))
    assert {"lvbu", "lubu", "lv", "lu"} <= set(index_tokens("吕布", None))


def test_latin_words_lower_cased_and_without_accents():
    full_width = "".join(chr(0xFEE0 + ord(char)) for char in "Trading")  # as IMEs type it
    tokens = set(index_tokens("José García-Smith", f"ACME {full_width}"))
    assert {"josé", "jose", "garcía", "garcia", "smith", "acme", "trading"} <= tokens
    assert index_tokens(None, None) == []


def test_query_terms():
    [cjk] = query_terms("穆琳")
    assert cjk.all_tokens == ["穆琳"] and cjk.recheck == "穆琳"
    [three] = query_terms("欧阳娜")
    assert three.all_tokens == ["欧阳", "阳娜"]
    [pinyin] = query_terms("ZW")
    assert pinyin.any_token == "zw" and pinyin.like is None  # too short for a trigram
    [word] = query_terms("smith")
    assert word.any_token == "smith" and word.like == "smith"
    [email] = query_terms("ann.lee@exa")
    assert email.any_token is None and email.like == "ann.lee@exa"
    [phone] = query_terms(" 138 1234-5678 ")
    assert phone.phone == "13812345678"
    [plus] = query_terms("+86 139")
    assert plus.phone == "+86139"
    assert len(query_terms("zhang wei")) == 2
    assert query_terms("  ") == []


# -- values -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "region", "e164"),
    [
        ("138 1234 5678", "CN", "+8613812345678"),
        ("+86 (138) 1234-5678", "US", "+8613812345678"),
        ("0086 13812345678", "CN", "+8613812345678"),
        ("020 7946 0018", "GB", "+442079460018"),
        ("(202) 555-0143", "US", "+12025550143"),
        ("010 6552 9988", "CN", "+861065529988"),
    ],
)
def test_phone_numbers_become_e164(raw, region, e164):
    assert normalise_phone(raw, region) == e164


@pytest.mark.parametrize("raw", ["12345", "abc", "+86 138", "+999 1234567"])
def test_invalid_phone_numbers(raw):
    with pytest.raises(ValueError):
        normalise_phone(raw, "CN")


def test_attribute_values():
    definitions = {
        "level": {"type": "choice", "options": ["gold", "silver"]},
        "visits": {"type": "number"},
        "since": {"type": "date"},
        "vip": {"type": "boolean"},
        "nick": {"type": "string"},
    }
    values, errors = attribute_values(
        definitions,
        {"level": "gold", "visits": 3.0, "since": "2026-02-03", "vip": False, "nick": " x "},
        allow_unset=False,
    )
    assert errors == {}
    assert values == {
        "level": "gold",
        "visits": 3,
        "since": "2026-02-03",
        "vip": False,
        "nick": "x",
    }
    values, errors = attribute_values(
        definitions,
        {
            "level": "bronze",
            "visits": "3",
            "since": "2026-02-30",
            "vip": 1,
            "other": 1,
            "nick": None,
        },
        allow_unset=False,
    )
    assert set(errors) == {"level", "visits", "since", "vip", "other", "nick"}
    assert attribute_values(definitions, {"nick": None}, allow_unset=True) == ({"nick": None}, {})


# -- argument validation in the entrypoints ----------------------------------------------------


def _create_errors(**data):
    service = worker_factory(CustomersService)
    data.setdefault("name", "张伟")
    with pytest.raises(BadRequest) as caught:
        service.create_customer(actor=ACTOR, viewer=VIEWER, data=data)
    assert not service.db.connection.called and not service.db.execute.called
    return caught.value.extra["errors"]


def test_bad_email():
    errors = _create_errors(emails=[{"address": "ann@example.com"}, {"address": "not-an-email"}])
    assert errors == {"emails": {"1": {"address": ["Not a valid e-mail address."]}}}


def test_bad_phone_is_read_in_the_country_of_the_primary_address():
    errors = _create_errors(phones=[{"number": "12345"}])
    assert list(errors["phones"]["0"]) == ["number"]
    errors = _create_errors(
        addresses=[{"country": "GB", "primary": True}], phones=[{"number": "138 1234 5678"}]
    )
    assert "in GB" in errors["phones"]["0"]["number"][0]


def test_bad_country_and_currency():
    errors = _create_errors(
        addresses=[{"country": "XX"}],
        preferences={"price_min": 100, "price_max": 200, "currency": "RMB"},
    )
    assert errors["addresses"] == {
        "0": {"country": ["Not an ISO 3166-1 alpha-2 country code, like CN."]}
    }
    assert errors["preferences"]["currency"][0] == "Not an ISO 4217 currency code, like CNY."


def test_a_preferred_price_has_a_ceiling():
    """10**30 was taken into the event log, where 64-bit and JavaScript readers misread it."""
    errors = _create_errors(preferences={"price_min": 10**30, "currency": "CNY"})
    assert errors["preferences"]["price_min"] == [
        "Must be greater than or equal to 0 and less than or equal to 10000000000000."
    ]


def test_every_bad_field_at_once_keyed_by_the_data_fields():
    errors = _create_errors(
        name="",
        kind="robot",
        emails=[{"address": "x@y.cn"}, {"address": "X@Y.CN"}],
        preferences={"price_min": 100},
        tags=["no spaces please"],
        language="chinese",
        status="active",
    )
    assert set(errors) == {"name", "kind", "emails", "preferences", "tags", "language", "status"}
    assert errors["preferences"] == {"currency": ["Required when a price is given."]}
    assert errors["status"] == ["Unknown field."]


def test_update_refuses_read_only_and_unknown_fields():
    service = worker_factory(CustomersService)
    with pytest.raises(BadRequest) as caught:
        service.update_customer(
            actor=ACTOR,
            viewer=VIEWER,
            customer_id="0b7ad9a4-3f5e-4c4e-8a59-5bb1b8a2a001",
            changes={"status": "active", "owner_id": "u2", "version": 9, "tags": ["a"]},
            expected_version=1,
        )
    assert caught.value.extra["errors"] == {
        name: ["Unknown field."] for name in ("status", "owner_id", "version", "tags")
    }
    with pytest.raises(BadRequest) as caught:
        service.update_customer(
            actor=ACTOR, viewer=VIEWER, customer_id="nope", changes={}, expected_version=None
        )
    assert set(caught.value.extra["errors"]) == {"customer_id", "expected_version"}
    assert not service.db.connection.called


def test_search_and_attribute_arguments():
    service = worker_factory(CustomersService)
    with pytest.raises(BadRequest) as caught:
        service.search_customers(viewer=VIEWER, limit=500, sort="age", status="gone")
    assert set(caught.value.extra["errors"]) == {"limit", "sort", "status"}
    with pytest.raises(BadRequest) as caught:
        service.define_attribute(actor=ACTOR, key="Level", type="choice", label="L")
    assert set(caught.value.extra["errors"]) == {"key", "options"}
    with pytest.raises(BadRequest) as caught:
        service.search_customers(viewer={"id": "x", "role": "guest"})
    assert "viewer" in caught.value.extra["errors"]
