"""Idempotency keys of commands a client may retry (Stripe semantics, DESIGN §5): placing an
order, moving money.

Each service that takes them has an ``idempotency_keys`` table in its schema
(``shared.ddl.create_idempotency_keys`` in a migration of its own). The gateway passes
``{"key", "hash"}`` (the caller's ``Idempotency-Key`` and a keyed hash of the operation, its
path and its body). The key row is inserted in the command's own
transaction, before the command runs: a concurrent request with the same key blocks on the
primary key until the first commits, then finds the stored response (same hash) or refuses
(different hash, 422). A command that fails rolls its key back, so the key can be retried.
Keys are kept 24 hours.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from shared.errors import BadRequest, RuleViolation

KEY_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255


def run_idempotent(
    session: Session,
    actor: Mapping[str, Any],
    idempotency: Mapping[str, Any] | None,
    operation: str,
    run: Callable[[], dict[str, Any]],
) -> dict[str, Any]:
    """``run()`` once per key of the caller (``actor``: its kind and id); the caller commits."""
    if not idempotency:
        return run()
    principal = f"{actor.get('kind') or 'user'}:{actor.get('id')}"
    key, body_hash = str(idempotency.get("key") or ""), str(idempotency.get("hash") or "")
    if not key or len(key) > MAX_KEY_LENGTH or not body_hash:
        raise BadRequest.for_fields(
            {"Idempotency-Key": [f"Must be 1 to {MAX_KEY_LENGTH} characters."]}
        )
    conn = session.connection()
    params = {"principal": principal, "key": key, "ttl": KEY_TTL}
    # One round trip: a new key is inserted; a key past its time to live is taken over as
    # if it were new; a live key is left alone and nothing is returned.
    inserted = conn.execute(
        text(
            "INSERT INTO idempotency_keys (principal, key, operation, body_hash, response) "
            "VALUES (:principal, :key, :operation, :hash, 'null'::jsonb) "
            "ON CONFLICT (principal, key) DO UPDATE SET operation = EXCLUDED.operation, "
            "body_hash = EXCLUDED.body_hash, response = EXCLUDED.response, created_at = now() "
            "WHERE idempotency_keys.created_at < now() - :ttl RETURNING 1"
        ),
        {**params, "operation": operation, "hash": body_hash},
    ).scalar()
    if not inserted:
        stored = conn.execute(
            text(
                "SELECT operation, body_hash, response FROM idempotency_keys "
                "WHERE principal = :principal AND key = :key"
            ),
            params,
        ).one()
        session.rollback()
        if stored.operation != operation or stored.body_hash != body_hash:
            raise RuleViolation(
                "this Idempotency-Key was used with a different request",
                {"code": "idempotency_key_reused"},
            )
        return stored.response
    response = run()
    conn.execute(
        text(
            "UPDATE idempotency_keys SET response = CAST(:response AS jsonb) "
            "WHERE principal = :principal AND key = :key"
        ),
        {**params, "response": json.dumps(response)},
    )
    return response


def purge_expired(session: Session) -> int:
    deleted = session.execute(
        text("DELETE FROM idempotency_keys WHERE created_at < now() - :ttl"), {"ttl": KEY_TTL}
    ).rowcount
    session.commit()
    return deleted
