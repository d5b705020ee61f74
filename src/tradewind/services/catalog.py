"""Markets, assets and balances as the gateways need them, and the embedded reader.

Invariants:
- a :class:`MarketInfo` carries everything the API edge needs to convert decimals to
  the core's integers and back (decimals of both assets, tick and lot sizes) and every
  filter of the symbol, so gateways never reach into the core's objects;
- :class:`CoreCatalog` only reads the live core (embedded mode: same process, same
  event loop as the core runner, so a read sees a whole command or none of it); it
  never mutates it;
- balances are integers in minor units; an asset the account never held is absent.

Distributed mode (API replicas cannot read the core's memory) uses the same Protocols:
the catalog the core publishes to Redis (``adapters/redis/catalog.py``), and
:class:`ProjectedBalances`, the ledger projector's sums, which lag the core by the
projector's delay; a read waits (briefly) for the user's last acknowledged command.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from tradewind.core.engine import Core


@dataclass(frozen=True, slots=True)
class AssetInfo:
    name: str
    decimals: int


@dataclass(frozen=True, slots=True)
class MarketInfo:
    symbol: str
    base: str
    quote: str
    base_decimals: int
    quote_decimals: int
    tick_size: int
    """Quote minor units per whole base unit, per tick."""
    lot_size: int
    """Base minor units per lot."""
    min_qty: int | None
    max_qty: int | None
    min_notional: int | None
    price_band_bps: int | None
    market_band_bps: int
    halted: bool
    last_price: int | None

    @property
    def status(self) -> str:
        return "halted" if self.halted else "trading"

    @property
    def notional(self) -> int:
        """Quote minor units of one lot at a price of one tick."""
        scale: int = 10**self.base_decimals
        return self.tick_size * self.lot_size // scale


@dataclass(frozen=True, slots=True)
class BalanceView:
    asset: str
    available: int
    locked: int


class MarketCatalog(Protocol):
    def markets(self) -> list[MarketInfo]:
        """Every market, sorted by symbol."""
        ...

    def market(self, symbol: str) -> MarketInfo | None: ...

    def assets(self) -> list[AssetInfo]: ...

    def asset(self, name: str) -> AssetInfo | None: ...


class BalanceReader(Protocol):
    async def balances(self, user: int) -> list[BalanceView]:
        """The user's balances, sorted by asset."""
        ...


class CoreCatalog:
    """:class:`MarketCatalog` and :class:`BalanceReader` over the live core (embedded)."""

    def __init__(self, core: Callable[[], Core]) -> None:
        self._core = core

    def market(self, symbol: str) -> MarketInfo | None:
        core = self._core()
        m = core.markets.get(symbol)
        if m is None:
            return None
        return MarketInfo(
            symbol=m.name,
            base=m.base,
            quote=m.quote,
            base_decimals=m.base_decimals,
            quote_decimals=core.assets[m.quote],
            tick_size=m.tick_size,
            lot_size=m.lot_size,
            min_qty=m.min_qty,
            max_qty=m.max_qty,
            min_notional=m.min_notional,
            price_band_bps=m.price_band_bps,
            market_band_bps=m.market_band_bps,
            halted=m.halted,
            last_price=m.last_price,
        )

    def markets(self) -> list[MarketInfo]:
        found = (self.market(name) for name in sorted(self._core().markets))
        return [m for m in found if m is not None]

    def asset(self, name: str) -> AssetInfo | None:
        decimals = self._core().assets.get(name)
        return None if decimals is None else AssetInfo(name, decimals)

    def assets(self) -> list[AssetInfo]:
        return [AssetInfo(n, d) for n, d in sorted(self._core().assets.items())]

    async def balances(self, user: int) -> list[BalanceView]:
        account = self._core().accounts.get(user, {})
        return [
            BalanceView(asset, b.available, b.locked)
            for asset, b in sorted(account.items())
            if b.available or b.locked
        ]


class _LedgerSums(Protocol):
    @property
    def available(self) -> int: ...

    @property
    def locked(self) -> int: ...


class LedgerReader(Protocol):
    async def balances(self, account: int | None = None) -> Mapping[tuple[int, str], _LedgerSums]:
        """Sums of the ledger legs per ``(account, asset)``."""
        ...


class ProjectedBalances:
    """:class:`BalanceReader` over the ledger projector's tables (distributed mode).

    ``caught_up(user)`` is awaited first (the trading service's read-your-writes wait),
    so a user sees the effect of their own acknowledged commands unless the projector is
    more than that wait behind; otherwise the answer is as stale as the projector."""

    def __init__(self, ledger: LedgerReader, caught_up: Callable[[int], Awaitable[None]]) -> None:
        self._ledger = ledger
        self._caught_up = caught_up

    async def balances(self, user: int) -> list[BalanceView]:
        await self._caught_up(user)
        sums = await self._ledger.balances(user)
        return [
            BalanceView(asset, b.available, b.locked)
            for (account, asset), b in sorted(sums.items())
            if account == user and (b.available or b.locked)
        ]
