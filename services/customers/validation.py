"""Checks that need more than a field's own value: phone numbers (their default region comes
from the record's addresses) and custom attribute values (their type comes from an admin's
definition). Pure functions returning normalised values and per-field errors."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

from services.customers.codes import COUNTRIES
from shared.phones import DEFAULT_REGION
from shared.phones import normalise_phone as shared_normalise_phone

MAX_ATTRIBUTE_TEXT = 500
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Errors = dict[str, Any]


def normalise_phone(raw: str, region: str) -> str:
    """``raw`` as E.164 (``shared.phones``); a region that is no country of ours is CN."""
    return shared_normalise_phone(raw, region if region in COUNTRIES else DEFAULT_REGION)


def normalise_phones(
    entries: Sequence[Mapping[str, Any]], region: str
) -> tuple[list[dict[str, Any]], Errors]:
    """E.164 numbers, one entry per number (a repeat is an error)."""
    result: list[dict[str, Any]] = []
    errors: Errors = {}
    seen: dict[str, int] = {}
    for index, entry in enumerate(entries):
        if not isinstance(entry, Mapping) or not isinstance(entry.get("number"), str):
            continue  # the entry's own errors are reported already
        try:
            number = normalise_phone(str(entry["number"]), region)
        except ValueError as exc:
            errors[str(index)] = {"number": [str(exc)]}
            continue
        if number in seen:
            errors[str(index)] = {"number": [f"Same number as entry {seen[number]}."]}
            continue
        seen[number] = index
        result.append({**entry, "number": number})
    return result, errors


def attribute_value(definition: Mapping[str, Any], value: Any) -> Any:
    """``value`` checked against its definition and normalised; raises ``ValueError``."""
    kind = definition["type"]
    if kind == "string":
        if not isinstance(value, str):
            raise ValueError("Must be text.")
        value = value.strip()
        if len(value) > MAX_ATTRIBUTE_TEXT:
            raise ValueError(f"At most {MAX_ATTRIBUTE_TEXT} characters.")
        return value
    if kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError("Must be a number.")
        if not math.isfinite(value):
            raise ValueError("Must be a finite number.")
        return int(value) if isinstance(value, float) and value.is_integer() else value
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ValueError("Must be true or false.")
        return value
    if kind == "date":
        if isinstance(value, str) and _DATE.match(value):
            try:
                return date.fromisoformat(value).isoformat()
            except ValueError:
                pass
        raise ValueError("Must be a date, like 2026-03-01.")
    if kind == "choice":
        options = definition.get("options") or []
        if value not in options:
            raise ValueError(f"Must be one of: {', '.join(options)}.")
        return value
    raise ValueError("Unknown attribute type.")


def attribute_values(
    definitions: Mapping[str, Mapping[str, Any]],
    values: Mapping[str, Any],
    allow_unset: bool,
) -> tuple[dict[str, Any], Errors]:
    """Values checked against their definitions; None (when ``allow_unset``) removes."""
    result: dict[str, Any] = {}
    errors: Errors = {}
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is None:
            errors[key] = ["Unknown attribute; an admin defines attributes first."]
            continue
        if value is None:
            if allow_unset:
                result[key] = None
            else:
                errors[key] = ["Field may not be null."]
            continue
        try:
            result[key] = attribute_value(definition, value)
        except ValueError as exc:
            errors[key] = [str(exc)]
    return result, errors
