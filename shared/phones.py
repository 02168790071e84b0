"""Phone numbers to E.164 with the ``phonenumbers`` library: one reading of what a person
types ("138 0013 8000", "+86 138-0013-8000", "0086…"), shared by every service that stores a
number. A national number is read as a number of ``region`` (ISO 3166-1 alpha-2)."""

from __future__ import annotations

import phonenumbers

#: the region of a national number when the caller knows none better
DEFAULT_REGION = "CN"


def normalise_phone(raw: str, region: str = DEFAULT_REGION) -> str:
    """``raw`` as E.164; national numbers are read as numbers of ``region`` (an unknown
    region is ``DEFAULT_REGION``). Raises ``ValueError`` with a message for the caller when
    it is not a valid number."""
    region = region if region in phonenumbers.SUPPORTED_REGIONS else DEFAULT_REGION
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError("Not a phone number.") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(
            "Not a valid phone number"
            + ("" if raw.strip().startswith("+") else f" in {region}")
            + "; use international form, like +8613812345678."
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
