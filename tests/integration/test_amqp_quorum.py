"""The command queue is a quorum queue on this broker (ADR 0011), commands still travel
and expire by their per-message TTL on it, and a queue declared earlier as a classic
queue keeps working instead of stopping the core."""

from __future__ import annotations

import asyncio
import time

import aio_pika
import pytest
from aio_pika.exceptions import ChannelPreconditionFailed

from tests.integration.test_amqp_bus import Api, Core, FakeCore, names  # noqa: F401 (fixture)
from tradewind.adapters.amqp import AmqpNames
from tradewind.adapters.amqp.commands import QUORUM_SINCE, command_queue_arguments
from tradewind.core.commands import Deposit
from tradewind.services.trading import CoreTimeout


def test_quorum_only_where_per_message_ttl_works() -> None:
    assert command_queue_arguments(None) == {}
    assert command_queue_arguments((3, 9, 29)) == {}
    assert command_queue_arguments(QUORUM_SINCE) == {"x-queue-type": "quorum"}
    assert command_queue_arguments((4, 0, 1)) == {"x-queue-type": "quorum"}


@pytest.mark.asyncio
async def test_commands_travel_on_a_quorum_queue(amqp_url: str, names: AmqpNames) -> None:  # noqa: F811
    core = Core(amqp_url, names, FakeCore(), {})
    # the production timeout (core_timeout_ms): a new quorum queue's first write waits for
    # its Raft log's fsync, which takes seconds on a loaded machine with a busy disk
    api = Api(amqp_url, names, timeout_s=10.0)
    await core.start()
    await api.start()
    try:
        assert core.server.queue_arguments == {"x-queue-type": "quorum"}
        connection = await aio_pika.connect(amqp_url)
        try:
            channel = await connection.channel()
            with pytest.raises(ChannelPreconditionFailed):  # it is not a classic queue
                await channel.declare_queue(names.commands, durable=True)
        finally:
            await connection.close()
        applied = await api.client.submit(Deposit(user=1, asset="BTC", amount=5))
        assert applied.seq == 1

        # a command nobody takes within its timeout is dropped by the queue (TTL)
        await core.server.stop()
        api.client.timeout_s = 0.2
        with pytest.raises(CoreTimeout):
            await api.client.submit(Deposit(user=2, asset="BTC", amount=5))
        channel = await core.link.connection.channel()  # type: ignore[union-attr]
        deadline = time.monotonic() + 15.0  # expiry is checked lazily, at the head
        while True:
            queue = await channel.declare_queue(names.commands, passive=True)
            if queue.declaration_result.message_count == 0 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.02)
        assert queue.declaration_result.message_count == 0
        assert core.fake.seen == [Deposit(user=1, asset="BTC", amount=5)]
    finally:
        await api.stop()
        await core.stop()


@pytest.mark.asyncio
async def test_a_classic_queue_declared_before_keeps_working(
    amqp_url: str,
    names: AmqpNames,  # noqa: F811
) -> None:
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    await channel.declare_queue(names.commands, durable=True)  # an older version's queue
    await connection.close()
    core = Core(amqp_url, names, FakeCore(), {})
    api = Api(amqp_url, names)
    await core.start()
    await api.start()
    try:
        applied = await api.client.submit(Deposit(user=1, asset="BTC", amount=5))
        assert applied.seq == 1 and core.server.applied == 1
    finally:
        await api.stop()
        await core.stop()
