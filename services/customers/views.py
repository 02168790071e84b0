"""Reads: the JSON shapes the service answers with, and the queries behind them (search,
records as they stand or stood, timelines, consent histories, privacy exports)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, false, func, literal, or_, select, tuple_, union_all
from sqlalchemy.engine import Connection, Row

from services.customers import access, segments, tables
from services.customers.domain import Customer
from services.customers.events import UtcDateTime
from services.customers.personal import CustomerVault, open_event
from services.customers.projections import load_streams, recorded, subjects_of
from services.customers.search import query_terms
from services.customers.uow import not_found
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import BadRequest
from shared.events import isoformat, utcnow
from shared.eventstore import events_table

#: How many merges a chain of redirects may follow (a merged customer merged again...).
MAX_REDIRECTS = 20

customers = tables.customers


def _iso(moment: datetime | None) -> str | None:
    return isoformat(moment) if moment is not None else None


# -- customer JSON ------------------------------------------------------------------------------


def customer_json(
    record: Mapping[str, Any],
    viewer: Mapping[str, Any],
    redirected_from: str | None = None,
) -> dict[str, Any]:
    """A customer as the API shows it to ``viewer`` (analysts: no contact details)."""
    hidden = access.contact_hidden(viewer)
    result = {
        "id": str(record["id"]),
        "kind": record["kind"],
        "name": record["name"],
        "company": record["company"],
        "emails": [] if hidden else list(record["emails"]),
        "phones": [] if hidden else list(record["phones"]),
        "addresses": [] if hidden else list(record["addresses"]),
        "preferred_channel": record["preferred_channel"],
        "language": record["language"],
        "preferences": dict(record["preferences"]),
        "tags": list(record["tags"]),
        "attributes": dict(record["attributes"]),
        "owner_id": record["owner_id"],
        "source": record["source"],
        "external_id": record["external_id"],
        "consents": {channel: dict(state) for channel, state in record["consents"].items()},
        "status": record["status"],
        "merged_into": str(record["merged_into"]) if record["merged_into"] else None,
        "order_count": record.get("order_count", 0),
        "segment": record.get("segment"),
        "created_at": _iso(record["created_at"]),
        "updated_at": _iso(record["updated_at"]),
        "erased_at": _iso(record["erased_at"]),
        "version": record["version"],
        "contact_hidden": hidden,
    }
    if redirected_from is not None:
        result["redirected_from"] = redirected_from
    return result


def row_json(
    row: Row,
    viewer: Mapping[str, Any],
    redirected_from: str | None = None,
    segment: str | None = None,
) -> dict:
    return customer_json({**row._mapping, "segment": segment}, viewer, redirected_from)


def customer_row(conn: Connection, customer_id: str) -> Row | None:
    return conn.execute(select(customers).where(customers.c.id == customer_id)).first()


def visible_row(conn: Connection, viewer: Mapping[str, Any], customer_id: str) -> Row:
    """The customer's row, when ``viewer`` may see it; otherwise not found."""
    row = customer_row(conn, customer_id)
    if row is None or not access.sees(viewer, row.owner_id):
        raise not_found(customer_id)
    return row


def resolve(conn: Connection, customer_id: str) -> tuple[Row, str | None]:
    """The row an id stands for: a merged customer's id stands for the customer it was merged
    into (following merges of merges). Returns the row and, when redirected, the id asked for."""
    row = customer_row(conn, customer_id)
    if row is None:
        raise not_found(customer_id)
    redirected_from = None
    for _ in range(MAX_REDIRECTS):
        if row.status != "merged" or row.merged_into is None:
            break
        redirected_from = customer_id
        row = customer_row(conn, str(row.merged_into))
        if row is None:
            raise not_found(customer_id)
    return row, redirected_from


def resolve_visible(
    conn: Connection, viewer: Mapping[str, Any], customer_id: str
) -> tuple[Row, str | None]:
    row, redirected_from = resolve(conn, customer_id)
    if not access.sees(viewer, row.owner_id):
        raise not_found(customer_id)
    return row, redirected_from


def get_customer(
    conn: Connection,
    vault: CustomerVault,
    viewer: Mapping[str, Any],
    customer_id: str,
    as_of: datetime | None = None,
) -> dict[str, Any]:
    """The customer as it stands, or (``as_of``) as it stood then, rebuilt from its events.
    Who may see it is decided by the record as it stands."""
    row, redirected_from = resolve_visible(conn, viewer, customer_id)
    segment = segments.segments_of(conn, [str(row.id)]).get(str(row.id))
    if as_of is None:
        return row_json(row, viewer, redirected_from, segment)
    current, redirected_from = customer_id, None
    for _ in range(MAX_REDIRECTS):
        events = load_streams(conn, [current])
        events = [event for event in events if event.occurred_at <= as_of]
        vault.preload(subjects_of(events))
        state = Customer.from_events(current, [open_event(vault, e) for e in events])
        if not state.exists:
            raise not_found(customer_id)
        if state.status != "merged" or state.merged_into is None:
            break
        redirected_from, current = customer_id, state.merged_into
    record = {**state.record(), "order_count": row.order_count, "segment": segment}
    return customer_json(record, viewer, redirected_from)


# -- search -------------------------------------------------------------------------------------

_SORT_COLUMNS = {
    "created_at": customers.c.created_at,
    "updated_at": customers.c.updated_at,
    "name": customers.c.name,
}


def _like(term: str) -> str:
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _term_condition(term, contacts: bool = True) -> Any:
    """One term's condition. Several ways to match (a token, or a substring of the name, the
    company or an e-mail address) are a UNION of one index lookup each, not an OR: planned
    apart, every arm uses its own index, where an OR of four lookups looks to the planner like
    the price of a sequential scan of a table that is still small (DESIGN §5).

    Without ``contacts`` (analysts), e-mail addresses and phone numbers are not searched: who
    may not see them may not probe for them either."""
    name, company = func.lower(customers.c.name), func.lower(customers.c.company)
    options = []
    if term.all_tokens:
        pattern = _like(term.recheck)
        options.append(
            and_(
                customers.c.search_tokens.contains(term.all_tokens),
                or_(name.like(pattern, escape="\\"), company.like(pattern, escape="\\")),
            )
        )
    if term.any_token:
        options.append(customers.c.search_tokens.contains([term.any_token]))
    if term.like:
        pattern = _like(term.like)
        options.extend((name.like(pattern, escape="\\"), company.like(pattern, escape="\\")))
        if contacts:
            options.append(customers.c.emails_text.like(pattern, escape="\\"))
    if term.phone and contacts:
        options.append(customers.c.phones_text.like(_like(term.phone), escape="\\"))
    if not options:
        return false()
    if len(options) == 1:
        return options[0]
    return customers.c.id.in_(
        union_all(*(select(customers.c.id).where(option) for option in options))
    )


def search_query(
    viewer: Mapping[str, Any],
    q: str | None = None,
    tag: str | None = None,
    owner_id: str | None = None,
    status: str | None = "active",
    created_from: datetime | None = None,
    created_to: datetime | None = None,
    consent: str | None = None,
    has_orders: bool | None = None,
    segment: str | None = None,
    sort: str = "-created_at",
    limit: int = 50,
    cursor: str | None = None,
):
    """The SELECT behind :func:`search` (also what the index tests EXPLAIN)."""
    query = select(customers)
    if status and status != "all":
        query = query.where(customers.c.status == status)
    if access.role(viewer) == "sales":
        query = query.where(customers.c.owner_id == viewer["id"])
    if owner_id is not None:
        query = query.where(customers.c.owner_id == owner_id)
    if tag is not None:
        query = query.where(customers.c.tags.contains([tag]))
    if created_from is not None:
        query = query.where(customers.c.created_at >= created_from)
    if created_to is not None:
        query = query.where(customers.c.created_at < created_to)
    if consent is not None:
        query = query.where(customers.c.consents.contains({consent: {"granted": True}}))
    if has_orders is not None:
        query = query.where(
            customers.c.order_count > 0 if has_orders else customers.c.order_count == 0
        )
    if segment is not None:
        query = query.where(customers.c.id.in_(segments.members(segment)))
    terms = query_terms(q or "")
    if (q or "").strip() and not terms:
        # only punctuation or a fragment too short to search by (``%``, ``_``): nothing matches,
        # where the query without a term matched every customer
        query = query.where(false())
    for term in terms:
        query = query.where(_term_condition(term, not access.contact_hidden(viewer)))
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    column = _SORT_COLUMNS[key]
    if cursor:
        value_parser = (lambda v: str(v)) if key == "name" else UtcDateTime().deserialize
        cursor_sort, after, after_id = decode_cursor(cursor, (str, value_parser, str))
        if cursor_sort != sort:
            raise BadRequest.for_fields({"cursor": ["This cursor belongs to another sort."]})
        position = tuple_(column, customers.c.id)
        bound = tuple_(literal(after, column.type), literal(after_id, customers.c.id.type))
        query = query.where(position < bound if descending else position > bound)
    order = (column.desc(), customers.c.id.desc()) if descending else (column, customers.c.id)
    return query.order_by(*order).limit(limit + 1)


def search(conn: Connection, viewer: Mapping[str, Any], **args: Any) -> dict[str, Any]:
    """Customers matching every filter, in a stable order, a page at a time (keyset)."""
    limit, sort = args.get("limit", 50), args.get("sort", "-created_at")
    rows = conn.execute(search_query(viewer, **args)).all()
    page = rows[:limit]
    next_cursor = None
    if len(rows) > limit:
        last = page[-1]
        key = sort.lstrip("-")
        value = last.name if key == "name" else isoformat(getattr(last, key))
        next_cursor = encode_cursor(sort, value, str(last.id))
    named = segments.segments_of(conn, [str(row.id) for row in page])
    items = [row_json(row, viewer, segment=named.get(str(row.id))) for row in page]
    return {"items": items, "next_cursor": next_cursor}


# -- history ------------------------------------------------------------------------------------


def merged_in(conn: Connection, customer_id: str) -> list[str]:
    """The customers merged (and not unmerged) into this one, transitively."""
    found: list[str] = []
    frontier = [customer_id]
    for _ in range(MAX_REDIRECTS):
        if not frontier:
            break
        sources = (
            conn.execute(
                select(tables.merges.c.source_id)
                .where(tables.merges.c.target_id.in_(frontier))
                .where(tables.merges.c.undone_at.is_(None))
            )
            .scalars()
            .all()
        )
        frontier = [str(source) for source in sources if str(source) not in found]
        found.extend(frontier)
    return found


def _changes(event_type: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    if event_type in ("customer.updated", "customer.preferences_updated", "attribute.updated"):
        return dict(payload["changes"])
    return {key: value for key, value in payload.items() if key != "customer_id"}


def timeline_item(event, viewer: Mapping[str, Any]) -> dict[str, Any]:
    """An opened event as the timeline shows it."""
    changes = _changes(event.type, event.payload)
    if access.contact_hidden(viewer):
        changes = access.redact(changes)
    metadata = event.metadata or {}
    return {
        "event_id": str(event.event_id),
        "type": event.type,
        "at": isoformat(event.occurred_at),
        "customer_id": event.stream_id,
        "version": event.stream_version,
        "actor_id": metadata.get("actor_id"),
        "actor_kind": metadata.get("actor_kind"),
        "request_id": metadata.get("request_id"),
        "import_id": metadata.get("import_id"),
        "changes": _jsonable(changes),
    }


def _jsonable(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_jsonable(item) for item in value]
    if isinstance(value, datetime):
        return isoformat(value)
    return value


def _stream_events(
    conn: Connection,
    streams: list[str],
    before: int | None = None,
    limit: int | None = None,
    types: tuple[str, ...] | None = None,
):
    query = select(*events_table.c).where(events_table.c.stream_id.in_(streams))
    if types:
        query = query.where(events_table.c.event_type.in_(types))
    if before is not None:
        query = query.where(events_table.c.global_position < before)
    query = query.order_by(events_table.c.global_position.desc())
    if limit is not None:
        query = query.limit(limit)
    return [recorded(row) for row in conn.execute(query)]


#: The timeline's own source name, ranked with the other services' names on equal times.
OWN_SOURCE = "customers"


def _timeline_cursor(cursor: str | None) -> tuple[datetime, str, int] | None:
    if not cursor:
        return None
    return decode_cursor(cursor, (UtcDateTime().deserialize, str, int))


def _own_events(conn: Connection, streams: list[str], before, limit: int):
    events = events_table.c
    query = select(*events).where(events.stream_id.in_(streams))
    if before is not None:
        query = query.where(
            tuple_(events.occurred_at, literal(OWN_SOURCE), events.global_position)
            < tuple_(literal(before[0]), literal(before[1]), literal(before[2]))
        )
    query = query.order_by(events.occurred_at.desc(), events.global_position.desc()).limit(limit)
    return [recorded(row) for row in conn.execute(query)]


def _activity(conn: Connection, customer_ids: list[str], before, limit: int) -> list[Row]:
    rows = tables.customer_activity.c
    query = select(tables.customer_activity).where(rows.customer_id.in_(customer_ids))
    if before is not None:
        query = query.where(
            tuple_(rows.at, rows.source, rows.position)
            < tuple_(literal(before[0]), literal(before[1]), literal(before[2]))
        )
    query = query.order_by(rows.at.desc(), rows.source.desc(), rows.position.desc()).limit(limit)
    return list(conn.execute(query))


def _order_numbers(conn: Connection, streams: Sequence[str], rows: Sequence[Row]) -> dict[str, str]:
    """The numbers of the orders that ``rows`` (activity entries) name but do not carry:
    payment and status events hold only the order's id, its ``order.placed`` entry (kept
    here for the same customer) holds its number."""
    wanted = sorted(
        {str(row.order_id) for row in rows if row.order_id and "number" not in row.summary}
    )
    if not wanted:
        return {}
    activity = tables.customer_activity.c
    found = conn.execute(
        select(activity.order_id, activity.summary["number"].astext).where(
            activity.customer_id.in_(streams),
            activity.type == "order.placed",
            activity.order_id.in_(wanted),
            activity.summary.has_key("number"),
        )
    )
    return {str(order_id): number for order_id, number in found}


def activity_item(row: Row, numbers: Mapping[str, str] | None = None) -> dict[str, Any]:
    """An order or payment event of the customer as the timeline shows it, with the order's
    number where the event names the order by id only and ``numbers`` knows it."""
    changes = dict(row.summary)
    if row.order_id and "number" not in changes and numbers and str(row.order_id) in numbers:
        changes["number"] = numbers[str(row.order_id)]
    return {
        "event_id": str(row.event_id),
        "type": row.type,
        "at": isoformat(row.at),
        "customer_id": str(row.customer_id),
        "source": row.source,
        "version": None,
        "actor_id": row.actor_id,
        "actor_kind": row.actor_kind,
        "request_id": row.request_id,
        "import_id": None,
        "changes": changes,
    }


def timeline(
    conn: Connection,
    vault: CustomerVault,
    viewer: Mapping[str, Any],
    customer_id: str,
    limit: int = 50,
    cursor: str | None = None,
) -> dict[str, Any]:
    """Every event of the customer's stream and of the streams merged into it, with the orders
    and payments the other services reported for them (``activity``), newest first, with
    personal values opened (null once erased)."""
    row, _ = resolve_visible(conn, viewer, customer_id)
    streams = [str(row.id), *merged_in(conn, str(row.id))]
    before = _timeline_cursor(cursor)
    own = _own_events(conn, streams, before, limit + 1)
    merged = sorted(
        [((event.occurred_at, OWN_SOURCE, event.global_position), event) for event in own]
        + [
            ((item.at, item.source, item.position), item)
            for item in _activity(conn, streams, before, limit + 1)
        ],
        key=lambda pair: pair[0],
        reverse=True,
    )
    page = merged[:limit]
    own_page = [entry for _, entry in page if not isinstance(entry, Row)]
    vault.preload(subjects_of(own_page))
    numbers = _order_numbers(conn, streams, [e for _, e in page if isinstance(e, Row)])
    items = [
        activity_item(entry, numbers)
        if isinstance(entry, Row)
        else {**timeline_item(open_event(vault, entry), viewer), "source": OWN_SOURCE}
        for _, entry in page
    ]
    next_cursor = None
    if len(merged) > limit:
        at, source, position = page[-1][0]
        next_cursor = encode_cursor(isoformat(at), source, position)
    return {"items": items, "next_cursor": next_cursor}


def consent_history(
    conn: Connection, vault: CustomerVault, viewer: Mapping[str, Any], customer_id: str
) -> list[dict[str, Any]]:
    """Every consent granted or withdrawn, newest first (merged-in customers' included)."""
    row, _ = resolve_visible(conn, viewer, customer_id)
    streams = [str(row.id), *merged_in(conn, str(row.id))]
    events = _stream_events(conn, streams, types=("customer.consent_recorded",))
    vault.preload(subjects_of(events))
    entries = []
    for event in events:
        payload = open_event(vault, event).payload
        entries.append(
            {
                "event_id": str(event.event_id),
                "customer_id": event.stream_id,
                "channel": payload["channel"],
                "granted": payload["granted"],
                "method": payload["method"],
                "note": payload["note"],
                "recorded_by": payload["recorded_by"],
                "at": isoformat(event.occurred_at),
            }
        )
    return entries


def export_customer(
    conn: Connection, vault: CustomerVault, viewer: Mapping[str, Any], customer_id: str
) -> dict[str, Any]:
    """Everything held about one customer (GDPR / PIPL access request) as one JSON document:
    the record, the records merged into it, its consent history, its attribute values with
    their definitions, and its whole timeline."""
    row, redirected_from = resolve_visible(conn, viewer, customer_id)
    sources = merged_in(conn, str(row.id))
    definitions = {definition["key"]: definition for definition in list_attributes(conn)}
    attributes = [
        {
            "key": key,
            "label": definitions.get(key, {}).get("label"),
            "type": definitions.get(key, {}).get("type"),
            "value": value,
        }
        for key, value in sorted(row.attributes.items())
    ]
    streams = [str(row.id), *sources]
    events = _stream_events(conn, streams)
    vault.preload(subjects_of(events))
    return {
        "exported_at": isoformat(utcnow()),
        "customer": row_json(row, viewer, redirected_from),
        "merged_records": [
            row_json(source_row, viewer)
            for source in sources
            if (source_row := customer_row(conn, source)) is not None
        ],
        "consent_history": consent_history(conn, vault, viewer, str(row.id)),
        "attributes": attributes,
        "timeline": [timeline_item(open_event(vault, event), viewer) for event in events],
    }


# -- attribute definitions --------------------------------------------------------------------


def definition_json(row: Any) -> dict[str, Any]:
    return {
        "key": row.key,
        "type": row.type,
        "label": row.label,
        "options": list(row.options) if row.options is not None else None,
        "version": row.version,
        "created_at": _iso(row.created_at),
        "updated_at": _iso(row.updated_at),
    }


def list_attributes(conn: Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        select(tables.attribute_definitions).order_by(tables.attribute_definitions.c.key)
    )
    return [definition_json(row) for row in rows]


def attribute_definitions(conn: Connection) -> dict[str, dict[str, Any]]:
    return {definition["key"]: definition for definition in list_attributes(conn)}
