"""Paging cursors: a round trip, and every kind of foreign cursor is a 400 naming ``cursor``."""

import base64
import uuid
from datetime import UTC, datetime

import pytest

from shared.cursors import decode_cursor, encode_cursor
from shared.errors import BadRequest

PARSERS = (datetime.fromisoformat, lambda value: uuid.UUID(str(value)), int)


def test_a_cursor_reads_back_what_it_was_made_of():
    at, key = datetime(2026, 11, 27, 8, 30, tzinfo=UTC), uuid.uuid4()
    cursor = encode_cursor(at.isoformat(), str(key), 7)
    assert "=" not in cursor and "/" not in cursor and "+" not in cursor
    assert decode_cursor(cursor, PARSERS) == (at, key, 7)
    assert decode_cursor(encode_cursor("张伟", 1), (str, int)) == ("张伟", 1)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "!!!",
        "not base64 at all",
        _b64(b"\xff\xfe"),  # not UTF-8
        _b64(b"{not json"),
        _b64(b'{"a": 1}'),  # not a list
        _b64(b'["2026-11-27T08:30:00+00:00", "x"]'),  # too few values
        _b64(b'["yesterday", "6c1f8c4e-0b7e-4a53-9a57-3b1b8f0c2f11", 1]'),
        _b64(b"[1, 2, 3]"),  # wrong types
        _b64(b'["2026-11-27T08:30:00+00:00", "6c1f8c4e-0b7e-4a53-9a57-3b1b8f0c2f11", "x"]'),
        _b64(b"[" * 5000),  # too deep for json.loads (a RecursionError, once a 500)
        _b64(b"[" * 40 + b"]" * 40),  # parses, but deeper than any JSON of ours
    ],
)
def test_a_foreign_cursor_is_a_field_error(cursor):
    with pytest.raises(BadRequest) as raised:
        decode_cursor(cursor, PARSERS)
    assert list(raised.value.extra["errors"]) == ["cursor"]


def test_a_lone_surrogate_in_a_cursor_is_a_field_error():
    """JSON spells one (``"\\ud800"``), no database text holds it: it reached the query of a
    list sorted by name, where the driver cannot encode it (an internal error, not a 400)."""
    with pytest.raises(BadRequest) as raised:
        decode_cursor(_b64(b'["\\ud800x", 1]'), (str, int))
    assert list(raised.value.extra["errors"]) == ["cursor"]
