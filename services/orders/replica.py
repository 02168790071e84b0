"""The orders service's replica of customers (DESIGN §1): id, status and owning sales user,
fed by the customers service's events, so that placing an order needs no RPC.

Consumed: ``customer.registered``, ``customer.assigned`` (the owner, for the sales role's
view), ``customer.archived``, ``customer.restored``, ``customer.merged``,
``customer.merge_undone``, ``customer.erased``. Each arrives live (one queue per event type,
so in any order) and through catch-up (``customers.read_events`` at start, on a timer, and
when an order names a customer not known yet). Every event is applied once
(``shared.consumer``); out-of-order arrival is harmless because each field keeps the stream
version that set it and an older event never overwrites a newer one.

``customer.erased`` also destroys the customer's key in this service's ``subject_keys``: the
delivery addresses and notes of their orders, sealed under it, become unreadable for ever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.consumer import Fetch, apply_once, catch_up
from shared.sealing import Vault

CONSUMER = "orders.customer_replica"
SOURCE = "customers"
EVENT_TYPES = (
    "customer.registered",
    "customer.assigned",
    "customer.archived",
    "customer.restored",
    "customer.merged",
    "customer.merge_undone",
    "customer.erased",
)

_UPSERT_STATUS = text(
    """
    INSERT INTO customers (id, status, status_version, owner_id, owner_version, merged_into,
                           previous_status, updated_at)
    VALUES (:id, :status, :version, NULL, 0, :merged_into, :previous_status, now())
    ON CONFLICT (id) DO UPDATE SET
        status = EXCLUDED.status,
        status_version = EXCLUDED.status_version,
        merged_into = COALESCE(EXCLUDED.merged_into, customers.merged_into),
        previous_status = COALESCE(EXCLUDED.previous_status, customers.previous_status),
        updated_at = now()
    WHERE customers.status_version < EXCLUDED.status_version
    """
)

_UPSERT_OWNER = text(
    """
    INSERT INTO customers (id, status, status_version, owner_id, owner_version, updated_at)
    VALUES (:id, 'active', 0, :owner_id, :version, now())
    ON CONFLICT (id) DO UPDATE SET
        owner_id = EXCLUDED.owner_id, owner_version = EXCLUDED.owner_version, updated_at = now()
    WHERE customers.owner_version < EXCLUDED.owner_version
    """
)


#: ``customer.registered`` of many customers in one statement: each sets the status and the
#: owner at its stream version, with the same guards as ``_UPSERT_STATUS`` and
#: ``_UPSERT_OWNER`` (an older event never overwrites a newer one).
_REGISTER_MANY = text(
    """
    INSERT INTO customers (id, status, status_version, owner_id, owner_version, updated_at)
    SELECT id, 'active', version, owner_id, version, now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:versions AS integer[]), CAST(:owners AS text[]))
         AS registered (id, version, owner_id)
    ON CONFLICT (id) DO UPDATE SET
        status = CASE WHEN customers.status_version < EXCLUDED.status_version
                      THEN EXCLUDED.status ELSE customers.status END,
        status_version = GREATEST(customers.status_version, EXCLUDED.status_version),
        owner_id = CASE WHEN customers.owner_version < EXCLUDED.owner_version
                        THEN EXCLUDED.owner_id ELSE customers.owner_id END,
        owner_version = GREATEST(customers.owner_version, EXCLUDED.owner_version),
        updated_at = now()
    WHERE customers.status_version < EXCLUDED.status_version
       OR customers.owner_version < EXCLUDED.owner_version
    """
)


def _status(session: Session, customer_id: str, status: str, version: int, **extra: Any) -> None:
    session.execute(
        _UPSERT_STATUS,
        {
            "id": customer_id,
            "status": status,
            "version": version,
            "merged_into": extra.get("merged_into"),
            "previous_status": extra.get("previous_status"),
        },
    )


def apply_customer_event(session: Session, envelope: Mapping[str, Any]) -> None:
    """Fold one customers envelope into the replica (inside the caller's transaction)."""
    event_type = envelope["type"]
    payload = envelope["payload"]
    customer_id = str(payload["customer_id"])
    version = int(envelope["stream_version"])
    if event_type == "customer.registered":
        _status(session, customer_id, "active", version)
        session.execute(
            _UPSERT_OWNER,
            {"id": customer_id, "owner_id": payload.get("owner_id"), "version": version},
        )
    elif event_type == "customer.assigned":
        session.execute(
            _UPSERT_OWNER,
            {"id": customer_id, "owner_id": payload.get("owner_id"), "version": version},
        )
    elif event_type == "customer.archived":
        _status(session, customer_id, "archived", version)
    elif event_type == "customer.restored":
        _status(session, customer_id, "active", version)
    elif event_type == "customer.merged":
        if str(payload["source_id"]) == customer_id:  # the absorbed customer's own stream
            _status(
                session,
                customer_id,
                "merged",
                version,
                merged_into=str(payload["target_id"]),
                previous_status=payload.get("previous_status") or "active",
            )
    elif event_type == "customer.merge_undone":
        if str(payload["source_id"]) == customer_id:
            previous = session.execute(
                text("SELECT previous_status FROM customers WHERE id = :id"), {"id": customer_id}
            ).scalar()
            _status(session, customer_id, previous or "active", version)
    elif event_type == "customer.erased":
        _status(session, customer_id, "erased", version)
        Vault(session).destroy(customer_id)


def _register_many(session: Session, envelopes: Sequence[Mapping[str, Any]]) -> None:
    newest: dict[str, Mapping[str, Any]] = {}  # one row per customer in one statement
    for envelope in envelopes:
        customer_id = str(envelope["payload"]["customer_id"])
        known = newest.get(customer_id)
        if known is None or int(known["stream_version"]) < int(envelope["stream_version"]):
            newest[customer_id] = envelope
    session.execute(
        _REGISTER_MANY,
        {
            "ids": list(newest),
            "versions": [int(e["stream_version"]) for e in newest.values()],
            "owners": [e["payload"].get("owner_id") for e in newest.values()],
        },
    )


def apply_customer_events(session: Session, envelopes: Sequence[Mapping[str, Any]]) -> None:
    """Fold a catch-up page into the replica, in order: each run of ``customer.registered``
    (a bulk import is one long run) in one statement, any other event on its own."""
    run: list[Mapping[str, Any]] = []
    for envelope in envelopes:
        if envelope["type"] == "customer.registered":
            run.append(envelope)
            continue
        if run:
            _register_many(session, run)
            run = []
        if envelope["type"] in EVENT_TYPES:
            apply_customer_event(session, envelope)
    if run:
        _register_many(session, run)


def consume(session: Session, envelope: Mapping[str, Any]) -> bool:
    """Apply a live delivery once; True when it was new."""
    if envelope.get("type") not in EVENT_TYPES:
        return False
    return apply_once(session, CONSUMER, envelope, apply_customer_event)


def catch_up_customers(session: Session, fetch: Fetch) -> int:
    """Apply every customers event after this replica's cursor (``fetch`` is the customers
    service's ``read_events``); returns how many were new."""

    return catch_up(
        session,
        CONSUMER,
        SOURCE,
        fetch,
        apply_customer_event,
        apply_page=apply_customer_events,
    )


def lookup(session: Session, customer_id: str) -> Any:
    return session.execute(
        text("SELECT id, status, owner_id, merged_into FROM customers WHERE id = :id"),
        {"id": customer_id},
    ).first()
