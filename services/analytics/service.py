"""nameko entrypoints of the analytics service (thin: domain logic lives beside this module)."""

from shared.service import EventSourcedService


class AnalyticsService(EventSourcedService):
    """The analytics service."""

    name = "analytics"
