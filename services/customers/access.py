"""Who may see and change which customers (DESIGN §5, Front door's roles).

- sales users see and change only the customers they own; any other id is *not found* (not
  forbidden), so ids of other users' customers do not leak;
- analysts read every customer, without contact details, and change nothing;
- only admins and managers assign owners, merge or erase; only admins define attributes.

``viewer`` and ``actor`` are the signed-in principal (``{"id", "role", ...}``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import Forbidden

CONTACT_FIELDS = ("emails", "phones", "addresses")
MANAGERS = ("admin", "manager")


def role(principal: Mapping[str, Any]) -> str | None:
    return principal.get("role")


def sees(viewer: Mapping[str, Any], owner_id: str | None) -> bool:
    """Whether ``viewer`` may see a customer owned by ``owner_id``."""
    if role(viewer) == "sales":
        return owner_id is not None and owner_id == viewer.get("id")
    return role(viewer) in ("admin", "manager", "analyst")


def contact_hidden(viewer: Mapping[str, Any]) -> bool:
    return role(viewer) == "analyst"


def require_writer(viewer: Mapping[str, Any]) -> None:
    if role(viewer) not in ("admin", "manager", "sales"):
        raise Forbidden("your role may not change customers", {"code": "read_only"})


def require_manager(principal: Mapping[str, Any], what: str) -> None:
    if role(principal) not in MANAGERS:
        raise Forbidden(f"only admins and managers may {what}", {"code": "manager_only"})


def require_admin(principal: Mapping[str, Any], what: str) -> None:
    if role(principal) != "admin":
        raise Forbidden(f"only admins may {what}", {"code": "admin_only"})


def redact(values: Mapping[str, Any]) -> dict[str, Any]:
    """Contact details taken out of a record, a change or an absorbed set (for analysts)."""
    result = {}
    for name, value in values.items():
        if name in CONTACT_FIELDS:
            continue
        result[name] = redact(value) if isinstance(value, Mapping) else value
    return result
