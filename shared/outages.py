"""nameko under a RabbitMQ restart: what it does by default, and what a CMS process does instead.

When the broker closes its connections (``rabbitmqctl stop_app``, a restart, a network cut),
nameko 2.14 kills the whole service container if a worker then fails to publish its RPC reply
or to acknowledge its message, because it only expects ``amqp``'s own ``ConnectionError``
there, not the socket errors (``ConnectionResetError``, ``BrokenPipeError``) it gets. Neither
needs the process to die: an unacknowledged message comes back once the broker is up again
(RPCs are then refused as ``interrupted``, events are applied once by their idempotent
consumers), and the caller of a lost reply gets its timeout, a 503. ``make chaos FAULTS=real``
found both.
"""

from __future__ import annotations

import logging

from amqp.exceptions import ConnectionError as AmqpConnectionError
from kombu.exceptions import OperationalError as BrokerUnavailable
from nameko.messaging import QueueConsumer
from nameko.rpc import Rpc as RpcEntrypoint

log = logging.getLogger(__name__)

#: What publishing or acknowledging raises while RabbitMQ is away.
BROKER_OUTAGES = (BrokerUnavailable, AmqpConnectionError, ConnectionError)


def survive_broker_restarts() -> None:
    """Patch nameko (once per process; ``shared.serve`` calls it) as the docstring says."""
    if getattr(QueueConsumer, "_cms_survives_broker_restarts", False):
        return
    send_reply = RpcEntrypoint.handle_result

    def handle_result(self, message, worker_ctx, result, exc_info):
        try:
            return send_reply(self, message, worker_ctx, result, exc_info)
        except BROKER_OUTAGES as exc:
            log.warning(
                "could not send the reply of %s.%s: %s",
                self.container.service_name,
                self.method_name,
                exc,
            )
            return result, exc_info

    def settle(original):
        def guarded(self, message):
            try:
                original(self, message)
            except BROKER_OUTAGES as exc:
                log.warning("could not settle a message with the broker (redelivered): %s", exc)

        return guarded

    RpcEntrypoint.handle_result = handle_result
    QueueConsumer.ack_message = settle(QueueConsumer.ack_message)
    QueueConsumer.requeue_message = settle(QueueConsumer.requeue_message)
    QueueConsumer._cms_survives_broker_restarts = True
