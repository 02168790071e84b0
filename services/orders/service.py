"""nameko entrypoints of the orders service (thin: domain logic lives beside this module)."""

from shared.service import EventSourcedService


class OrdersService(EventSourcedService):
    """The orders service."""

    name = "orders"
