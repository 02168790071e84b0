"""Who may see and change which orders, consistent with the customers service
(services/customers/access.py):

- sales users see and change only the orders of customers they own (the replica's
  ``owner_id``); any other order is *not found*, so ids do not leak;
- analysts read every order and change nothing;
- admins and managers see and change everything, and alone manage the catalogue and import.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.errors import Forbidden

MANAGERS = ("admin", "manager")
WRITERS = ("admin", "manager", "sales")


def role(principal: Mapping[str, Any]) -> str | None:
    return principal.get("role")


def sees(viewer: Mapping[str, Any], owner_id: str | None) -> bool:
    if role(viewer) == "sales":
        return owner_id is not None and owner_id == viewer.get("id")
    return role(viewer) in ("admin", "manager", "analyst", "system")


def require_writer(viewer: Mapping[str, Any]) -> None:
    if role(viewer) not in (*WRITERS, "system"):
        raise Forbidden("your role may not change orders", {"code": "read_only"})


def require_manager(principal: Mapping[str, Any], what: str) -> None:
    if role(principal) not in (*MANAGERS, "system"):
        raise Forbidden(f"only admins and managers may {what}", {"code": "manager_only"})


#: Status actions after which the payments service gives back what was paid on the order.
REFUNDING_ACTIONS = ("cancel", "return")


def require_may_act(viewer: Mapping[str, Any], action: str, paid_amount: int) -> None:
    """Writers act on orders; a cancel or return of an order with money paid on it is a
    refund, and refunds are for admins and managers (as one asked of payments directly is)."""
    require_writer(viewer)
    if action in REFUNDING_ACTIONS and paid_amount > 0:
        require_manager(viewer, f"{action} an order with money paid on it (a refund)")


def may_act(viewer: Mapping[str, Any] | None, action: str, paid_amount: int) -> bool:
    """Whether :func:`require_may_act` lets ``viewer`` (None: the service itself) act."""
    if viewer is None:
        return True
    try:
        require_may_act(viewer, action, paid_amount)
    except Forbidden:
        return False
    return True
