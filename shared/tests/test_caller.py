"""``shared.testing.Caller``: overlapping calls of one container's entrypoints each get their
own result, also when they end in the other order than they began (nameko's
``entrypoint_hook`` loses the second one then, and it times out)."""

import eventlet
import pytest
from eventlet.event import Event
from nameko.rpc import rpc

from shared.testing import Caller

RELEASED = Event()


class Overlapping:
    name = "overlapping"

    @rpc
    def wait_for_release(self):
        RELEASED.wait()
        return "released"

    @rpc
    def release_then_finish(self):
        RELEASED.send()
        eventlet.sleep(0.2)  # ends after the call it released
        return "finished"

    @rpc
    def refuse(self):
        raise ValueError("refused")


def test_overlapping_calls_that_end_in_the_other_order_both_answer(
    container_factory, nameko_config
):
    container = container_factory(Overlapping, nameko_config)
    container.start()
    caller = Caller(container, timeout=10)
    first = eventlet.spawn(caller.wait_for_release)
    eventlet.sleep(0.1)
    assert caller.release_then_finish() == "finished"
    assert first.wait() == "released"
    with pytest.raises(ValueError, match="refused"):
        caller.refuse()
    with pytest.raises(AttributeError):
        caller.no_such_entrypoint
