"""JSON from outside the system, parsed with a bound on its nesting.

``json.loads`` recurses once per level: a body of a few thousand ``[`` raises ``RecursionError``
(no ``ValueError``, so it escaped every handler as a 500), and a few hundred levels that do
parse would recurse again in marshmallow, in the gateway's walk over the body and in the RPC
serialiser. No input of this system nests anywhere near ``MAX_DEPTH`` levels.
"""

from __future__ import annotations

import json
from typing import Any

#: The deepest nesting of objects and arrays accepted (the top-level value is level 1).
MAX_DEPTH = 32


class TooDeep(ValueError):
    """JSON nested more than ``MAX_DEPTH`` levels (a ``ValueError``, like any bad JSON)."""


def depth_exceeds(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether ``value`` nests objects and arrays more than ``limit`` levels (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def loads(raw: str | bytes, max_depth: int = MAX_DEPTH) -> Any:
    """``json.loads(raw)``; ``TooDeep`` when it nests more than ``max_depth`` levels."""
    try:
        value = json.loads(raw)
    except RecursionError:
        raise TooDeep(f"nested more than {max_depth} levels") from None
    if depth_exceeds(value, max_depth):
        raise TooDeep(f"nested more than {max_depth} levels")
    return value
