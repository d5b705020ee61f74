"""The RabbitMQ adapter against the real broker: request/reply with correlation ids and
publisher confirms, deadlines and fast failure, at-most-once delivery of commands, and
the event stream (order, idempotency, gaps filled by replay).

Each test uses its own name prefix and deletes its queues and exchanges afterwards.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator, Iterator, Sequence

import msgspec
import pytest
import pytest_asyncio

from tests.support.cleanup import delete_amqp
from tradewind.adapters.amqp import (
    AmqpCommandClient,
    AmqpCommandServer,
    AmqpEventFollower,
    AmqpEventPublisher,
    AmqpLink,
    AmqpNames,
    AmqpReplayServer,
    AmqpSequencedConsumer,
    Applied,
    CoreWatch,
)
from tradewind.core.commands import AnyCommand, Deposit, Place
from tradewind.core.events import Deposited, Event
from tradewind.services.projectors.ports import Batch
from tradewind.services.trading import CoreTimeout, CoreUnavailable

HEARTBEAT_S = 0.05
LIVENESS_S = 0.5


@pytest_asyncio.fixture
async def names(amqp_url: str) -> AsyncIterator[AmqpNames]:
    n = AmqpNames(f"twtest{secrets.token_hex(4)}")
    yield n
    await delete_amqp(
        amqp_url, [n.commands, n.replay, n.consumer_queue("projector")], [n.events, n.status]
    )


class FakeCore:
    """Applies commands by numbering them; records what it was given."""

    def __init__(self) -> None:
        self.seq = 0
        self.seen: list[AnyCommand] = []
        self.block: asyncio.Event | None = None

    async def handle(self, cmd: AnyCommand) -> Applied:
        self.seen.append(cmd)
        if self.block is not None:
            await self.block.wait()
        self.seq += 1
        if isinstance(cmd, Place) and cmd.id == 0:  # as the core runner does
            cmd = msgspec.structs.replace(cmd, id=self.seq)
        events: list[Event] = []
        if isinstance(cmd, Deposit):
            events.append(Deposited(cmd.user, cmd.asset, cmd.amount))
        return Applied(self.seq, 1_700_000_000_000 + self.seq, cmd, events)


class Core:
    """A core process on its own connection: command server, publisher, replay."""

    def __init__(self, url: str, names: AmqpNames, fake: FakeCore, history: dict[int, Batch]):
        self.link = AmqpLink(url, name="test-core")
        self.fake = fake
        self.history = history
        self.server = AmqpCommandServer(self.link, names, fake.handle)
        self.publisher = AmqpEventPublisher(
            self.link,
            names,
            instance=secrets.token_hex(3),
            durable_seq=lambda: max(history, default=0),
            heartbeat_s=HEARTBEAT_S,
        )
        self.replay = AmqpReplayServer(
            self.link, names, self.source, durable_seq=lambda: max(history, default=0)
        )

    def source(self, after: int, until: int) -> Iterator[Batch]:
        for seq in range(after + 1, until + 1):
            yield self.history[seq]

    async def start(self, *, serve: bool = True) -> None:
        assert await self.link.start(wait_s=5)
        self.publisher.start()
        if serve:
            await self.server.start()

    async def stop(self) -> None:
        await self.server.stop()
        await self.publisher.stop()
        await self.link.stop()


class Api:
    def __init__(
        self, url: str, names: AmqpNames, timeout_s: float = 2.0, liveness_s: float = LIVENESS_S
    ) -> None:
        self.link = AmqpLink(url, name="test-api")
        self.watch = CoreWatch(self.link, names, liveness_s=liveness_s)
        self.client = AmqpCommandClient(self.link, names, self.watch, timeout_s=timeout_s)

    async def start(self, *, wait_core: bool = True) -> None:
        assert await self.link.start(wait_s=5)
        self.watch.start()
        if wait_core:
            await wait_until(lambda: self.client.available)

    async def stop(self) -> None:
        await self.watch.stop()
        await self.link.stop()


async def wait_until(condition: object, timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


@pytest.mark.asyncio
async def test_replies_match_requests_by_correlation_id(amqp_url: str, names: AmqpNames) -> None:
    core = Core(amqp_url, names, FakeCore(), {})
    # 300 at once through a quorum queue on a shared 2-core machine: time is not the point,
    # and a busy loop may read the core's heartbeats late (a 0.5 s liveness failed in CI)
    api = Api(amqp_url, names, timeout_s=15.0, liveness_s=10.0)
    await core.start()
    await api.start()
    try:
        cmds = [Deposit(user=i + 1, asset="BTC", amount=1000 + i) for i in range(300)]
        results = await asyncio.gather(*(api.client.submit(c) for c in cmds))
        for cmd, applied in zip(cmds, results, strict=True):
            assert applied.command == cmd
            assert applied.events == [Deposited(cmd.user, "BTC", cmd.amount)]
        assert sorted(r.seq for r in results) == list(range(1, 301))
        assert core.server.applied == 300
        # replies ready at once travel together (ADR 0051)
        assert core.server.reply_messages < 300

        # a place whose id the core assigns (0 is refused by the schema on the wire)
        placed = await api.client.submit(
            Place(id=0, user=1, symbol="BTC-USDT", side="buy", price=1, qty=1)
        )
        assert isinstance(core.fake.seen[-1], Place) and core.fake.seen[-1].id == 0
        assert isinstance(placed.command, Place) and placed.command.id == placed.seq
    finally:
        await api.stop()
        await core.stop()


@pytest.mark.asyncio
async def test_unroutable_command_is_refused_at_once(amqp_url: str, names: AmqpNames) -> None:
    """A heartbeat but no command queue (a core that never consumed): the broker returns
    the mandatory message and the confirm fails, so the client knows nothing happened."""
    core = Core(amqp_url, names, FakeCore(), {})
    api = Api(amqp_url, names)
    await core.start(serve=False)  # the server's queue is declared on connect...
    channel = await core.link.connection.channel()  # type: ignore[union-attr]
    await channel.queue_delete(names.commands)  # ...so remove it again
    await api.start()
    try:
        start = time.perf_counter()
        with pytest.raises(CoreUnavailable):
            await api.client.submit(Deposit(user=1, asset="BTC", amount=1))
        assert time.perf_counter() - start < 1.0
    finally:
        await api.stop()
        await core.stop()


@pytest.mark.asyncio
async def test_no_reply_is_a_timeout_not_a_hang(amqp_url: str, names: AmqpNames) -> None:
    fake = FakeCore()
    fake.block = asyncio.Event()  # takes commands, never answers
    core = Core(amqp_url, names, fake, {})
    api = Api(amqp_url, names, timeout_s=0.5)
    await core.start()
    await api.start()
    try:
        start = time.perf_counter()
        with pytest.raises(CoreTimeout):
            await api.client.submit(Deposit(user=1, asset="BTC", amount=1))
        assert 0.4 < time.perf_counter() - start < 1.5
    finally:
        fake.block.set()
        await api.stop()
        await core.stop()


@pytest.mark.asyncio
async def test_silent_core_fails_requests_fast(amqp_url: str, names: AmqpNames) -> None:
    fake = FakeCore()
    fake.block = asyncio.Event()
    core = Core(amqp_url, names, fake, {})
    api = Api(amqp_url, names, timeout_s=10.0)
    await core.start()
    await api.start()
    try:
        pending = asyncio.ensure_future(api.client.submit(Deposit(user=1, asset="BTC", amount=1)))
        await wait_until(lambda: fake.seen)
        start = time.perf_counter()
        await core.link.stop()  # the core's connection dies: no more heartbeats
        with pytest.raises(CoreTimeout):  # in flight: outcome unknown, but no 10 s wait
            await pending
        assert time.perf_counter() - start < LIVENESS_S + 0.5
        start = time.perf_counter()
        with pytest.raises(CoreUnavailable):  # known down: refused before publishing
            await api.client.submit(Deposit(user=1, asset="BTC", amount=2))
        assert time.perf_counter() - start < 0.05
        assert not api.client.available
    finally:
        fake.block.set()
        await api.stop()
        await core.stop()


@pytest.mark.asyncio
async def test_commands_past_their_deadline_are_never_applied(
    amqp_url: str, names: AmqpNames
) -> None:
    """Commands published while the core is not consuming wait in the durable queue; those
    whose client has given up are dropped (TTL, deadline), the others are applied."""
    fake = FakeCore()
    core = Core(amqp_url, names, fake, {})
    api = Api(amqp_url, names, timeout_s=0.3)
    await core.start(serve=False)  # heartbeat and queue, no consumer
    await api.start()
    try:
        with pytest.raises(CoreTimeout):
            await api.client.submit(Deposit(user=1, asset="BTC", amount=1))
        await asyncio.sleep(0.1)
        api.client.timeout_s = 5.0
        late = asyncio.ensure_future(api.client.submit(Deposit(user=2, asset="BTC", amount=2)))
        await asyncio.sleep(0.2)
        await core.server.start()
        applied = await late
        assert applied.command == Deposit(user=2, asset="BTC", amount=2)
        assert fake.seen == [Deposit(user=2, asset="BTC", amount=2)]
    finally:
        await api.stop()
        await core.stop()


@pytest.mark.asyncio
async def test_a_command_is_delivered_at_most_once(amqp_url: str, names: AmqpNames) -> None:
    """A core that dies holding a command does not get it again after a restart: the
    client was told the outcome is unknown, and the command is never applied twice."""
    first = FakeCore()
    first.block = asyncio.Event()
    core = Core(amqp_url, names, first, {})
    api = Api(amqp_url, names, timeout_s=10.0)
    await core.start()
    await api.start()
    second_core: Core | None = None
    try:
        pending = asyncio.ensure_future(api.client.submit(Deposit(user=1, asset="BTC", amount=7)))
        await wait_until(lambda: first.seen)
        await core.link.stop()  # dies before applying
        with pytest.raises(CoreTimeout):
            await pending
        second = FakeCore()
        second_core = Core(amqp_url, names, second, {})
        await second_core.start()
        await wait_until(lambda: api.client.available)
        applied = await api.client.submit(Deposit(user=1, asset="BTC", amount=8))
        assert applied.command == Deposit(user=1, asset="BTC", amount=8)
        assert second.seen == [Deposit(user=1, asset="BTC", amount=8)]
    finally:
        first.block.set()
        await api.stop()
        await core.stop()
        if second_core is not None:
            await second_core.stop()


def _batch(seq: int) -> Batch:
    return Batch(seq, 1_700_000_000_000 + seq, [Deposited(seq % 7 + 1, "BTC", seq)])


class Sink:
    def __init__(self) -> None:
        self.applied: list[int] = []
        self.events: list[Sequence[Event]] = []

    async def offset(self) -> int:
        return self.applied[-1] if self.applied else 0

    async def apply(self, batches: Sequence[Batch]) -> int:
        for b in batches:
            assert not self.applied or b.seq == self.applied[-1] + 1, (self.applied[-1:], b.seq)
            self.applied.append(b.seq)
            self.events.append(b.events)
        return self.applied[-1]


@pytest.mark.asyncio
async def test_event_batches_arrive_in_order(amqp_url: str, names: AmqpNames) -> None:
    history = {s: _batch(s) for s in range(1, 1001)}
    core = Core(amqp_url, names, FakeCore(), history)
    consumer_link = AmqpLink(amqp_url, name="test-consumers")
    watch = CoreWatch(consumer_link, names, liveness_s=LIVENESS_S)
    live: list[int] = []
    AmqpEventFollower(consumer_link, names, lambda seq, ts, events: live.append(seq))
    sink = Sink()
    consumer = AmqpSequencedConsumer(
        consumer_link, names, watch, name="projector", offset=sink.offset, apply=sink.apply
    )
    await consumer.start()
    assert await consumer_link.start(wait_s=5)
    watch.start()
    await core.start()
    try:
        for seq in range(1, 1001):
            b = history[seq]
            core.publisher.publish(b.seq, b.ts, list(b.events))
        await wait_until(lambda: consumer.applied == 1000, 10)
        await wait_until(lambda: len(live) == 1000, 5)
        assert live == list(range(1, 1001))
        assert sink.applied == list(range(1, 1001))
        assert sink.events[41] == list(history[42].events)
        assert core.publisher.published == 1000 and core.publisher.failed == 0
        # published at once, they travel as few messages (up to max_chunk batches each)
        assert core.publisher.messages == 2
        assert consumer.replay_requests == 0
    finally:
        await consumer.stop()
        await watch.stop()
        await consumer_link.stop()
        await core.stop()


@pytest.mark.asyncio
async def test_sequenced_consumer_is_idempotent_and_fills_gaps(
    amqp_url: str, names: AmqpNames
) -> None:
    history = {s: _batch(s) for s in range(1, 301)}
    core = Core(amqp_url, names, FakeCore(), history)
    await core.start()
    sink = Sink()

    async def run_consumer(until: int) -> AmqpSequencedConsumer:
        link = AmqpLink(amqp_url, name="test-projector")
        watch = CoreWatch(link, names, liveness_s=LIVENESS_S)
        consumer = AmqpSequencedConsumer(
            link,
            names,
            watch,
            name="projector",
            offset=sink.offset,
            apply=sink.apply,
            gap_grace_s=0.1,
            replay_every_s=0.3,
        )
        await consumer.start()
        assert await link.start(wait_s=5)
        watch.start()
        try:
            await wait_until(lambda: consumer.applied >= until, 10)
        finally:
            await consumer.stop()
            await watch.stop()
            await link.stop()
        return consumer

    def publish(seqs: Iterator[int] | range) -> None:
        for seq in seqs:
            b = history[seq]
            core.publisher.publish(b.seq, b.ts, list(b.events))

    try:
        # duplicates and a hole (41..60 lost in transit, e.g. a core killed after fsync)
        publish(range(1, 41))
        publish(range(20, 41))
        publish(range(61, 101))
        first = await run_consumer(100)
        assert sink.applied == list(range(1, 101))
        assert first.replay_requests >= 1

        # batches published while no projector runs wait in its durable queue, and a
        # restarted projector resumes from its offset without applying anything twice
        publish(range(90, 201))
        second = await run_consumer(200)
        assert sink.applied == list(range(1, 201))
        assert second.replay_requests == 0

        # a hole at the end, seen only through the heartbeat's published_seq
        core.publisher.start_at(300)
        await run_consumer(300)
        assert sink.applied == list(range(1, 301))
    finally:
        await core.stop()
