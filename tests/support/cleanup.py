"""Removing what a test left on the shared services (its AMQP names, its Redis keys)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable


async def delete_amqp(url: str, queues: Iterable[str], exchanges: Iterable[str]) -> None:
    """Delete queues and exchanges (missing ones are fine; each on its own channel, as a
    failed delete closes the channel)."""
    import aio_pika

    connection = await aio_pika.connect(url)
    try:
        for queue in queues:
            with contextlib.suppress(Exception):
                channel = await connection.channel()
                await channel.queue_delete(queue)
        for exchange in exchanges:
            with contextlib.suppress(Exception):
                channel = await connection.channel()
                await channel.exchange_delete(exchange)
    finally:
        await connection.close()


async def delete_redis_prefix(url: str, prefix: str) -> None:
    from redis.asyncio import Redis

    redis = Redis.from_url(url)
    try:
        keys = [k async for k in redis.scan_iter(match=f"{prefix}:*", count=1000)]
        if keys:
            await redis.delete(*keys)
    finally:
        await redis.aclose()
