"""Event envelopes and the registry of versioned event schemas.

An event type (``order.placed``) has one marshmallow schema per ``schema_version``. Within a
version only additive, optional changes are allowed; a breaking change is a new version,
registered beside the old one. Payloads are validated and serialised by their schema before
they are appended, so the log only ever holds what the catalogue describes.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from marshmallow import Schema, ValidationError

from shared.errors import EventSchemaError


def utcnow() -> datetime:
    return datetime.now(UTC)


def isoformat(moment: datetime) -> str:
    """UTC ISO-8601 with a ``Z``, the only time format on the wire."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime: CMS times are always timezone-aware UTC")
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class NewEvent:
    """An event about to be appended: type, validated JSON payload and schema version."""

    type: str
    payload: dict[str, Any]
    schema_version: int = 1
    event_id: uuid.UUID = field(default_factory=uuid.uuid4)
    occurred_at: datetime = field(default_factory=utcnow)


@dataclass(frozen=True)
class RecordedEvent:
    """An event as stored: its place in the log and in its stream."""

    global_position: int
    event_id: uuid.UUID
    stream_type: str
    stream_id: str
    stream_version: int
    type: str
    schema_version: int
    payload: dict[str, Any]
    metadata: dict[str, Any]
    occurred_at: datetime

    def envelope(self, source: str) -> dict[str, Any]:
        """The JSON envelope published on ``<source>.events`` and returned by ``read_events``."""
        return {
            "event_id": str(self.event_id),
            "type": self.type,
            "schema_version": self.schema_version,
            "source": source,
            "stream_type": self.stream_type,
            "stream_id": self.stream_id,
            "stream_version": self.stream_version,
            "position": self.global_position,
            "occurred_at": isoformat(self.occurred_at),
            "metadata": self.metadata,
            "payload": self.payload,
        }


class EventRegistry:
    """Maps ``(event type, schema version)`` to the marshmallow schema of its payload."""

    def __init__(self, source: str):
        self.source = source
        self._schemas: dict[tuple[str, int], type[Schema]] = {}
        self._descriptions: dict[tuple[str, int], str] = {}

    def register(self, event_type: str, version: int = 1, description: str = ""):
        """Class decorator: ``@registry.register("order.placed", 1, "An order was placed")``."""

        def decorate(schema_cls: type[Schema]) -> type[Schema]:
            key = (event_type, version)
            if key in self._schemas:
                raise ValueError(f"{event_type} v{version} is registered twice")
            self._schemas[key] = schema_cls
            self._descriptions[key] = description or (schema_cls.__doc__ or "").strip()
            return schema_cls

        return decorate

    def __contains__(self, key: tuple[str, int]) -> bool:
        return key in self._schemas

    def __iter__(self) -> Iterator[tuple[str, int]]:
        return iter(sorted(self._schemas))

    def schema(self, event_type: str, version: int) -> Schema:
        try:
            return self._schemas[(event_type, version)]()
        except KeyError:
            raise EventSchemaError(f"unknown event {event_type} v{version}") from None

    def description(self, event_type: str, version: int) -> str:
        return self._descriptions[(event_type, version)]

    def latest_version(self, event_type: str) -> int:
        versions = [v for (t, v) in self._schemas if t == event_type]
        if not versions:
            raise EventSchemaError(f"unknown event {event_type}")
        return max(versions)

    def new_event(
        self,
        event_type: str,
        payload: Mapping[str, Any],
        version: int | None = None,
        occurred_at: datetime | None = None,
    ) -> NewEvent:
        """Validate ``payload`` against its schema and return the event ready to append."""
        version = version or self.latest_version(event_type)
        schema = self.schema(event_type, version)
        try:
            loaded = schema.load(dict(payload))
        except ValidationError as exc:
            raise EventSchemaError(
                f"{event_type} v{version} payload is invalid", {"errors": exc.messages}
            ) from exc
        kwargs: dict[str, Any] = {}
        if occurred_at is not None:
            kwargs["occurred_at"] = occurred_at
        return NewEvent(event_type, schema.dump(loaded), version, **kwargs)

    def validate_envelope(self, envelope: Mapping[str, Any]) -> dict[str, Any]:
        """Check a received envelope's payload against the catalogue; returns the loaded payload."""
        schema = self.schema(envelope["type"], int(envelope["schema_version"]))
        try:
            return schema.load(envelope["payload"])
        except ValidationError as exc:
            raise EventSchemaError(
                f"{envelope['type']} v{envelope['schema_version']} payload is invalid",
                {"errors": exc.messages},
            ) from exc
