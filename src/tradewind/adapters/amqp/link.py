"""One AMQP connection per process, re-established after any loss.

Invariants:
- users register ``(on_connect, on_disconnect)`` hooks before :meth:`AmqpLink.start`;
  after every successful connect each ``on_connect(connection)`` runs, in registration
  order, and declares what it needs (queues, exchanges, consumers); when the connection
  is lost, every ``on_disconnect()`` runs once before the next attempt, so users can fail
  what was waiting on the old connection at once instead of letting it time out;
- :attr:`AmqpLink.connected` is true only between a connect whose hooks all succeeded
  and the loss of that connection;
- reconnect attempts back off from ``retry_initial_s`` doubling to ``retry_max_s``; the
  link never gives up until stopped. Nothing here is robust-by-magic: topology is
  declared again by the hooks, and messages in flight on a lost connection are the
  users' business.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aio_pika
from aio_pika.abc import AbstractConnection

log = logging.getLogger(__name__)

OnConnect = Callable[[AbstractConnection], Awaitable[None]]
OnDisconnect = Callable[[], None]
CONNECT_TIMEOUT_S = 5.0


def redacted(url: str) -> str:
    """``url`` without its password (for logs)."""
    head, sep, tail = url.partition("://")
    if not sep or "@" not in tail:
        return url
    creds, _, host = tail.rpartition("@")
    user = creds.split(":", 1)[0]
    return f"{head}://{user}:***@{host}"


def _resolve(fut: asyncio.Future[None], *_: Any) -> None:
    if not fut.done():
        fut.set_result(None)


class AmqpLink:
    """A named connection to RabbitMQ with reconnection and per-connect set-up hooks."""

    def __init__(
        self,
        url: str,
        *,
        name: str = "tradewind",
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
    ) -> None:
        self.url = url
        self.name = name
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self._hooks: list[tuple[OnConnect, OnDisconnect | None]] = []
        self._connection: AbstractConnection | None = None
        self._task: asyncio.Task[None] | None = None
        self._up = asyncio.Event()
        self.connects = 0

    def add(self, on_connect: OnConnect, on_disconnect: OnDisconnect | None = None) -> None:
        if self._task is not None:
            raise RuntimeError("add hooks before start()")
        self._hooks.append((on_connect, on_disconnect))

    @property
    def connected(self) -> bool:
        return self._up.is_set()

    @property
    def connection(self) -> AbstractConnection | None:
        return self._connection if self._up.is_set() else None

    async def start(self, wait_s: float | None = None) -> bool:
        """Start connecting in the background; with ``wait_s``, wait that long for the
        first connection. Returns whether connected."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name=f"amqp-link-{self.name}"
            )
        if wait_s is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._up.wait(), wait_s)
        return self.connected

    async def wait_connected(self) -> None:
        await self._up.wait()

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop()

    async def _drop(self) -> None:
        was_up = self._up.is_set()
        self._up.clear()
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(connection.close(), 2.0)
        if was_up:
            for _, on_disconnect in self._hooks:
                if on_disconnect is not None:
                    try:
                        on_disconnect()
                    except Exception:
                        log.exception("amqp on_disconnect hook failed")

    async def _run(self) -> None:
        delay = self.retry_initial_s
        while True:
            lost: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            on_close = functools.partial(_resolve, lost)
            try:
                connection = await aio_pika.connect(
                    self.url,
                    timeout=CONNECT_TIMEOUT_S,
                    client_properties={"connection_name": self.name},
                )
                self._connection = connection
                connection.close_callbacks.add(on_close)
                for on_connect, _ in self._hooks:
                    await on_connect(connection)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "amqp %s: cannot connect to %s (%s); retrying in %.1f s",
                    self.name,
                    redacted(self.url),
                    exc,
                    delay,
                )
                await self._drop()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.retry_max_s)
                continue
            self.connects += 1
            delay = self.retry_initial_s
            self._up.set()
            log.info("amqp %s: connected to %s", self.name, redacted(self.url))
            try:
                await lost
            finally:
                if not lost.done():  # cancelled: stop() closes the connection
                    lost.cancel()
            log.warning("amqp %s: connection lost; reconnecting", self.name)
            await self._drop()
            await asyncio.sleep(delay)
