"""The event catalogue: docs/events.md, a JSON Schema per event type and version
(docs/events/<type>.v<version>.json) and an AsyncAPI 3.0 document (docs/asyncapi.yaml), all
generated from the marshmallow schemas the services validate their events with.

``python -m shared.catalogue`` writes them; ``--check`` exits 1 when the committed files differ
from what the code would generate (the drift test does the same). Writing refuses a breaking
change to a published event version (see :func:`breaking_changes` and the rules in
docs/events.md): a breaking change is a new version, registered beside the old one.

Mechanism only: the registries are found by name (``services/<service>/events.py``,
``registry``) for every service in ``shared.config.SERVICES``; a service without one publishes
no events.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import json
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from marshmallow import Schema, fields, validate

from shared.config import SERVICES
from shared.events import EventRegistry

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
SCHEMA_DIR = DOCS / "events"
RETIRED_FILE = SCHEMA_DIR / "retired.json"
JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
SCHEMA_ID_BASE = "https://cms.example/events/"
#: How long an old version keeps being published beside its successor (docs/events.md).
DEPRECATION_DAYS = 180

SEALED_REF = "#/$defs/sealed"
ERASED_REF = "#/$defs/erased"

SEALED_DEF: dict[str, Any] = {
    "title": "Sealed personal data",
    "description": (
        "AES-256-GCM ciphertext of the JSON value under the data subject's own key, the "
        "subject id bound in as associated data. Only the owning service opens it; once the "
        "subject is erased the key is destroyed and nobody can."
    ),
    "type": "object",
    "required": ["$sealed"],
    "properties": {
        "$sealed": {
            "type": "object",
            "required": ["subject", "alg", "nonce", "data"],
            "properties": {
                "subject": {"type": "string", "minLength": 1},
                "alg": {"const": "A256GCM"},
                "nonce": {"type": "string", "contentEncoding": "base64"},
                "data": {"type": "string", "contentEncoding": "base64"},
            },
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}

ERASED_DEF: dict[str, Any] = {
    "title": "Erased personal data",
    "description": (
        "What the HTTP event feed shows in place of a sealed value whose subject was erased "
        "(crypto-shredded). Never published on the bus."
    ),
    "type": "object",
    "required": ["$erased"],
    "properties": {
        "$erased": {
            "type": "object",
            "required": ["subject"],
            "properties": {"subject": {"type": "string"}},
            "additionalProperties": False,
        }
    },
    "additionalProperties": False,
}


@dataclass(frozen=True)
class EventVersion:
    source: str
    type: str
    version: int
    description: str
    schema: Schema

    @property
    def key(self) -> str:
        return f"{self.type}.v{self.version}"

    @property
    def exchange(self) -> str:
        return f"{self.source}.events"


# -- registries ---------------------------------------------------------------------------------


def registries(services: Iterable[str] = SERVICES) -> dict[str, EventRegistry]:
    """``{service: registry}`` for every service that has ``services/<service>/events.py``."""
    found: dict[str, EventRegistry] = {}
    for service in services:
        module_name = f"services.{service}.events"
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name in (module_name, f"services.{service}"):
                continue
            raise
        registry = getattr(module, "registry", None)
        if isinstance(registry, EventRegistry):
            found[service] = registry
    return found


def event_versions(services: Iterable[str] = SERVICES) -> list[EventVersion]:
    versions: list[EventVersion] = []
    seen: dict[tuple[str, int], str] = {}
    for source, registry in registries(services).items():
        for event_type, version in registry:
            if (event_type, version) in seen:
                raise ValueError(
                    f"{event_type} v{version} is registered by {seen[(event_type, version)]} "
                    f"and {source}: event types must be unique"
                )
            seen[(event_type, version)] = source
            versions.append(
                EventVersion(
                    source,
                    event_type,
                    version,
                    registry.description(event_type, version),
                    registry.schema(event_type, version),
                )
            )
    return sorted(versions, key=lambda e: (SERVICES.index(e.source), e.type, e.version))


# -- marshmallow → JSON Schema ------------------------------------------------------------------


@functools.cache
def event_types(source: str | None = None) -> frozenset[str]:
    """The event types of the catalogue: every service's, or one ``source``'s (what a
    webhook or the event feed may ask for)."""
    return frozenset(
        event.type for event in event_versions() if source is None or event.source == source
    )


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    if "enum" in schema and None not in schema["enum"]:
        schema = {**schema, "enum": [*schema["enum"], None]}
    if "const" in schema:
        return {"anyOf": [schema, {"type": "null"}]}
    kind = schema.get("type")
    if isinstance(kind, str):
        return {**schema, "type": [kind, "null"]}
    if isinstance(kind, list):
        return schema if "null" in kind else {**schema, "type": [*kind, "null"]}
    if not schema or set(schema) <= {"description"} or "enum" in schema:
        return schema  # any value (null included), or an enumeration that lists null
    return {"anyOf": [schema, {"type": "null"}]}


def _apply_validators(field: fields.Field, schema: dict[str, Any]) -> None:
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    for validator in getattr(field, "validators", ()):
        if isinstance(validator, validate.OneOf):
            schema["enum"] = list(validator.choices)
        elif isinstance(validator, validate.Equal):
            schema["const"] = validator.comparable
        elif isinstance(validator, validate.Length):
            low, high = ("minItems", "maxItems") if kind == "array" else ("minLength", "maxLength")
            if kind == "object":
                low, high = "minProperties", "maxProperties"
            if validator.equal is not None:
                schema[low] = schema[high] = validator.equal
            else:
                if validator.min is not None:
                    schema[low] = validator.min
                if validator.max is not None:
                    schema[high] = validator.max
        elif isinstance(validator, validate.Range):
            if validator.min is not None:
                key = "minimum" if validator.min_inclusive else "exclusiveMinimum"
                schema[key] = validator.min
            if validator.max is not None:
                key = "maximum" if validator.max_inclusive else "exclusiveMaximum"
                schema[key] = validator.max
        elif isinstance(validator, validate.Regexp):
            schema["pattern"] = validator.regex.pattern


def is_sealed_field(field: fields.Field) -> bool:
    """The services' sealed fields (personal data): a field class named ``Sealed…``
    (``shared.sealing.SealedField`` or a service's own ``Sealed``, which may describe its
    plain value in ``.plain``)."""
    return any(cls.__name__.startswith("Sealed") for cls in type(field).__mro__)


def field_schema(field: fields.Field) -> dict[str, Any]:
    """The JSON Schema of one marshmallow field (without its nullability)."""
    override = field.metadata.get("jsonschema")
    if isinstance(override, Mapping):
        schema = dict(override)
    elif is_sealed_field(field):
        schema = {"anyOf": [{"$ref": SEALED_REF}, {"$ref": ERASED_REF}], "x-cms-sealed": True}
        if isinstance(getattr(field, "plain", None), fields.Field):
            schema["x-plain"] = field_schema(field.plain)
    elif isinstance(field, fields.Nested):
        nested = field.schema
        schema = object_schema(nested if isinstance(nested, Schema) else nested())
        if getattr(field, "many", False):
            schema = {"type": "array", "items": schema}
    elif isinstance(field, fields.List):
        schema = {"type": "array", "items": _nullable_field(field.inner)}
    elif isinstance(field, fields.Tuple):
        items = [_nullable_field(inner) for inner in field.tuple_fields]
        schema = {
            "type": "array",
            "prefixItems": items,
            "items": False,
            "minItems": len(items),
        }
    elif isinstance(field, fields.Dict | fields.Mapping):
        schema = {"type": "object"}
        if field.value_field is not None:
            schema["additionalProperties"] = _nullable_field(field.value_field)
        if field.key_field is not None:
            keys = field_schema(field.key_field)
            if keys.get("enum") or keys.get("pattern"):
                schema["propertyNames"] = {k: v for k, v in keys.items() if k != "type"}
    elif isinstance(field, fields.UUID):
        schema = {"type": "string", "format": "uuid"}
    elif isinstance(field, fields.Email):
        schema = {"type": "string", "format": "email"}
    elif isinstance(field, fields.Url):
        schema = {"type": "string", "format": "uri"}
    elif isinstance(field, fields.String):
        schema = {"type": "string"}
    elif isinstance(field, fields.Boolean):
        schema = {"type": "boolean"}
    elif isinstance(field, fields.Integer):
        schema = {"type": "integer"}
    elif isinstance(field, fields.Decimal):
        schema = {"type": "string"} if field.as_string else {"type": "number"}
    elif isinstance(field, fields.Number | fields.TimeDelta):
        schema = {"type": "number"}
    elif isinstance(field, fields.Date) and not isinstance(field, fields.DateTime):
        schema = {"type": "string", "format": "date"}
    elif isinstance(field, fields.DateTime) or "DateTime" in type(field).__name__:
        schema = {"type": "string", "format": "date-time"}
    elif isinstance(field, fields.Time):
        schema = {"type": "string", "format": "time"}
    elif isinstance(field, fields.Enum):
        if field.by_value:
            schema = {"enum": [member.value for member in field.enum]}
        else:
            schema = {"type": "string", "enum": [member.name for member in field.enum]}
    elif isinstance(field, fields.Constant):
        schema = {"const": field.constant}
    else:  # Raw, Method, Function, or a custom field that says nothing about its shape
        schema = {}
    _apply_validators(field, schema)
    description = field.metadata.get("description")
    if description:
        schema["description"] = description
    return schema


def _nullable_field(field: fields.Field) -> dict[str, Any]:
    schema = field_schema(field)
    return _nullable(schema) if field.allow_none else schema


def object_schema(schema: Schema) -> dict[str, Any]:
    """A marshmallow schema as a JSON object schema. Consumers must accept properties they do
    not know (additive changes within a version), so ``additionalProperties`` is not false."""
    properties: dict[str, Any] = {}
    required: list[str] = []
    for name, field in schema.fields.items():
        if field.load_only:
            continue
        key = field.data_key or name
        properties[key] = _nullable_field(field)
        if field.required:
            required.append(key)
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    return result


def envelope_schema(event: EventVersion, deprecated: bool = False) -> dict[str, Any]:
    """The JSON Schema of a whole message of one event type and version."""
    extra = {"deprecated": True} if deprecated else {}
    return {
        **extra,
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": f"{SCHEMA_ID_BASE}{event.key}.json",
        "title": f"{event.type} v{event.version}",
        "description": event.description,
        "type": "object",
        "required": [
            "event_id",
            "type",
            "schema_version",
            "source",
            "stream_type",
            "stream_id",
            "stream_version",
            "position",
            "occurred_at",
            "metadata",
            "payload",
        ],
        "properties": {
            "event_id": {
                "type": "string",
                "format": "uuid",
                "description": "Unique per event: de-duplicate on it.",
            },
            "type": {"const": event.type},
            "schema_version": {"const": event.version},
            "source": {"const": event.source},
            "stream_type": {"type": "string"},
            "stream_id": {"type": "string"},
            "stream_version": {
                "type": "integer",
                "minimum": 1,
                "description": "1, 2, 3 … within the stream, without gaps.",
            },
            "position": {
                "type": "integer",
                "minimum": 1,
                "description": "Strictly increasing in commit order within the source service.",
            },
            "occurred_at": {"type": "string", "format": "date-time"},
            "metadata": {
                "type": "object",
                "description": "request_id, correlation_id, causation_id, actor, … (open).",
            },
            "payload": object_schema(event.schema),
        },
        "$defs": {"sealed": SEALED_DEF, "erased": ERASED_DEF},
    }


def strict(schema: Any) -> Any:
    """A copy where every object with declared properties refuses undeclared ones: what the
    producers' own tests validate against (a field the catalogue does not describe is drift)."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {key: strict(value) for key, value in schema.items()}
    if "properties" in result and "additionalProperties" not in result:
        result["additionalProperties"] = False
    return result


# -- evolution rules ----------------------------------------------------------------------------


def _types(schema: Mapping[str, Any]) -> set[str] | None:
    if schema.get("x-cms-sealed"):
        return {"$sealed"}
    kind = schema.get("type")
    if isinstance(kind, str):
        return {kind}
    if isinstance(kind, list):
        return set(kind)
    if "anyOf" in schema:
        found: set[str] = set()
        for option in schema["anyOf"]:
            inner = _types(option)
            if inner is None:
                return None
            found |= inner
        return found
    if "const" in schema or "enum" in schema:
        return None
    return None  # any value


def breaking_changes(old: Mapping[str, Any], new: Mapping[str, Any], path: str = "") -> list[str]:
    """Why ``new`` would break a consumer written against ``old`` (both JSON Schemas of the same
    event type and version). Allowed: new optional or required fields, new enum values, a type
    narrowed (e.g. no longer null). Breaking: a field removed, no longer always present, its type
    changed or widened (e.g. may now be null), sealed ↔ plain, a format changed."""
    where = path or "payload"
    problems: list[str] = []
    old_types, new_types = _types(old), _types(new)
    if old_types is not None and (new_types is None or not new_types <= old_types):
        shown = sorted(new_types) if new_types is not None else "any"
        problems.append(f"{where}: type {sorted(old_types)} became {shown}")
        return problems
    if old.get("format") != new.get("format") and old.get("format"):
        problems.append(f"{where}: format {old.get('format')} became {new.get('format')}")
    if "const" in old and old.get("const") != new.get("const"):
        problems.append(f"{where}: constant {old['const']!r} became {new.get('const')!r}")
    if "x-plain" in old and "x-plain" in new:
        problems += breaking_changes(old["x-plain"], new["x-plain"], f"{where}(sealed)")
    old_props = old.get("properties") or {}
    new_props = new.get("properties") or {}
    for name, old_prop in old_props.items():
        child = f"{path}.{name}" if path else name
        if name not in new_props:
            problems.append(f"{child}: removed")
            continue
        if name in (old.get("required") or ()) and name not in (new.get("required") or ()):
            problems.append(f"{child}: no longer required (consumers rely on it being there)")
        problems += breaking_changes(old_prop, new_props[name], child)
    for key in ("items", "additionalProperties"):
        if isinstance(old.get(key), Mapping) and isinstance(new.get(key), Mapping):
            problems += breaking_changes(old[key], new[key], f"{where}[{key}]")
    if "anyOf" in old and "anyOf" in new and not old.get("x-cms-sealed"):
        concrete_old = [o for o in old["anyOf"] if o != {"type": "null"}]
        concrete_new = [o for o in new["anyOf"] if o != {"type": "null"}]
        if len(concrete_old) == 1 and len(concrete_new) == 1:
            problems += breaking_changes(concrete_old[0], concrete_new[0], where)
    return problems


def retired() -> dict[str, Any]:
    """Event versions withdrawn after their deprecation period: ``{"<type>.v<n>": {...}}``."""
    if not RETIRED_FILE.exists():
        return {}
    return json.loads(RETIRED_FILE.read_text())


def compatibility_problems(
    published: Mapping[str, Mapping[str, Any]], current: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Breaking changes of ``current`` schemas (``{key: envelope schema}``) against the
    ``published`` ones (the committed files)."""
    gone = retired()
    problems = []
    for key, old in sorted(published.items()):
        if key not in current:
            if key not in gone:
                problems.append(
                    f"{key}: a published event version was removed (list it in "
                    f"{RETIRED_FILE.relative_to(ROOT)} once its deprecation period is over)"
                )
            continue
        old_payload = old["properties"]["payload"]
        new_payload = current[key]["properties"]["payload"]
        problems += [f"{key}: {p}" for p in breaking_changes(old_payload, new_payload)]
    return problems


def published_schemas(directory: Path = SCHEMA_DIR) -> dict[str, dict[str, Any]]:
    return {
        path.name.removesuffix(".json"): json.loads(path.read_text())
        for path in sorted(directory.glob("*.v*.json"))
    }


# -- documents ----------------------------------------------------------------------------------

RULES = f"""\
## Rules for evolving an event

1. **Within a version only additive changes.** A producer may add a field (optional or
   always present), add a value to an enumeration, or stop sending `null` where it used to.
   Consumers therefore ignore fields they do not know and treat an unknown enumeration value
   as "other". The JSON Schemas here do not forbid unknown properties for that reason.
2. **Anything else is a breaking change and gets a new version**: removing or renaming a
   field, changing its type or format, making it nullable or optional, sealing a plain field
   (or the reverse), changing its meaning. The new version is registered beside the old one
   (`@registry.register("customer.updated", 2, …)`), appears here as its own schema, and the
   producer publishes **both versions for at least {DEPRECATION_DAYS} days** after the new one
   is released (each message says which in `schema_version`; subscribers filter on it). Only
   after that period may the old version be withdrawn, and it is then listed in
   `docs/events/retired.json`.
3. **Enforced by tests**: `tests/integration/test_catalogue.py` regenerates this catalogue and fails
   when the committed files differ (drift), and compares the code's schemas against the
   committed (published) ones, failing on any breaking change within a version or a version
   removed before it was retired. `python -m shared.catalogue` refuses to write a breaking
   change for the same reason.
"""

ENVELOPE_DOC = """\
## Routing and the envelope

Each service publishes on its own durable **topic exchange `<service>.events`**; the **routing
key is the event type** (`customer.registered`). Bind a queue with `#` for everything of a
service, `customer.*` for one aggregate, or an exact type. Messages are persistent JSON
(`content-type: application/json`), published after the transaction that recorded them
committed (transactional outbox), **at least once**: de-duplicate on `event_id`. Within one
service, `position` strictly increases in commit order; within one stream, `stream_version`
counts 1, 2, 3 … without gaps. Live delivery may reorder or (if your queue was not bound yet)
miss messages: fill gaps and catch up from the HTTP feed (`GET /api/v1/events/<service>`).

| field | meaning |
|---|---|
| `event_id` | UUID of the event, unique for ever: the de-duplication key |
| `type` | the event type, also the routing key |
| `schema_version` | which version of the type's schema the payload follows |
| `source` | the publishing service (`customers`, …) |
| `stream_type`, `stream_id` | the aggregate the event belongs to (`customer` / its id) |
| `stream_version` | the event's number within its stream |
| `position` | the event's place in the source service's log (the feed's cursor) |
| `occurred_at` | when it was recorded, UTC ISO 8601 with `Z` |
| `metadata` | `request_id`, `correlation_id`, `causation_id`, the actor … (open-ended) |
| `payload` | the event's data, described per type below |

AMQP headers: `cms.event_type`, and `nameko.request_id` / `nameko.correlation_id` when known.

## Personal data: sealed fields

Personal data (names, e-mail addresses, phone numbers, postal addresses, notes about a person,
IP addresses of sign-ins, …) never travels in clear. Each such field (marked **sealed** below,
`"x-cms-sealed": true` in the JSON Schemas) carries

```json
{"$sealed": {"subject": "<customer id>", "alg": "A256GCM", "nonce": "<b64>", "data": "<b64>"}}
```

AES-256-GCM ciphertext of the JSON value (described under `x-plain`) under a key of that
person, which only the owning service holds. Erasing the person destroys the key
(`customer.erased`, `user.erased`): the value can never be opened again, anywhere, although
the event stays in the log. A `null` is never sealed. Subscribers that need personal data
ask the owning service's API for the current record (with a role allowed to see it); the HTTP
event feed shows the sealed values of an erased subject as `{"$erased": {"subject": "<id>"}}`.
"""


def _type_label(schema: Mapping[str, Any]) -> str:
    if schema.get("x-cms-sealed"):
        return "sealed " + _type_label(schema.get("x-plain") or {})
    kind = schema.get("type")
    if "anyOf" in schema:
        return " or ".join(_type_label(option) for option in schema["anyOf"])
    if isinstance(kind, list):
        return " or ".join(
            _type_label({**schema, "type": k}) if k != "null" else "null" for k in kind
        )
    if kind == "array":
        return f"array of {_type_label(schema.get('items') or {})}"
    if kind == "string" and schema.get("format"):
        return f"string ({schema['format']})"
    if kind:
        return str(kind)
    if "const" in schema:
        return json.dumps(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(json.dumps(v) for v in schema["enum"])
    return "any"


def _constraints(schema: Mapping[str, Any]) -> str:
    parts = []
    if "enum" in schema and schema.get("type"):
        parts.append("one of " + ", ".join(f"`{v}`" for v in schema["enum"] if v is not None))
    for key in ("minLength", "maxLength", "minItems", "maxItems", "minimum", "maximum"):
        if key in schema:
            parts.append(f"{key} {schema[key]}")
    if "pattern" in schema:
        parts.append(f"pattern `{schema['pattern']}`")
    if "const" in schema and schema.get("type"):
        parts.append(f"= `{schema['const']}`")
    return "; ".join(parts)


def _rows(schema: Mapping[str, Any], prefix: str = "") -> list[str]:
    rows = []
    required = set(schema.get("required") or ())
    for name, prop in (schema.get("properties") or {}).items():
        label = _type_label(prop)
        notes = _constraints(prop)
        plain = prop.get("x-plain") or {}
        inner = plain.get("items") if plain.get("type") == "array" else plain
        if prop.get("x-cms-sealed") and isinstance(inner, Mapping) and inner.get("properties"):
            notes = (notes + "; " if notes else "") + "inside: " + ", ".join(inner["properties"])
        description = (prop.get("description") or "").replace("|", "\\|")
        if prop.get("x-cms-sealed"):
            description = ""
        cells = [
            f"`{prefix}{name}`",
            label,
            "yes" if name in required else "no",
            "; ".join(p for p in (notes, description) if p),
        ]
        rows.append("| " + " | ".join(cells) + " |")
        target = prop
        if "anyOf" in prop and not prop.get("x-cms-sealed"):
            target = next((o for o in prop["anyOf"] if o.get("properties")), prop)
        if target.get("type") == "array" or target.get("type") == ["array", "null"]:
            target = target.get("items") or {}
        if target.get("properties") and not prop.get("x-cms-sealed"):
            rows += _rows(target, f"{prefix}{name}.")
    return rows


def render_markdown(events: list[EventVersion], schemas: Mapping[str, Any]) -> str:
    lines = [
        "# Event catalogue",
        "",
        "<!-- Generated by `python -m shared.catalogue` from the services' marshmallow schemas."
        " Do not edit by hand: a test fails when this file and the code differ. -->",
        "",
        "Every event CMS publishes, by service, type and version. Each has a JSON Schema of the "
        "whole message in `docs/events/<type>.v<version>.json` (JSON Schema 2020-12), and "
        "`docs/asyncapi.yaml` (AsyncAPI 3.0) describes the same for tooling.",
        "",
        ENVELOPE_DOC,
        RULES,
        "## Events",
        "",
    ]
    by_source: dict[str, list[EventVersion]] = {}
    for event in events:
        by_source.setdefault(event.source, []).append(event)
    for source, items in by_source.items():
        lines.append(
            f"- **{source}** (exchange `{source}.events`): "
            + ", ".join(
                f"[`{e.type}` v{e.version}](#{e.type.replace('.', '')}-v{e.version})" for e in items
            )
        )
    lines.append("")
    for source, items in by_source.items():
        lines += [f"### {source} — exchange `{source}.events`", ""]
        for event in items:
            payload = schemas[event.key]["properties"]["payload"]
            newer = [e.version for e in items if e.type == event.type and e.version > event.version]
            deprecation = (
                [
                    f"**Deprecated**: v{max(newer)} replaces it; both are published for at least "
                    f"{DEPRECATION_DAYS} days after v{max(newer)} was released.",
                    "",
                ]
                if newer
                else []
            )
            lines += [
                f"#### {event.type} v{event.version}",
                "",
                *deprecation,
                event.description or "(no description)",
                "",
                f"Routing key `{event.type}` on `{event.exchange}`; schema "
                f"[`events/{event.key}.json`](events/{event.key}.json).",
                "",
            ]
            rows = _rows(payload)
            if rows:
                lines += ["| payload field | type | always present | notes |", "|---|---|---|---|"]
                lines += rows
            else:
                lines.append("The payload has no fields beyond the envelope.")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _asyncapi_refs(schema: Any, key: str) -> Any:
    if isinstance(schema, list):
        return [_asyncapi_refs(item, key) for item in schema]
    if not isinstance(schema, dict):
        return schema
    result = {}
    for name, value in schema.items():
        if name in ("$schema", "$id", "$defs"):
            continue
        if name == "$ref" and value == SEALED_REF:
            value = "#/components/schemas/SealedValue"
        elif name == "$ref" and value == ERASED_REF:
            value = "#/components/schemas/ErasedValue"
        result[name] = _asyncapi_refs(value, key)
    return result


def _asyncapi_id(text: str) -> str:
    return text.replace(".", "_")


def render_asyncapi(events: list[EventVersion], schemas: Mapping[str, Any]) -> str:
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    components_schemas: dict[str, Any] = {
        "SealedValue": _asyncapi_refs(SEALED_DEF, ""),
        "ErasedValue": _asyncapi_refs(ERASED_DEF, ""),
    }
    by_type: dict[tuple[str, str], list[EventVersion]] = {}
    for event in events:
        by_type.setdefault((event.source, event.type), []).append(event)
    for (source, event_type), versions in by_type.items():
        channel_id = _asyncapi_id(f"{source}.{event_type}")
        channel_messages = {}
        for event in versions:
            message_id = _asyncapi_id(event.key)
            components_schemas[message_id] = _asyncapi_refs(schemas[event.key], event.key)
            messages[message_id] = {
                "name": event.type,
                "title": f"{event.type} v{event.version}",
                "summary": event.description,
                "contentType": "application/json",
                "payload": {"$ref": f"#/components/schemas/{message_id}"},
                "bindings": {"amqp": {"deliveryMode": 2, "bindingVersion": "0.3.0"}},
            }
            channel_messages[message_id] = {"$ref": f"#/components/messages/{message_id}"}
        channels[channel_id] = {
            "address": event_type,
            "title": f"{event_type} on {source}.events",
            "servers": [{"$ref": "#/servers/rabbitmq"}],
            "messages": channel_messages,
            "bindings": {
                "amqp": {
                    "is": "routingKey",
                    "exchange": {
                        "name": f"{source}.events",
                        "type": "topic",
                        "durable": True,
                        "autoDelete": False,
                        "vhost": "/",
                    },
                    "bindingVersion": "0.3.0",
                }
            },
        }
        operations[f"receive_{channel_id}"] = {
            "action": "receive",
            "title": f"Receive {event_type}",
            "channel": {"$ref": f"#/channels/{channel_id}"},
            "messages": [
                {"$ref": f"#/channels/{channel_id}/messages/{name}"} for name in channel_messages
            ],
        }
    document = {
        "asyncapi": "3.0.0",
        "info": {
            "title": "CMS events",
            "version": "1.0.0",
            "description": (
                "Every event CMS publishes. Generated from the services' marshmallow schemas by "
                "`python -m shared.catalogue`; docs/events.md explains routing, the envelope, "
                "sealed personal data and the evolution rules."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "rabbitmq": {
                "host": "localhost:5672",
                "protocol": "amqp",
                "protocolVersion": "0.9.1",
                "description": "The CMS RabbitMQ broker (use your deployment's host and vhost).",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"schemas": components_schemas, "messages": messages},
    }
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True, width=100)


def _dump_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


def generate(services: Iterable[str] = SERVICES) -> dict[Path, str]:
    """Every catalogue file by path, as the code says it should be."""
    events = event_versions(services)
    schemas = _schemas(events)
    files = {
        DOCS / "events.md": render_markdown(events, schemas),
        DOCS / "asyncapi.yaml": render_asyncapi(events, schemas),
    }
    for key, schema in schemas.items():
        files[SCHEMA_DIR / f"{key}.json"] = _dump_json(schema)
    return files


def _schemas(events: list[EventVersion]) -> dict[str, dict[str, Any]]:
    """Every event version's schema; ``deprecated`` where a newer version of the type exists."""
    latest: dict[str, int] = {}
    for event in events:
        latest[event.type] = max(latest.get(event.type, 0), event.version)
    return {
        event.key: envelope_schema(event, deprecated=event.version < latest[event.type])
        for event in events
    }


def current_schemas(services: Iterable[str] = SERVICES) -> dict[str, dict[str, Any]]:
    return _schemas(event_versions(services))


def drift(files: Mapping[Path, str] | None = None) -> list[str]:
    """Paths whose committed content differs from what the code generates (or is stale)."""
    files = generate() if files is None else files
    different = [
        str(path.relative_to(ROOT))
        for path, content in files.items()
        if not path.exists() or path.read_text() != content
    ]
    for path in SCHEMA_DIR.glob("*.v*.json"):
        if path not in files and path.name.removesuffix(".json") not in retired():
            different.append(f"{path.relative_to(ROOT)} (no such event version in the code)")
    return sorted(different)


def write(files: Mapping[Path, str]) -> list[Path]:
    problems = compatibility_problems(published_schemas(), current_schemas())
    if problems:
        raise SystemExit(
            "refusing to publish breaking changes within a version (add a new version instead):\n"
            + "\n".join(f"  - {problem}" for problem in problems)
        )
    written = []
    SCHEMA_DIR.mkdir(parents=True, exist_ok=True)
    for path, content in files.items():
        if not path.exists() or path.read_text() != content:
            path.write_text(content)
            written.append(path)
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m shared.catalogue", description="write or check the event catalogue"
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when the committed catalogue differs"
    )
    args = parser.parse_args(argv)
    if args.check:
        different = drift()
        problems = compatibility_problems(published_schemas(), current_schemas())
        for line in different:
            print(f"differs: {line}")
        for line in problems:
            print(f"breaking: {line}")
        raise SystemExit(1 if different or problems else 0)
    for path in write(generate()):
        print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main(sys.argv[1:])
