"""What travels over RabbitMQ in distributed mode: names and message bodies.

Every name starts with the deployment's prefix ``P`` (setting ``amqp_prefix``), so
several deployments (or tests) share one broker without meeting:

| name | kind | who declares | what |
|---|---|---|---|
| ``P.commands`` | durable queue (default exchange) | core | commands from API replicas |
| ``P.replay`` | durable queue (default exchange) | core | journal replay requests |
| ``P.events`` | durable fanout exchange | core and consumers | the commands' events, in seq order |
| ``P.status`` | durable fanout exchange | core and consumers | the core's heartbeat |
| ``P.projector`` | durable queue bound to ``P.events`` | projector | the projector's feed |
| ``amq.gen-*`` | exclusive, auto-delete queues | each replica | replies, live events, status |

Bodies are msgpack (msgspec). Invariants:
- a command is :func:`tradewind.core.codec.encode_command` of the unstamped command; the
  core stamps ``seq``/``ts``; a reply names its request by ``correlation_id``. A
  ``place`` whose id the core is to assign (id 0, which the schema refuses on the wire)
  travels with id 1 and the header ``x-tw-auto-id``, and the core sets it back to 0;
- an event message (type ``batch``) is one :class:`EventBatch` (the events of one
  durable command, with its ``seq`` and ``ts``), or (type ``batches``) a list of them in
  consecutive seq order, which the core sends when several commands are ready at once
  (ADR 0050); consumers key on ``seq``, so a duplicate is a no-op and a jump in ``seq``
  is a gap;
- a reply message (type ``reply``) is one :class:`CommandReply` whose request is the
  message's ``correlation_id``; a ``replies`` message is a list of :class:`ReplyTo`,
  each naming its request, for replies to the same queue that were ready at once;
- :class:`CoreStatus` carries ``published_seq``: every batch up to it has been handed
  to the broker (or was dropped, and must be replayed), so a consumer at a lower seq with
  nothing in flight knows it is missing batches.
"""

from __future__ import annotations

import msgspec

from tradewind.core.commands import AnyCommand
from tradewind.core.events import AnyEvent

CONTENT_TYPE = "application/msgpack"
DEADLINE_HEADER = "x-tw-deadline-ms"
AUTO_ID_HEADER = "x-tw-auto-id"
BATCH_TYPE = "batch"
"""Message type of an event message holding one :class:`EventBatch`."""
BATCHES_TYPE = "batches"
"""Message type of an event message holding a list of them."""
REPLY_TYPE = "reply"
"""Message type of one :class:`CommandReply` (its request named by the message's
correlation id)."""
REPLIES_TYPE = "replies"
"""Message type of a list of :class:`ReplyTo`: the replies to one reply queue that were
ready at once (ADR 0051)."""


class AmqpNames:
    """Exchange and queue names under one prefix."""

    def __init__(self, prefix: str = "tradewind") -> None:
        if not prefix or prefix.startswith("amq."):
            raise ValueError("the AMQP prefix must be non-empty and not start with 'amq.'")
        self.prefix = prefix
        self.commands = f"{prefix}.commands"
        self.replay = f"{prefix}.replay"
        self.events = f"{prefix}.events"
        self.status = f"{prefix}.status"

    def consumer_queue(self, name: str) -> str:
        """The durable queue of a named sequenced consumer (``P.projector``)."""
        return f"{self.prefix}.{name}"


class CommandReply(msgspec.Struct, frozen=True, omit_defaults=True):
    """The core's answer to one command.

    ``status``: ``ok`` (durable and applied: ``seq``, ``ts``, the stamped ``command`` and
    its ``events``, which may be a rejection), ``invalid`` (failed the schema; never
    journaled), ``unavailable`` (the core cannot accept commands; nothing was applied) or
    ``expired`` (the request's deadline had passed when the core took it: not applied).
    """

    status: str
    seq: int = 0
    ts: int = 0
    command: AnyCommand | None = None
    events: list[AnyEvent] = []
    message: str = ""


class ReplyTo(msgspec.Struct, frozen=True, array_like=True):
    """One reply inside a ``replies`` message, named by its request's correlation id."""

    correlation_id: str
    reply: CommandReply


class EventBatch(msgspec.Struct, frozen=True, array_like=True):
    """The events of one durable command."""

    seq: int
    ts: int
    events: list[AnyEvent]


class CoreStatus(msgspec.Struct, frozen=True):
    """The core's heartbeat."""

    instance: str
    """Random id of the core process (changes on every start)."""
    published_seq: int
    """Every batch up to this seq was handed to the broker or dropped (then replayable)."""
    durable_seq: int
    ts: int
    """The core's clock (epoch ms) when sent."""


class ReplayRequest(msgspec.Struct, frozen=True):
    """Ask the core to send the batches ``after + 1 .. until`` to ``reply_to``."""

    after: int
    until: int


_encoder = msgspec.msgpack.Encoder()
encode = _encoder.encode
decode_reply = msgspec.msgpack.Decoder(CommandReply).decode
decode_replies = msgspec.msgpack.Decoder(list[ReplyTo]).decode
decode_batch = msgspec.msgpack.Decoder(EventBatch).decode
decode_status = msgspec.msgpack.Decoder(CoreStatus).decode
decode_replay_request = msgspec.msgpack.Decoder(ReplayRequest).decode
_decode_batch_list = msgspec.msgpack.Decoder(list[EventBatch]).decode


def decode_batches(body: bytes, message_type: str | None) -> list[EventBatch]:
    """The batches of an event message: a list for type ``batches``, else one."""
    if message_type == BATCHES_TYPE:
        return _decode_batch_list(body)
    return [decode_batch(body)]
