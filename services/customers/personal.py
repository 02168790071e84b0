"""Personal data in the customers service's events (DESIGN §2, ``shared.sealing``): sealed
under the customer's key on the way into the log, opened on the way out.

Every reader of payloads inside the service (the aggregates, the projections, the timeline,
``rebuild``) works on *opened* events. Once a customer is erased (their key destroyed), their
sealed values open as ``None`` (``shared.sealing.ERASED``).

Which fields are sealed is declared by the event schemas (``Sealed`` fields), listed in
``services.customers.events.SEALED_FIELDS``. Values inside a merge's ``absorbed`` are sealed
under the source customer's key (``events.NESTED_SUBJECTS``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from marshmallow import ValidationError
from sqlalchemy import Column, LargeBinary, MetaData, Table, Text, text

from services.customers.events import NESTED_SUBJECTS, SEALED_SPECS, Sealed, SealedSpec
from shared.errors import EventSchemaError
from shared.events import RecordedEvent
from shared.sealing import Vault, is_sealed

#: The mechanism table of per-subject keys (``shared.ddl``), for bulk inserts.
subject_keys = Table(
    "subject_keys",
    MetaData(),
    Column("subject_id", Text, primary_key=True),
    Column("key", LargeBinary),
)


class CustomerVault(Vault):
    """A :class:`Vault` that can fetch many subjects' keys in one query (rebuilds and the
    timeline open events of many customers), and make many new ones (the seed)."""

    def new_keys(self, subjects: Iterable[str]) -> list[dict[str, Any]]:
        """Fresh keys for new subjects, cached here; the caller inserts the returned rows into
        ``subject_keys`` in the same transaction."""
        rows = []
        for subject in subjects:
            key = AESGCM.generate_key(bit_length=256)
            self._keys[subject] = key
            rows.append({"subject_id": subject, "key": key})
        return rows

    def preload(self, subjects: Iterable[str]) -> None:
        wanted = sorted({str(subject) for subject in subjects} - set(self._keys))
        for start in range(0, len(wanted), 1000):
            chunk = wanted[start : start + 1000]
            rows = self.bind.execute(
                text(
                    "SELECT subject_id, key, destroyed_at FROM subject_keys "
                    "WHERE subject_id = ANY(:subjects)"
                ),
                {"subjects": chunk},
            )
            found = set()
            for row in rows:
                found.add(row.subject_id)
                self._keys[row.subject_id] = (
                    None if row.destroyed_at is not None else bytes(row.key)
                )
            for subject in set(chunk) - found:  # never had a key: nothing sealed for them
                self._keys[subject] = None


def seal_payload(
    vault: Vault,
    event_type: str,
    version: int,
    payload: Mapping[str, Any],
    check: bool = True,
) -> dict[str, Any]:
    """A copy of ``payload`` with its personal fields sealed under the key of its subject
    (created on first use, in the caller's transaction). The plain values are checked against
    what the schema says is inside the seal before they disappear into it (``check``: the
    seed checks a sample of payloads that all come from the same code)."""
    spec = SEALED_SPECS.get((event_type, version))
    if not spec:
        return dict(payload)
    return _seal(vault, str(payload["customer_id"]), payload, spec, event_type, check)


def _seal(
    vault: Vault,
    subject: str,
    payload: Mapping[str, Any],
    spec: SealedSpec,
    event_type: str,
    check: bool,
) -> dict[str, Any]:
    copy = dict(payload)
    names: list[str] = []
    for name, inner in spec.items():
        value = copy.get(name)
        if isinstance(inner, dict):
            if isinstance(value, Mapping):
                owner = str(payload[NESTED_SUBJECTS[name]]) if name in NESTED_SUBJECTS else subject
                copy[name] = _seal(vault, owner, value, inner, event_type, check)
        elif value is not None:
            if check:
                _check_plain(inner, name, value, event_type)
            names.append(name)
    return vault.seal_fields(subject, copy, tuple(names))


def _check_plain(field: Sealed, name: str, value: Any, event_type: str) -> None:
    try:
        field.plain.deserialize(value)
    except ValidationError as exc:
        raise EventSchemaError(
            f"{event_type} payload is invalid", {"errors": {name: exc.messages}}
        ) from exc


def open_payload(vault: Vault, payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` with every sealed value (at any depth) opened; ``None`` for the
    values of an erased subject."""
    return {name: _open(vault, value) for name, value in vault.unseal_fields(dict(payload)).items()}


def _open(vault: Vault, value: Any) -> Any:
    if isinstance(value, dict) and not is_sealed(value):
        return open_payload(vault, value)
    return value


def open_event(vault: Vault, event: RecordedEvent) -> RecordedEvent:
    """The event as the service's folds read it: its payload opened."""
    return dataclasses.replace(event, payload=open_payload(vault, event.payload))
