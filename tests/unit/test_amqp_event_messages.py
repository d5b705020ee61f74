"""Event messages carrying several batches (ADR 0050): a sequenced consumer acknowledges
such a message only once every batch it kept from it is applied, so a consumer killed
before that gets the message again from the broker."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

import pytest

from tradewind.adapters.amqp.events import (
    AmqpSequencedConsumer,
    CoreWatch,
    _batches_message,
)
from tradewind.adapters.amqp.link import AmqpLink
from tradewind.adapters.amqp.wire import AmqpNames, decode_batches
from tradewind.core.events import Deposited
from tradewind.services.projectors.ports import Batch


def _events(seq: int) -> list[Deposited]:
    return [Deposited(user=seq, asset="USDT", amount=seq)]


@dataclass
class Delivery:
    """What the consumer reads of an aio-pika delivery."""

    body: bytes
    type: str | None
    acks: int = 0

    async def ack(self) -> None:
        self.acks += 1


def delivery(seqs: Sequence[int]) -> Delivery:
    message = _batches_message([(s, 1000 + s, _events(s)) for s in seqs])
    return Delivery(message.body, message.type)


def test_one_batch_travels_as_before_several_as_a_list() -> None:
    one, three = delivery([7]), delivery([7, 8, 9])
    assert (one.type, three.type) == ("batch", "batches")
    assert [(b.seq, b.ts, b.events) for b in decode_batches(three.body, three.type)] == [
        (s, 1000 + s, _events(s)) for s in (7, 8, 9)
    ]
    assert [b.seq for b in decode_batches(one.body, one.type)] == [7]


def test_a_message_is_acknowledged_once_all_its_kept_batches_are_applied() -> None:
    async def go() -> None:
        applied: list[int] = []
        stop_at = 0

        async def apply(batches: Sequence[Batch]) -> int:
            for b in batches:
                if b.seq > stop_at:
                    break
                applied.append(b.seq)
            return applied[-1] if applied else 0

        async def offset() -> int:
            return 0

        link = AmqpLink("amqp://guest:guest@127.0.0.1:1/")  # never started
        names = AmqpNames("test")
        consumer = AmqpSequencedConsumer(
            link,
            names,
            CoreWatch(link, names, liveness_s=1.0),
            name="p",
            offset=offset,
            apply=apply,
        )
        first = delivery([1, 2, 3])
        await consumer._on_live(first)  # type: ignore[arg-type]
        stop_at = 2  # the projector applies 1..2, then fails on 3
        with pytest.raises(RuntimeError, match="applied only up to 2 of 3"):
            await consumer._apply_ready()
        assert (applied, first.acks) == ([1, 2], 0)  # 3 not applied: not acknowledged
        stop_at = 10
        await consumer._apply_ready()
        assert (applied, first.acks) == ([1, 2, 3], 1)
        # a redelivered copy of applied batches is acknowledged at once
        again = delivery([2, 3])
        await consumer._on_live(again)  # type: ignore[arg-type]
        assert again.acks == 1
        # a message whose last batch waits already (a replayed copy) is acknowledged
        # with the highest batch it did add
        await consumer._on_replay(delivery([6]))  # type: ignore[arg-type]
        mixed = delivery([4, 5, 6])
        await consumer._on_live(mixed)  # type: ignore[arg-type]
        assert mixed.acks == 0
        await consumer._apply_ready()
        assert (applied, mixed.acks) == ([1, 2, 3, 4, 5, 6], 1)

    asyncio.run(go())
