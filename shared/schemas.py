"""Marshmallow schemas made once and shared by every call (docs/performance.md).

Making a schema instance copies each of its declared fields (and a ``Nested`` field makes its
own schema when first used): an eighth of the gateway's CPU per request and a twentieth of the
orders service's per placed order went there when each request made its own. An instance
keeps no state between ``load`` and ``dump`` calls (marshmallow 4 has no schema context), so
concurrent requests can share one.
"""

from __future__ import annotations

import functools

from marshmallow import Schema


@functools.cache
def schema_instance(schema: type[Schema], many: bool = False) -> Schema:
    """The shared instance of ``schema`` (one for ``many=True``, one without)."""
    return schema(many=many)


def as_instance(schema: Schema | type[Schema]) -> Schema:
    """``schema`` itself when it is an instance (one made with options), else the shared one."""
    return schema_instance(schema) if isinstance(schema, type) else schema
