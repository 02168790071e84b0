"""nameko entrypoints of the customers service (thin: domain logic lives beside this module)."""

from shared.service import EventSourcedService


class CustomersService(EventSourcedService):
    """The customers service."""

    name = "customers"
