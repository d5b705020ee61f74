"""RabbitMQ adapter (aio-pika) for distributed mode: commands by request/reply from the
API replicas to the core, and the core's event stream to the projector and the API
replicas. Names, message formats and invariants: :mod:`.wire`, :mod:`.commands`,
:mod:`.events`; how the processes use them: docs/distributed.md.

Invariant: the core's journal is the source of truth; RabbitMQ is a transport. Nothing
acknowledged to a client depends on a message surviving in the broker.
"""

from __future__ import annotations

from tradewind.adapters.amqp.commands import AmqpCommandClient, AmqpCommandServer, Applied
from tradewind.adapters.amqp.events import (
    AmqpEventFollower,
    AmqpEventPublisher,
    AmqpReplayServer,
    AmqpSequencedConsumer,
    CoreWatch,
)
from tradewind.adapters.amqp.link import AmqpLink
from tradewind.adapters.amqp.wire import AmqpNames, CoreStatus, EventBatch

__all__ = [
    "AmqpCommandClient",
    "AmqpCommandServer",
    "AmqpEventFollower",
    "AmqpEventPublisher",
    "AmqpLink",
    "AmqpNames",
    "AmqpReplayServer",
    "AmqpSequencedConsumer",
    "Applied",
    "CoreStatus",
    "CoreWatch",
    "EventBatch",
]
