"""``tradewind marketmaker``: the demo market maker as a process of a distributed
deployment.

The bot (:class:`~tradewind.services.marketmaker.MarketMaker`) is an ordinary client of
the core, so it needs what an API replica has: the command bus over RabbitMQ, the market
catalog and market data from Redis, balances from the projector's tables and accounts in
PostgreSQL for its two users. It therefore runs on an :class:`ApiReplica` that serves no
HTTP, and adds nothing of its own to the system.

Invariant: one bot per deployment. Two bots would cancel each other's quotes (they share
the maker account), so the process first takes a lease in Redis
(``P:bot:core:lease``, the same mechanism as the core's, ADR 0010); a second one stands
by, and takes over if the first stops renewing.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket

import structlog

from tradewind.adapters.redis.lease import RedisLease
from tradewind.runtime import standby
from tradewind.runtime.bootstrap import ApiReplica
from tradewind.runtime.config import Settings
from tradewind.services.errors import EmailTaken
from tradewind.services.marketmaker import MarketMaker

log = structlog.get_logger(__name__)


async def _user_id(replica: ApiReplica, email: str) -> int:
    """The bot user's id, registered on first use (as in embedded demo mode)."""
    try:
        return await replica.accounts.register(email, secrets.token_urlsafe(24))
    except EmailTaken:
        from tradewind.adapters.sql import SqlUserRepository

        user = await SqlUserRepository(replica.db).get_by_email(email)
        assert user is not None
        return user.id


class MarketMakerProcess:
    """``start()`` stands by for the bot lease, then runs the bot; ``stop()``."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.replica = ApiReplica(settings, manage_lifecycle=False)
        self.lease = RedisLease(
            self.replica.redis,
            prefix=f"{settings.redis_prefix}:bot",
            holder=f"{socket.gethostname()}:{os.getpid()}:{self.replica.instance}",
            ttl_ms=settings.core_lease_ms,
        )
        self.bot: MarketMaker | None = None
        self._hold: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from tradewind.runtime.demo import BOT_FUNDING, MAKER_EMAIL, REFERENCE_PRICES, TAKER_EMAIL

        await self.replica.start()
        data_dir = self.settings.data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        await standby.acquire(self.lease, data_dir)
        self._hold = asyncio.create_task(standby.hold(self.lease, standby.fail_stop))
        maker = await _user_id(self.replica, MAKER_EMAIL)
        taker = await _user_id(self.replica, TAKER_EMAIL)
        self.bot = MarketMaker(
            self.replica.bus,
            self.replica.catalog,
            self.replica.market_data,
            self.replica.balances,
            maker_user=maker,
            taker_user=taker,
            reference_prices=REFERENCE_PRICES,
            funding=BOT_FUNDING,
            seed=self.settings.bot_seed,
        )
        await self.bot.start()
        log.info("market maker started", maker=maker, taker=taker)

    async def stop(self) -> None:
        if self.bot is not None:
            await self.bot.stop()
            self.bot = None
        if self._hold is not None:
            self._hold.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hold
            self._hold = None
        if self.lease.token:
            with contextlib.suppress(Exception):
                await self.lease.release()
        await self.replica.stop()


async def _serve(settings: Settings) -> None:
    process = MarketMakerProcess(settings)
    await standby.serve_standing_by(
        process.start,
        process.stop,
        "Tradewind market maker waiting for its lease",
        lambda: "Tradewind market maker running",
    )


def run_marketmaker(settings: Settings) -> int:
    """``tradewind marketmaker``: the demo bot until interrupted."""
    from tradewind.runtime.server import _run

    return _run(lambda: _serve(settings))
