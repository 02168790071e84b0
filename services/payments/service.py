"""nameko entrypoints of the payments service (thin: domain logic lives beside this module)."""

from shared.service import EventSourcedService


class PaymentsService(EventSourcedService):
    """The payments service."""

    name = "payments"
