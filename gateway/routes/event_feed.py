"""The event feed: every event of a service after a cursor, paged and filtered by type, from
the beginning of its log (no retention limit), through the service's ``read_events`` RPC.

A subscriber that was away, or a new one, reads from ``after=0`` (or its last position) until a
page comes back short, then keeps polling with ``next_after`` or follows the bus. The envelopes
are exactly those on the bus (docs/events.md), with one difference: personal data follows the
caller's role, as in the rest of the API (``OPENERS``). Admins and managers get customers' data
(in the customers, orders and payments logs) opened by the service that sealed it; staff
members' data (the users log: e-mails, phones, sign-in addresses) is opened for admins only,
who alone may read accounts. Otherwise it stays sealed. For everyone, the sealed values of a
person who has been erased read ``{"$erased": {"subject": "<id>"}}``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from gateway import integration_schemas as schemas
from gateway.operations import Context, Reply, op
from shared.config import SERVICES
from shared.errors import BadRequest, NotFound
from shared.sealing import SEALED, is_sealed

READERS = frozenset({"admin", "manager", "analyst"})
#: The roles that see personal data in the feed, per service (as they do in the API: only
#: admins read staff accounts).
OPENERS = frozenset({"admin", "manager"})
SERVICE_OPENERS = {"users": frozenset({"admin"})}
TYPE = re.compile(r"^[a-z][a-z0-9_]*\.([a-z][a-z0-9_]*|\*)$")
ERASURE_PAGE = 1000

#: ``source → (position read up to, subjects erased)``: erasures are never undone, so each
#: gateway process reads every source's erasure events once and then only the new ones.
_erasures: dict[str, tuple[int, frozenset[str]]] = {}


@lru_cache(maxsize=1)
def erasure_types() -> dict[str, tuple[str, ...]]:
    """The event types, per service, that erase a person (``customer.erased``, …): their
    stream id is the subject whose sealed values can no longer be opened."""
    from shared.catalogue import event_versions

    found: dict[str, set[str]] = {}
    for event in event_versions():
        if event.type.endswith(".erased"):
            found.setdefault(event.source, set()).add(event.type)
    return {source: tuple(sorted(types)) for source, types in found.items()}


def erased_subjects(ctx: Context) -> frozenset[str]:
    subjects: set[str] = set()
    for source, types in erasure_types().items():
        position, known = _erasures.get(source, (0, frozenset()))
        found = set(known)
        while True:
            page = ctx.call(
                source,
                "read_events",
                after_position=position,
                limit=ERASURE_PAGE,
                types=list(types),
            )
            found.update(str(event["stream_id"]) for event in page)
            if page:
                position = int(page[-1]["position"])
            if len(page) < ERASURE_PAGE:
                break
        if position >= _erasures.get(source, (0,))[0]:
            _erasures[source] = (position, frozenset(found))
        subjects |= found
    return frozenset(subjects)


def _has_sealed(value: Any) -> bool:
    if is_sealed(value):
        return True
    if isinstance(value, dict):
        return any(_has_sealed(item) for item in value.values())
    if isinstance(value, list):
        return any(_has_sealed(item) for item in value)
    return False


def mark_erased(value: Any, erased: frozenset[str]) -> Any:
    """``value`` with the sealed values of erased subjects replaced by ``$erased`` markers."""
    if is_sealed(value):
        subject = str((value[SEALED] or {}).get("subject"))
        return {"$erased": {"subject": subject}} if subject in erased else value
    if isinstance(value, dict):
        return {key: mark_erased(item, erased) for key, item in value.items()}
    if isinstance(value, list):
        return [mark_erased(item, erased) for item in value]
    return value


def _types(raw: str | None, service: str) -> list[str] | None:
    """The types asked for: names of the service's event types, or ``order.*`` (every type
    of that prefix, as webhooks take it), or ``*`` (all); a name the service does not
    publish is a 400, where it read as an empty feed."""
    if not raw:
        return None
    parts = [part.strip() for part in raw.split(",") if part.strip()]
    if "*" in parts:
        return None
    shape = [
        p
        for p in parts
        if not TYPE.match(p.removesuffix(".*") + (".x" if p.endswith(".*") else ""))
    ]
    if shape or len(parts) > 100:
        raise BadRequest.for_fields(
            {"types": ["Comma-separated event types, e.g. order.placed or order.*."]}
        )
    from shared.catalogue import event_types

    known = event_types(service)
    types: set[str] = set()
    unknown = []
    for part in parts:
        found = (
            {t for t in known if t.startswith(part[:-1])} if part.endswith(".*") else {part} & known
        )
        if not found:
            unknown.append(part)
        types |= found
    if unknown:
        raise BadRequest.for_fields(
            {"types": [f"Not an event type of {service}: {', '.join(unknown)}."]}
        )
    return sorted(types)


@op(
    "GET",
    "/events/<service>",
    operation_id="readEventFeed",
    summary="Read a service's events after a cursor",
    tag="integration",
    roles=READERS,
    query=schemas.FeedQuery,
    response=schemas.FeedPage,
    errors=(400, 404),
)
def read_feed(ctx: Context) -> Reply:
    service = ctx.path["service"]
    if service not in SERVICES:
        raise NotFound(f"no service {service!r}", {"services": list(SERVICES)})
    after, limit = ctx.query["after"], ctx.query["limit"]
    opening = ctx.principal is not None and ctx.principal.role in SERVICE_OPENERS.get(
        service, OPENERS
    )
    items = ctx.call(
        service,
        "read_events",
        after_position=after,
        limit=limit,
        types=_types(ctx.query.get("types"), service),
        open_sealed=opening,
    )
    if not opening and _has_sealed([item["payload"] for item in items]):
        erased = erased_subjects(ctx)
        if erased:
            items = [{**item, "payload": mark_erased(item["payload"], erased)} for item in items]
    return Reply(
        {
            "items": items,
            "next_after": int(items[-1]["position"]) if items else after,
            "has_more": len(items) == limit,
        }
    )
