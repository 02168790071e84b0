"""Personal data in the users service's events (DESIGN §2, ``shared.sealing``): sealed under the
user's key on the way into the log, opened on the way out.

Every reader of payloads inside the service (the aggregates, the projections, ``rebuild``)
folds *opened* events. Once a user is erased (their key destroyed), their sealed values open
as ``None`` (``shared.sealing.ERASED``); the folds map that to the neutral placeholders of
:func:`services.users.domain.erased_profile`.

Which fields are sealed is declared by the event schemas (``Sealed`` fields), listed in
``services.users.events.SEALED_FIELDS``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from marshmallow import ValidationError

from services.users.events import SEALED_SPECS, Sealed, SealedSpec
from shared.errors import EventSchemaError
from shared.events import RecordedEvent
from shared.sealing import Vault, is_sealed


def seal_payload(
    vault: Vault, event_type: str, version: int, payload: Mapping[str, Any]
) -> dict[str, Any]:
    """A copy of ``payload`` with its personal fields sealed under the key of its ``user_id``
    (created on first use, in the caller's transaction). The plain values are checked against
    what the schema says is inside the seal before they disappear into it."""
    spec = SEALED_SPECS.get((event_type, version))
    if not spec:
        return dict(payload)
    return _seal(vault, str(payload["user_id"]), payload, spec, event_type)


def _seal(
    vault: Vault, subject: str, payload: Mapping[str, Any], spec: SealedSpec, event_type: str
) -> dict[str, Any]:
    copy = dict(payload)
    names: list[str] = []
    for name, inner in spec.items():
        value = copy.get(name)
        if isinstance(inner, dict):
            if isinstance(value, Mapping):
                copy[name] = _seal(vault, subject, value, inner, event_type)
        elif value is not None:
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
