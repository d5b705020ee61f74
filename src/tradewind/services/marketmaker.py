"""The demo market maker: keeps a two-sided book around a random-walk mid, and trades.

Invariants:
- it is an ordinary client of the core: every action is a core command submitted
  through the :class:`~tradewind.services.trading.CommandBus` as its own users (a maker
  and a taker account), so it is journaled, risk-checked and seen by every consumer like
  anyone's order; it never touches state directly;
- integers only: the mid is a price in ticks, moved by whole basis points; quantities
  are whole lots; no float reaches a command;
- deterministic for a given seed and the same market state: all randomness comes from
  one :class:`random.Random`;
- a failure (rejection, core unavailable) is logged and retried on the next step; the
  bot never stops the exchange.

Each step requotes one market (round robin): cancel the maker's orders there, then place
``levels`` bids and asks around the mid (one group commit for all of them); now and then
the taker crosses the spread with a small IOC order so the tape moves.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Mapping

import structlog

from tradewind.core.commands import AnyCommand, CancelAll, Deposit, Place, Side
from tradewind.services.catalog import BalanceReader, MarketCatalog, MarketInfo
from tradewind.services.errors import ServiceError
from tradewind.services.marketdata.ports import MarketDataReader
from tradewind.services.trading import CommandBus, CoreFailure, CoreUnavailable

log = structlog.get_logger(__name__)

BPS = 10_000


class MarketMaker:
    def __init__(
        self,
        bus: CommandBus,
        catalog: MarketCatalog,
        market_data: MarketDataReader,
        balances: BalanceReader,
        *,
        maker_user: int,
        taker_user: int,
        reference_prices: Mapping[str, int],
        funding: Mapping[str, int],
        seed: int | None = None,
        interval_s: float = 0.5,
        levels: int = 6,
        trade_probability: float = 0.35,
    ) -> None:
        """``reference_prices``: the starting mid of each market in ticks (markets without
        one start from their last trade price, or are left alone); ``funding``: the
        minor units of each asset the bot accounts are topped up to."""
        self._bus = bus
        self._catalog = catalog
        self._market_data = market_data
        self._balances = balances
        self.maker_user = maker_user
        self.taker_user = taker_user
        self._reference = dict(reference_prices)
        self._funding = dict(funding)
        self._rng = random.Random(seed)
        self._interval_s = interval_s
        self._levels = levels
        self._trade_pct = int(trade_probability * 100)
        self._mids: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        self._step = 0
        self.steps_done = 0

    async def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="market-maker")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            try:
                await self.step()
            except CoreUnavailable:
                await asyncio.sleep(2.0)
            except (ServiceError, CoreFailure) as e:
                log.debug("market maker step refused", code=e.code, message=e.message)
            except Exception:
                log.exception("market maker step failed")
            await asyncio.sleep(self._interval_s)

    async def _submit(self, cmd: AnyCommand) -> None:
        await self._bus.submit(cmd)  # rejections are part of the game: ignored

    async def _fund(self) -> None:
        for user in (self.maker_user, self.taker_user):
            held = {b.asset: b.available + b.locked for b in await self._balances.balances(user)}
            for asset, target in self._funding.items():
                have = held.get(asset, 0)
                if have < target // 2 and self._catalog.asset(asset) is not None:
                    await self._submit(Deposit(user=user, asset=asset, amount=target - have))

    def _start_mid(self, m: MarketInfo) -> int | None:
        if m.last_price is not None:
            return m.last_price
        return self._reference.get(m.symbol)

    async def step(self) -> None:
        """Requote the next market (and maybe trade there)."""
        markets = [m for m in self._catalog.markets() if not m.halted]
        markets = [m for m in markets if m.symbol in self._mids or self._start_mid(m)]
        if not markets:
            return
        if self._step % 20 == 0:
            await self._fund()
        m = markets[self._step % len(markets)]
        self._step += 1
        mid = self._mids.get(m.symbol) or self._start_mid(m)
        assert mid is not None
        move_bps = self._rng.randint(-6, 6)
        mid = max(mid + mid * move_bps // BPS, 10)
        self._mids[m.symbol] = mid
        await self._requote(m, mid)
        if self._rng.randrange(100) < self._trade_pct:
            await self._cross(m)
        self.steps_done += 1

    def _lots(self, m: MarketInfo, price: int, scale: int) -> int:
        unit: int = 10**m.base_decimals // 1000  # 0.001 of a base unit
        lots = max(1, unit * self._rng.randint(1, scale) // m.lot_size)
        if m.min_notional is not None:
            per_lot = max(price * m.notional, 1)
            lots = max(lots, -(-m.min_notional // per_lot))
        if m.min_qty is not None:
            lots = max(lots, m.min_qty)
        if m.max_qty is not None:
            lots = min(lots, m.max_qty)
        return lots

    async def _requote(self, m: MarketInfo, mid: int) -> None:
        half_spread = max(mid * 4 // BPS, 1)
        gap = max(mid * 3 // BPS, 1)
        await self._submit(CancelAll(user=self.maker_user, symbol=m.symbol))
        orders: list[AnyCommand] = []
        for i in range(self._levels):
            offset = half_spread + i * gap
            sides: tuple[tuple[Side, int], ...] = (("buy", mid - offset), ("sell", mid + offset))
            for side, price in sides:
                if price <= 0:
                    continue
                orders.append(self._limit(m, side, price, self._lots(m, price, 300), "GTC"))
        await asyncio.gather(*(self._submit(o) for o in orders))

    def _limit(self, m: MarketInfo, side: Side, price: int, qty: int, tif: str) -> Place:
        user = self.maker_user if tif == "GTC" else self.taker_user
        return Place(
            id=0,
            user=user,
            symbol=m.symbol,
            side=side,
            price=price,
            qty=qty,
            tif="GTC" if tif == "GTC" else "IOC",
        )

    async def _cross(self, m: MarketInfo) -> None:
        book = await self._market_data.get_book(m.symbol, 1)
        if book is None:
            return
        side: Side = "buy" if self._rng.randrange(2) else "sell"
        levels = book.asks if side == "buy" else book.bids
        if not levels:
            return
        price = levels[0][0]
        await self._submit(self._limit(m, side, price, self._lots(m, price, 40), "IOC"))
