"""Opaque keyset-paging cursors: the sort key of a page's last row as url-safe base64 JSON.

``encode_cursor(created_at_text, id)`` makes one; ``decode_cursor(cursor, (parse_time, str))``
reads it back through one parser per value, and any cursor that is not one of ours (bad
base64, not JSON, the wrong number of values, a value its parser refuses) is a 400 naming the
``cursor`` field, never a 500.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Any

from marshmallow import ValidationError

from shared import jsontext
from shared.errors import BadRequest

NOT_A_CURSOR = "Not a valid cursor."


def encode_cursor(*values: Any) -> str:
    raw = json.dumps(list(values), separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, parsers: Sequence[Callable[[Any], Any]]) -> tuple[Any, ...]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        values = jsontext.loads(base64.urlsafe_b64decode(padded.encode()))
        if not isinstance(values, list) or len(values) != len(parsers):
            raise ValueError("wrong shape")
        # a lone surrogate ("\ud800", which JSON can spell) is no text a database takes
        json.dumps(values, ensure_ascii=False).encode()
        return tuple(parse(value) for parse, value in zip(parsers, values, strict=True))
    except (ValueError, TypeError, UnicodeDecodeError, ValidationError) as exc:
        raise BadRequest.for_fields({"cursor": [NOT_A_CURSOR]}) from exc
