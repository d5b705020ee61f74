"""Commands over RabbitMQ: request/reply between API replicas and the core.

Client (:class:`AmqpCommandClient`, an API replica's ``CommandBus``): publishes each
command to the durable queue ``P.commands`` (a quorum queue on RabbitMQ >= 3.10, ADR
0011) through the default exchange, with
publisher confirms, ``mandatory`` (so a queue nobody declared, i.e. a core that never
ran, is an immediate refusal), a ``correlation_id``, ``reply_to`` = its own exclusive
reply queue, a per-message TTL and a deadline header both equal to its timeout; then
waits for the reply.

Server (:class:`AmqpCommandServer`, in ``tradewind core``): consumes ``P.commands`` and
answers after the command is durable; the replies ready in one step of the loop (a group
commit's) leave as one message per reply queue (type ``replies``, ADR 0051).

Invariants:
- **at most once**: the server consumes with automatic acknowledgement (the broker
  forgets a command as it delivers it), so a command is never delivered, hence never
  applied, twice; a core killed with deliveries in flight loses them unapplied and
  their clients get :class:`CoreTimeout`. Commands published while no core consumes
  wait in the durable queue until a core starts or their TTL runs out;
- **no hang**: a client call ends within its timeout. It fails at once with
  :class:`CoreUnavailable` (nothing was applied) when the broker is unreachable, the
  core has not been heard for the liveness period (:class:`CoreWatch`), or the broker
  refused the message (unroutable, nacked); it fails with :class:`CoreTimeout` (the
  command may or may not have been applied) when no reply came in time, the connection
  was lost after publishing, or the core went silent while the request was pending;
- a command whose deadline has passed when the core takes it is not applied (reply
  ``expired``); the broker drops it earlier by the per-message TTL, without clock skew;
- replies are matched by ``correlation_id`` only; a reply nobody waits for is dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import msgspec
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractIncomingMessage,
    AbstractQueue,
)
from aio_pika.exceptions import ChannelPreconditionFailed, DeliveryError, PublishError

from tradewind.adapters.amqp.events import CoreWatch
from tradewind.adapters.amqp.link import AmqpLink
from tradewind.adapters.amqp.wire import (
    AUTO_ID_HEADER,
    CONTENT_TYPE,
    DEADLINE_HEADER,
    REPLIES_TYPE,
    REPLY_TYPE,
    AmqpNames,
    CommandReply,
    ReplyTo,
    decode_replies,
    decode_reply,
    encode,
)
from tradewind.core.codec import decode_command, encode_command
from tradewind.core.commands import AnyCommand, Place
from tradewind.core.events import Event
from tradewind.services.trading import (
    AppliedCommand,
    CoreFailure,
    CoreTimeout,
    CoreUnavailable,
    InvalidCommand,
)

log = structlog.get_logger(__name__)

CommandHandler = Callable[[AnyCommand], Awaitable[AppliedCommand]]
"""Apply one command; return once it is durable. Raises ``CoreFailure`` when the core
cannot take commands, ``ValueError`` when the command fails the schema."""


@dataclass(frozen=True, slots=True)
class Applied:
    """A reply of status ``ok``: satisfies ``services.trading.AppliedCommand``."""

    seq: int
    ts: int
    command: AnyCommand
    events: list[Event] = field(default_factory=list)


QUORUM_SINCE = (3, 10)
"""First RabbitMQ version whose quorum queues honour per-message TTL (ADR 0011)."""


def broker_version(connection: AbstractConnection) -> tuple[int, ...] | None:
    """The broker's version from the connection's server properties (None if unknown)."""
    try:
        raw = connection.transport.connection.server_properties.get("version")  # type: ignore[union-attr]
    except AttributeError:
        return None
    text = raw.decode() if isinstance(raw, bytes) else str(raw or "")
    parts: list[int] = []
    for piece in text.split("."):
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts) or None


def command_queue_arguments(version: tuple[int, ...] | None = None) -> dict[str, Any]:
    """Arguments of ``P.commands``: a quorum queue (replicated, on disk, Raft) when the
    broker is recent enough for per-message TTL on it (ADR 0011), else a classic one."""
    if version is not None and version >= QUORUM_SINCE:
        return {"x-queue-type": "quorum"}
    return {}


# -- client (API replica) ----------------------------------------------------------------


class AmqpCommandClient:
    """``CommandBus`` of an API replica. Register on the link before starting it."""

    def __init__(
        self,
        link: AmqpLink,
        names: AmqpNames,
        watch: CoreWatch,
        *,
        timeout_s: float,
        clock_ms: Callable[[], int] | None = None,
        on_outcome: Callable[[str, str, float], None] | None = None,
    ) -> None:
        self._link = link
        self._names = names
        self._watch = watch
        self.timeout_s = timeout_s
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._on_outcome = on_outcome
        self._channel: AbstractChannel | None = None
        self._reply_queue: AbstractQueue | None = None
        self._pending: dict[str, asyncio.Future[CommandReply]] = {}
        self._ids = itertools.count(1)
        self._tag = os.urandom(4).hex()
        link.add(self._on_connect, self._on_disconnect)
        watch.on_silence(self._on_core_silent)

    @property
    def available(self) -> bool:
        return self._channel is not None and self._link.connected and self._watch.alive

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def _on_connect(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        queue = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await queue.consume(self._on_reply, no_ack=True)
        self._reply_queue = queue
        self._channel = channel

    def _on_disconnect(self) -> None:
        self._channel = None
        self._reply_queue = None
        self._fail_pending("the connection to the broker was lost")

    def _on_core_silent(self) -> None:
        self._fail_pending("the trading core stopped answering")

    def _fail_pending(self, why: str) -> None:
        pending, self._pending = self._pending, {}
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(CoreTimeout(f"{why}; the command may or may not be applied"))

    async def _on_reply(self, message: AbstractIncomingMessage) -> None:
        self._watch.touch()
        if message.type == REPLIES_TYPE:
            try:
                items = decode_replies(message.body)
            except msgspec.DecodeError:
                log.warning("unreadable replies from the core dropped; their requests time out")
                return
            pending = self._pending
            for item in items:
                fut = pending.pop(item.correlation_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(item.reply)
            return
        fut = self._pending.pop(message.correlation_id or "", None)
        if fut is None or fut.done():
            return
        try:
            fut.set_result(decode_reply(message.body))
        except msgspec.DecodeError as exc:
            fut.set_exception(CoreTimeout(f"unreadable reply from the core: {exc}"))

    def _outcome(self, cmd: AnyCommand, outcome: str, start: float) -> None:
        if self._on_outcome is not None:
            op: str = cmd.__struct_config__.tag  # type: ignore[assignment]
            self._on_outcome(op, outcome, time.perf_counter() - start)

    async def submit(self, cmd: AnyCommand) -> Applied:
        start = time.perf_counter()
        channel, queue = self._channel, self._reply_queue
        if channel is None or queue is None or not self._link.connected:
            self._outcome(cmd, "unavailable", start)
            raise CoreUnavailable("the message broker is not reachable; retry later")
        if not self._watch.alive:
            self._outcome(cmd, "unavailable", start)
            raise CoreUnavailable()
        corr = f"{self._tag}-{next(self._ids)}"
        timeout_ms = max(1, int(self.timeout_s * 1000))
        headers: dict[str, Any] = {DEADLINE_HEADER: self._clock_ms() + timeout_ms}
        wire = cmd
        if type(cmd) is Place and cmd.id == 0:
            wire = msgspec.structs.replace(cmd, id=1)
            headers[AUTO_ID_HEADER] = 1
        message = aio_pika.Message(
            encode_command(wire),
            content_type=CONTENT_TYPE,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
            correlation_id=corr,
            reply_to=queue.name,
            expiration=timeout_ms / 1000,
            headers=headers,
            type="command",
        )
        fut: asyncio.Future[CommandReply] = asyncio.get_running_loop().create_future()
        self._pending[corr] = fut
        try:
            async with asyncio.timeout(self.timeout_s):
                try:
                    await channel.default_exchange.publish(
                        message, routing_key=self._names.commands, mandatory=True
                    )
                except (PublishError, DeliveryError) as exc:
                    # returned unroutable or nacked: the broker did not take it
                    self._outcome(cmd, "unavailable", start)
                    raise CoreUnavailable(
                        "the trading core is not available (no command queue)"
                    ) from exc
                except (TimeoutError, asyncio.CancelledError):
                    raise
                except Exception as exc:
                    raise CoreTimeout(
                        f"publishing failed ({type(exc).__name__}); the command may or may "
                        "not be applied"
                    ) from exc
                reply = await fut
        except TimeoutError:
            self._outcome(cmd, "timeout", start)
            raise CoreTimeout() from None
        except CoreTimeout:
            self._outcome(cmd, "timeout", start)
            raise
        finally:
            self._pending.pop(corr, None)
            if fut.done() and not fut.cancelled():
                fut.exception()  # retrieved (here or above): no "never retrieved" noise
        if reply.status == "ok" and reply.command is not None:
            self._outcome(cmd, "applied", start)
            return Applied(reply.seq, reply.ts, reply.command, list(reply.events))
        if reply.status == "invalid":
            self._outcome(cmd, "invalid", start)
            raise InvalidCommand(reply.message or None)
        self._outcome(cmd, "unavailable", start)
        raise CoreUnavailable(reply.message or None)


# -- server (core) -----------------------------------------------------------------------


class AmqpCommandServer:
    """Consumes ``P.commands`` for the core: take, apply, reply (module docstring).

    ``handler`` is called in delivery order (each call starts before the next), so the
    core runner queues commands in the order the broker delivered them."""

    def __init__(
        self,
        link: AmqpLink,
        names: AmqpNames,
        handler: CommandHandler,
        *,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self._link = link
        self._names = names
        self._handler = handler
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._channel: AbstractChannel | None = None
        self._queue: AbstractQueue | None = None
        self._consumer_tag: str | None = None
        self._inbox: list[AbstractIncomingMessage] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._inflight: set[asyncio.Task[None]] = set()
        self._outbox: dict[str, list[tuple[str, CommandReply]]] = {}
        self._flushed: asyncio.Future[None] | None = None
        self._accepting = False
        self.applied = 0
        self.expired = 0
        self.reply_messages = 0
        """Reply messages published (one per reply queue and flush)."""
        self.queue_arguments: dict[str, Any] = {}
        link.add(self._on_connect, self._on_disconnect)

    async def _on_connect(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=False)
        arguments = command_queue_arguments(broker_version(connection))
        try:
            queue = await channel.declare_queue(
                self._names.commands, durable=True, arguments=arguments
            )
        except ChannelPreconditionFailed as exc:
            # declared before as another type (e.g. classic, by an older version): keep
            # using it; changing it means deleting it while no core runs (ADR 0011)
            log.warning(
                "command queue exists with other arguments; using it as it is",
                queue=self._names.commands,
                wanted=arguments,
                error=str(exc),
            )
            channel = await connection.channel(publisher_confirms=False)
            queue = await channel.declare_queue(self._names.commands, passive=True)
        self.queue_arguments = arguments
        self._channel = channel
        self._queue = queue
        self._consumer_tag = None
        if self._accepting:
            self._consumer_tag = await queue.consume(self._on_message, no_ack=True)

    def _on_disconnect(self) -> None:
        self._channel = None
        self._queue = None
        self._consumer_tag = None

    async def start(self) -> None:
        """Start consuming (call once the core runner is running)."""
        self._accepting = True
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump(), name="amqp-commands")
        channel, queue = self._channel, self._queue
        if (
            channel is not None
            and queue is not None
            and not channel.is_closed
            and self._consumer_tag is None
        ):
            self._consumer_tag = await queue.consume(self._on_message, no_ack=True)

    async def stop(self) -> None:
        """Stop taking commands (the broker keeps new ones in the queue), answer those
        already delivered, and wait (briefly) for their replies."""
        self._accepting = False
        queue, tag, self._consumer_tag = self._queue, self._consumer_tag, None
        if queue is not None and tag is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(queue.cancel(tag), 2.0)
        for _ in range(100):  # let the pump take what was delivered before the cancel
            if not self._inbox:
                break
            await asyncio.sleep(0.01)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._inflight:
            await asyncio.wait(self._inflight, timeout=5.0)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        self._inbox.append(message)
        self._wake.set()

    async def _pump(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._inbox = self._inbox, []
            if not batch:
                continue
            batch.sort(key=lambda m: m.delivery_tag or 0)
            try:
                taken = await self._take(batch)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("command intake failed")
                continue
            for message, cmd in taken:
                task = asyncio.get_running_loop().create_task(self._execute(message, cmd))
                self._inflight.add(task)
                task.add_done_callback(self._inflight.discard)

    async def _take(
        self, batch: list[AbstractIncomingMessage]
    ) -> list[tuple[AbstractIncomingMessage, AnyCommand]]:
        """Decode the batch; refuse what is malformed or past its deadline."""
        out: list[tuple[AbstractIncomingMessage, AnyCommand]] = []
        now = self._clock_ms()
        for message in batch:
            headers = message.headers or {}
            deadline = headers.get(DEADLINE_HEADER)
            if isinstance(deadline, int) and now > deadline:
                self.expired += 1
                await self._reply(message, CommandReply("expired", message="deadline passed"))
                continue
            try:
                cmd = decode_command(message.body)
                if headers.get(AUTO_ID_HEADER) and type(cmd) is Place:
                    cmd = msgspec.structs.replace(cmd, id=0)
                out.append((message, cmd))
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                await self._reply(message, CommandReply("invalid", message=str(exc)))
        return out

    async def _execute(self, message: AbstractIncomingMessage, cmd: AnyCommand) -> None:
        try:
            applied = await self._handler(cmd)
        except CoreFailure as exc:
            reply = CommandReply("unavailable", message=exc.message)
        except ValueError as exc:
            reply = CommandReply("invalid", message=str(exc))
        except Exception as exc:
            log.exception("command handler failed")
            reply = CommandReply("unavailable", message=f"{type(exc).__name__}")
        else:
            self.applied += 1
            reply = CommandReply(
                "ok",
                seq=applied.seq,
                ts=applied.ts,
                command=applied.command,
                events=list(applied.events),  # type: ignore[arg-type]
            )
        await self._reply(message, reply)

    async def _reply(self, request: AbstractIncomingMessage, reply: CommandReply) -> None:
        """Queue the reply for the next flush and wait for that flush: the replies of a
        group commit, answered in one step of the loop, leave as one message per reply
        queue (ADR 0051)."""
        channel = self._channel
        if channel is None or not request.reply_to or channel.is_closed:
            return  # the client times out (504) or has failed the request already
        self._outbox.setdefault(request.reply_to, []).append((request.correlation_id or "", reply))
        flushed = self._flushed
        if flushed is None:
            loop = asyncio.get_running_loop()
            flushed = self._flushed = loop.create_future()
            task = loop.create_task(self._flush())
            self._inflight.add(task)
            task.add_done_callback(self._inflight.discard)
        await asyncio.shield(flushed)

    async def _flush(self) -> None:
        outbox, self._outbox = self._outbox, {}
        flushed, self._flushed = self._flushed, None
        try:
            for reply_to, items in outbox.items():
                channel = self._channel
                if channel is None or channel.is_closed:
                    return  # their clients time out (504)
                try:
                    await channel.default_exchange.publish(
                        _reply_message(items), routing_key=reply_to, mandatory=False
                    )
                except Exception as exc:
                    log.warning("replies lost", count=len(items), error=repr(exc))
                else:
                    self.reply_messages += 1
        finally:
            if flushed is not None and not flushed.done():
                flushed.set_result(None)


def _reply_message(items: list[tuple[str, CommandReply]]) -> aio_pika.Message:
    """One reply as before (type ``reply``, its request named by the correlation id);
    several as a list of :class:`~.wire.ReplyTo` (type ``replies``)."""
    if len(items) == 1:
        corr, reply = items[0]
        return aio_pika.Message(
            encode(reply),
            content_type=CONTENT_TYPE,
            correlation_id=corr,
            delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
            type=REPLY_TYPE,
        )
    return aio_pika.Message(
        encode([ReplyTo(corr, reply) for corr, reply in items]),
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
        type=REPLIES_TYPE,
    )
