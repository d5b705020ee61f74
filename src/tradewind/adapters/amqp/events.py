"""The event stream over RabbitMQ: the core publishes, API replicas and projectors consume.

- :class:`AmqpEventPublisher` (core): the :class:`~.wire.EventBatch` of every durable
  command to the fanout exchange ``P.events`` with publisher confirms, in seq order (the
  batches queued while the last message was confirmed go as one message), and
  a :class:`~.wire.CoreStatus` heartbeat to ``P.status``;
- :class:`CoreWatch` (API replicas, projector): follows the heartbeat; the core is
  *alive* while heard (heartbeat, or any reply or batch from it) within the liveness
  period;
- :class:`AmqpEventFollower` (API replicas): live batches from an exclusive, bounded
  queue, for private WebSocket channels; best effort, deduplicated by seq;
- :class:`AmqpSequencedConsumer` (projector): every batch exactly once and in seq order
  from its durable queue ``P.<name>``, filling gaps by asking the core to replay them;
- :class:`AmqpReplayServer` (core): answers replay requests from its journal.

Invariants:
- the journal is the source of truth, RabbitMQ only a transport: a batch may be lost
  (core killed between fsync and publish, broker restart, a bounded queue dropping its
  head) but never invented or reordered for a sequenced consumer, which applies batch
  ``n`` only after ``n - 1``; a hole, seen as a later batch waiting or as the core's
  ``published_seq`` above the consumer's offset for longer than a grace period, is filled
  by a replay of exactly the missing seqs from the core's journal;
- a sequenced consumer acknowledges a live message only once its batch is applied (or
  was already applied), so a consumer crash loses nothing: the broker redelivers and the
  seq check makes the redelivery a no-op;
- the publisher never blocks the core: ``publish`` only queues; while the broker is
  unreachable it keeps up to ``max_queue`` batches and drops the oldest beyond that
  (they are replayable).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import cast

import aio_pika
import msgspec
import structlog
from aio_pika.abc import (
    AbstractChannel,
    AbstractConnection,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    ExchangeType,
)

from tradewind.adapters.amqp.link import AmqpLink
from tradewind.adapters.amqp.wire import (
    BATCH_TYPE,
    BATCHES_TYPE,
    CONTENT_TYPE,
    AmqpNames,
    CoreStatus,
    EventBatch,
    ReplayRequest,
    decode_batches,
    decode_replay_request,
    decode_status,
    encode,
)
from tradewind.core.events import AnyEvent, Event
from tradewind.services.projectors.ports import Batch

log = structlog.get_logger(__name__)

BatchSource = Callable[[int, int], Iterator[Batch]]
"""``(after, until) -> batches after + 1 .. until`` in seq order (synchronous; run in a
worker thread)."""


def _batches_message(chunk: Sequence[tuple[int, int, Sequence[Event]]]) -> aio_pika.Message:
    """One message for consecutive batches: a single one as type ``batch``, several as a
    list of type ``batches`` (one broker message, fanout and confirm for all; ADR 0050)."""
    batches = [EventBatch(s, t, cast("list[AnyEvent]", list(e))) for s, t, e in chunk]
    if len(batches) == 1:
        body, kind = encode(batches[0]), BATCH_TYPE
    else:
        body, kind = encode(batches), BATCHES_TYPE
    return aio_pika.Message(
        body,
        content_type=CONTENT_TYPE,
        delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
        type=kind,
        headers={"seq": batches[0].seq, "last_seq": batches[-1].seq},
    )


async def _declare_exchanges(channel: AbstractChannel, names: AmqpNames) -> AbstractExchange:
    """Both exchanges (idempotent); returns ``P.events``."""
    await channel.declare_exchange(names.status, ExchangeType.FANOUT, durable=True)
    return await channel.declare_exchange(names.events, ExchangeType.FANOUT, durable=True)


# -- core side -------------------------------------------------------------------------


class AmqpEventPublisher:
    """Publishes the core's batches and heartbeat. ``publish`` is the core runner's
    publisher (synchronous, never blocks)."""

    def __init__(
        self,
        link: AmqpLink,
        names: AmqpNames,
        *,
        instance: str,
        durable_seq: Callable[[], int],
        heartbeat_s: float,
        clock_ms: Callable[[], int] | None = None,
        max_queue: int = 100_000,
        max_chunk: int = 512,
    ) -> None:
        self._link = link
        self._names = names
        self.instance = instance
        self._durable_seq = durable_seq
        self.heartbeat_s = heartbeat_s
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self.max_queue = max_queue
        self.max_chunk = max_chunk
        self._queue: deque[tuple[int, int, Sequence[Event]]] = deque()
        self._wake = asyncio.Event()
        self._channel: AbstractChannel | None = None
        self._events: AbstractExchange | None = None
        self._status: AbstractExchange | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self.published_seq = 0
        """Every batch up to here was handed to the broker, or dropped."""
        self.published = 0
        """Batches confirmed by the broker."""
        self.messages = 0
        """Messages that carried them."""
        self.failed = 0
        self.dropped = 0
        link.add(self._on_connect, self._on_disconnect)

    def start_at(self, seq: int) -> None:
        """Batches up to ``seq`` exist already (the journal's on start): replayable."""
        self.published_seq = max(self.published_seq, seq)

    async def _on_connect(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=True)
        self._events = await _declare_exchanges(channel, self._names)
        self._status = await channel.get_exchange(self._names.status)
        self._channel = channel
        self._wake.set()

    def _on_disconnect(self) -> None:
        self._channel = None
        self._events = None
        self._status = None

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    def publish(self, seq: int, ts: int, events: list[Event]) -> None:
        q = self._queue
        q.append((seq, ts, events))
        while len(q) > self.max_queue:
            dropped = q.popleft()
            self.dropped += 1
            self.published_seq = max(self.published_seq, dropped[0])
        self._wake.set()

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name="amqp-event-publisher"),
            loop.create_task(self._heartbeat(), name="amqp-core-heartbeat"),
        ]

    async def stop(self, timeout_s: float = 5.0) -> None:
        """Publish what is queued (waiting at most ``timeout_s``), then stop."""
        deadline = time.monotonic() + timeout_s
        while self._queue and self._channel is not None and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                exchange = self._events
                if exchange is None:
                    break  # keep them until the link is back (bounded by max_queue)
                n = min(len(self._queue), self.max_chunk)
                chunk = [self._queue.popleft() for _ in range(n)]
                try:
                    await exchange.publish(_batches_message(chunk), routing_key="", mandatory=False)
                except Exception as exc:
                    self.failed += len(chunk)
                    log.warning(
                        "event batches not confirmed; consumers will replay them",
                        count=len(chunk),
                        first_seq=chunk[0][0],
                        error=repr(exc),
                    )
                else:
                    self.published += len(chunk)
                    self.messages += 1
                self.published_seq = max(self.published_seq, chunk[-1][0])

    def status(self) -> CoreStatus:
        return CoreStatus(self.instance, self.published_seq, self._durable_seq(), self._clock_ms())

    async def _heartbeat(self) -> None:
        expiration = max(1.0, 4 * self.heartbeat_s)
        while True:
            exchange = self._status
            if exchange is not None:
                message = aio_pika.Message(
                    encode(self.status()),
                    content_type=CONTENT_TYPE,
                    delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                    expiration=expiration,
                    type="status",
                )
                try:
                    await exchange.publish(message, routing_key="", mandatory=False)
                except Exception as exc:
                    log.warning("heartbeat not sent", error=repr(exc))
            await asyncio.sleep(self.heartbeat_s)


class AmqpReplayServer:
    """Answers :class:`~.wire.ReplayRequest` on ``P.replay`` by sending the batches from
    ``source`` (the journal) to the request's ``reply_to``, one request at a time."""

    def __init__(
        self,
        link: AmqpLink,
        names: AmqpNames,
        source: BatchSource,
        *,
        durable_seq: Callable[[], int],
        max_batches: int = 5000,
        chunk: int = 500,
    ) -> None:
        self._link = link
        self._names = names
        self._source = source
        self._durable_seq = durable_seq
        self.max_batches = max_batches
        self.chunk = chunk
        self._channel: AbstractChannel | None = None
        self._lock = asyncio.Lock()
        self.served = 0
        link.add(self._on_connect, self._on_disconnect)

    async def _on_connect(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=False)
        await channel.set_qos(prefetch_count=1)
        queue = await channel.declare_queue(self._names.replay, durable=True)
        await queue.consume(self._on_request)
        self._channel = channel

    def _on_disconnect(self) -> None:
        self._channel = None

    async def _on_request(self, message: AbstractIncomingMessage) -> None:
        async with self._lock:
            try:
                request = decode_replay_request(message.body)
                if message.reply_to:
                    await self._serve(request, message.reply_to)
            except Exception:
                log.exception("replay request failed")
            finally:
                with contextlib.suppress(Exception):
                    await message.ack()

    async def _serve(self, request: ReplayRequest, reply_to: str) -> None:
        until = min(request.until, self._durable_seq(), request.after + self.max_batches)
        if until <= request.after:
            return
        log.info("replaying batches", after=request.after, until=until, to=reply_to)
        batches = self._source(request.after, until)

        def take() -> list[Batch]:
            out: list[Batch] = []
            for batch in batches:
                out.append(batch)
                if len(out) >= self.chunk:
                    break
            return out

        while chunk := await asyncio.to_thread(take):
            channel = self._channel
            if channel is None:
                return
            await channel.default_exchange.publish(
                _batches_message([(b.seq, b.ts, b.events) for b in chunk]),
                routing_key=reply_to,
                mandatory=False,
            )
            self.served += len(chunk)


# -- consumer side ---------------------------------------------------------------------


class CoreWatch:
    """The core's heartbeat as seen from a consumer: ``alive``, ``latest``, and callbacks
    when the core goes silent. Register on the link before starting it; ``start()``."""

    def __init__(
        self,
        link: AmqpLink,
        names: AmqpNames,
        *,
        liveness_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._link = link
        self._names = names
        self.liveness_s = liveness_s
        self._clock = clock
        self.latest: CoreStatus | None = None
        self._seen_at = -1e18
        self._was_alive = False
        self._silence: list[Callable[[], None]] = []
        self._status: list[Callable[[CoreStatus], None]] = []
        self._task: asyncio.Task[None] | None = None
        self.instances_seen = 0
        link.add(self._on_connect, None)

    def touch(self) -> None:
        """Other proof of life (a reply, an event batch from the core): a core busy
        enough to delay its heartbeat is not declared silent while it answers."""
        if self.latest is not None:
            self._seen_at = self._clock()
            self._was_alive = True

    def on_silence(self, callback: Callable[[], None]) -> None:
        self._silence.append(callback)

    def on_status(self, callback: Callable[[CoreStatus], None]) -> None:
        self._status.append(callback)

    @property
    def alive(self) -> bool:
        return self._link.connected and self._clock() - self._seen_at < self.liveness_s

    async def _on_connect(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=False)
        await _declare_exchanges(channel, self._names)
        queue = await channel.declare_queue(
            "",
            exclusive=True,
            auto_delete=True,
            arguments={"x-message-ttl": max(1, int(self.liveness_s * 1000))},
        )
        await queue.bind(self._names.status)
        await queue.consume(self._on_message, no_ack=True)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            status = decode_status(message.body)
        except msgspec.DecodeError:
            return
        if self.latest is None or status.instance != self.latest.instance:
            self.instances_seen += 1
            log.info("core heard", instance=status.instance, seq=status.durable_seq)
        self.latest = status
        self._seen_at = self._clock()
        self._was_alive = True
        for callback in self._status:
            try:
                callback(status)
            except Exception:
                log.exception("core status callback failed")

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._check(), name="core-watch")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def check(self) -> None:
        """Fire the silence callbacks if the core just went silent."""
        if self._was_alive and not self.alive:
            self._was_alive = False
            log.warning("core silent", liveness_s=self.liveness_s)
            for callback in self._silence:
                try:
                    callback()
                except Exception:
                    log.exception("core silence callback failed")

    async def _check(self) -> None:
        interval = max(0.01, self.liveness_s / 8)
        while True:
            await asyncio.sleep(interval)
            self.check()


class AmqpEventFollower:
    """Live batches for an API replica: exclusive queue (bounded, drops its oldest),
    deduplicated by seq; gaps are counted and tolerated (private WebSocket channels are
    best effort across failures)."""

    def __init__(
        self,
        link: AmqpLink,
        names: AmqpNames,
        on_batch: Callable[[int, int, list[Event]], None],
        *,
        max_length: int = 10_000,
    ) -> None:
        self._names = names
        self._on_batch = on_batch
        self.max_length = max_length
        self.last_seq = 0
        self.gaps = 0
        self.received = 0
        link.add(self._on_connect, None)

    async def _on_connect(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=False)
        exchange = await _declare_exchanges(channel, self._names)
        queue = await channel.declare_queue(
            "",
            exclusive=True,
            auto_delete=True,
            arguments={"x-max-length": self.max_length, "x-overflow": "drop-head"},
        )
        await queue.bind(exchange)
        await queue.consume(self._on_message, no_ack=True)

    async def _on_message(self, message: AbstractIncomingMessage) -> None:
        try:
            batches = decode_batches(message.body, message.type)
        except msgspec.DecodeError:
            log.warning("unreadable event batch dropped")
            return
        for batch in batches:
            if batch.seq <= self.last_seq:
                continue
            if self.last_seq and batch.seq != self.last_seq + 1:
                self.gaps += 1
            self.last_seq = batch.seq
            self.received += 1
            try:
                self._on_batch(batch.seq, batch.ts, cast("list[Event]", batch.events))
            except Exception:
                log.exception("event batch consumer failed", seq=batch.seq)


class AmqpSequencedConsumer:
    """Feeds ``apply`` every batch exactly once, in seq order (module docstring).

    ``offset()`` gives the last applied seq at start; ``apply(batches)`` applies
    consecutive batches and returns the new last applied seq."""

    def __init__(
        self,
        link: AmqpLink,
        names: AmqpNames,
        watch: CoreWatch,
        *,
        name: str,
        offset: Callable[[], Awaitable[int]],
        apply: Callable[[Sequence[Batch]], Awaitable[int]],
        max_chunk: int = 1000,
        prefetch: int = 2000,
        max_length: int = 1_000_000,
        max_pending: int = 50_000,
        gap_grace_s: float = 0.5,
        replay_every_s: float = 2.0,
        replay_limit: int = 5000,
        retry_initial_s: float = 0.1,
        retry_max_s: float = 10.0,
    ) -> None:
        self._link = link
        self._names = names
        self._watch = watch
        self.name = name
        self._offset = offset
        self._apply = apply
        self.max_chunk = max_chunk
        self.prefetch = prefetch
        self.max_length = max_length
        self.max_pending = max_pending
        self.gap_grace_s = gap_grace_s
        self.replay_every_s = replay_every_s
        self.replay_limit = replay_limit
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.applied = 0
        self._pending: dict[int, tuple[Batch, AbstractIncomingMessage | None]] = {}
        self._wake = asyncio.Event()
        self._channel: AbstractChannel | None = None
        self._replies: AbstractQueue | None = None
        self._task: asyncio.Task[None] | None = None
        self._gap_since: float | None = None
        self._requested_at = -1e18
        self._requested_applied = -1
        self._delay = retry_initial_s
        self._progress = asyncio.Event()
        self.replay_requests = 0
        self.failures = 0
        link.add(self._on_connect, self._on_disconnect)
        watch.on_status(lambda _status: self._wake.set())

    @property
    def queue_name(self) -> str:
        return self._names.consumer_queue(self.name)

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def start(self) -> None:
        """Read the offset; start applying (start the link after this)."""
        self.applied = await self._offset()
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"sequenced-{self.name}"
            )

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def wait_for(self, seq: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.applied < seq:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), left)
        return True

    async def _on_connect(self, connection: AbstractConnection) -> None:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        await channel.set_qos(prefetch_count=self.prefetch)
        exchange = await _declare_exchanges(channel, self._names)
        queue = await channel.declare_queue(
            self.queue_name,
            durable=True,
            arguments={"x-max-length": self.max_length, "x-overflow": "drop-head"},
        )
        await queue.bind(exchange)
        replies = await channel.declare_queue("", exclusive=True, auto_delete=True)
        await replies.consume(self._on_replay, no_ack=True)
        await queue.consume(self._on_live)
        self._replies = replies
        self._channel = channel

    def _on_disconnect(self) -> None:
        self._channel = None
        self._replies = None
        # deliveries of the lost channel are void: the broker redelivers them
        self._pending = {s: (b, None) for s, (b, _) in self._pending.items()}

    async def _on_live(self, message: AbstractIncomingMessage) -> None:
        try:
            batches = decode_batches(message.body, message.type)
        except msgspec.DecodeError:
            log.warning("unreadable event batch dropped", consumer=self.name)
            await _ack(message)
            return
        await self._add(batches, message)

    async def _on_replay(self, message: AbstractIncomingMessage) -> None:
        try:
            batches = decode_batches(message.body, message.type)
        except msgspec.DecodeError:
            return
        await self._add(batches, None)

    async def _add(
        self, batches: list[EventBatch], message: AbstractIncomingMessage | None
    ) -> None:
        """Keep the batches not applied or waiting yet; the live ``message`` is
        acknowledged with the highest of them kept (so once every one of its batches is
        applied), or at once when none is (applied already, a copy waiting, or beyond
        ``max_pending``: replayable later)."""
        kept = 0
        for b in batches:
            if await self._keep(Batch(b.seq, b.ts, cast("list[Event]", b.events))):
                kept = max(kept, b.seq)
        if message is not None:
            entry = self._pending.get(kept)
            if entry is None:
                await _ack(message)
            else:
                self._pending[kept] = (entry[0], message)
        self._wake.set()

    async def _keep(self, batch: Batch) -> bool:
        if batch.seq <= self.applied or batch.seq in self._pending:
            return False
        if len(self._pending) >= self.max_pending:
            highest = max(self._pending)
            if batch.seq > highest:
                return False
            _, dropped = self._pending.pop(highest)
            if dropped is not None:
                await _ack(dropped)
        self._pending[batch.seq] = (batch, None)
        return True

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), max(0.01, self.gap_grace_s / 4))
            self._wake.clear()
            try:
                await self._apply_ready()
                await self._check_gap()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failures += 1
                log.error(
                    "sequenced consumer failed; retrying",
                    consumer=self.name,
                    error=repr(exc),
                    delay_s=self._delay,
                )
                await asyncio.sleep(self._delay)
                self._delay = min(self._delay * 2, self.retry_max_s)

    async def _apply_ready(self) -> None:
        pending = self._pending
        while self.applied + 1 in pending:
            run: list[Batch] = []
            seq = self.applied + 1
            while seq in pending and len(run) < self.max_chunk:
                run.append(pending[seq][0])
                seq += 1
            new = await self._apply(run)
            self._delay = self.retry_initial_s
            if new > self.applied:
                self.applied = new
                self._gap_since = None
                self._progress.set()
            for s in [s for s in pending if s <= self.applied]:
                _, message = pending.pop(s)
                if message is not None:
                    await _ack(message)
            if new < run[-1].seq:
                raise RuntimeError(f"applied only up to {new} of {run[-1].seq}")

    async def _check_gap(self) -> None:
        if self._pending:
            target = min(self._pending) - 1
        else:
            latest = self._watch.latest
            target = latest.published_seq if latest is not None else 0
        if target <= self.applied:
            self._gap_since = None
            return
        now = time.monotonic()
        if self._gap_since is None:
            self._gap_since = now
            return
        if now - self._gap_since < self.gap_grace_s:
            return
        if (
            now - self._requested_at < self.replay_every_s
            and self._requested_applied == self.applied
        ):
            return  # a request for this hole is on its way
        channel, replies = self._channel, self._replies
        if channel is None or replies is None:
            return
        until = min(target, self.applied + self.replay_limit)
        self._requested_at, self._requested_applied = now, self.applied
        self.replay_requests += 1
        log.info("requesting replay", consumer=self.name, after=self.applied, until=until)
        try:
            await channel.default_exchange.publish(
                aio_pika.Message(
                    encode(ReplayRequest(self.applied, until)),
                    content_type=CONTENT_TYPE,
                    reply_to=replies.name,
                    expiration=max(1.0, 2 * self.replay_every_s),
                    delivery_mode=aio_pika.DeliveryMode.NOT_PERSISTENT,
                    type="replay",
                ),
                routing_key=self._names.replay,
                mandatory=True,
            )
        except Exception as exc:
            log.warning("replay request not delivered", consumer=self.name, error=repr(exc))


async def _ack(message: AbstractIncomingMessage) -> None:
    with contextlib.suppress(Exception):
        await message.ack()


__all__ = [
    "AmqpEventFollower",
    "AmqpEventPublisher",
    "AmqpReplayServer",
    "AmqpSequencedConsumer",
    "BatchSource",
    "CoreWatch",
]
