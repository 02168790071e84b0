"""ISO 4217: the codes in use and their minor units, and the validator every currency uses."""

import pytest
from marshmallow import Schema, ValidationError, fields

from services.analytics.schemas import RangeArgs
from services.orders.schemas import CURRENCY as ORDERS_CURRENCY
from services.payments.schemas import CURRENCY as PAYMENTS_CURRENCY
from shared.currencies import CURRENCIES, MINOR_UNITS, CurrencyCode


def test_codes_in_use_with_their_minor_units():
    assert {"CNY", "USD", "EUR", "JPY", "HKD", "KWD"} <= CURRENCIES
    assert not {"XYZ", "XTS", "XXX", "XAU", "CLF", "HRK"} & CURRENCIES
    assert (MINOR_UNITS["CNY"], MINOR_UNITS["JPY"], MINOR_UNITS["KWD"]) == (2, 0, 3)


class _Priced(Schema):
    currency = fields.String(validate=CurrencyCode())


@pytest.mark.parametrize("schema", [_Priced(), RangeArgs()])
def test_an_unknown_code_is_refused_by_every_schema_that_takes_one(schema):
    assert schema.load({"currency": "CNY"})["currency"] == "CNY"
    for code in ("XYZ", "cny", "CNYY"):
        with pytest.raises(ValidationError) as raised:
            schema.load({"currency": code})
        assert raised.value.messages == {"currency": ["Not an ISO 4217 currency code, like CNY."]}
    assert isinstance(ORDERS_CURRENCY, CurrencyCode) and isinstance(PAYMENTS_CURRENCY, CurrencyCode)
