"""nameko entrypoints of the users service (thin: domain logic lives beside this module)."""

from shared.service import EventSourcedService


class UsersService(EventSourcedService):
    """The users service."""

    name = "users"
