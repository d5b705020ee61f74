"""Margin for users (docs/margin.md, "Using margin"): transfers, borrows and repays as
core commands, the account view, the limits a form needs, and the margin history.

Invariants:
- every change is one core command through the :class:`~tradewind.services.trading.
  CommandBus`, reported only once the bus answered (durable); a command the core
  rejected raises :class:`~tradewind.services.trading.CoreRejected` with the core's
  reason (HTTP status from ``trading.REJECTION_STATUS``) and changed nothing;
- amounts are integers (minor units); the gateways convert decimals;
- the account view and the limits come from a :class:`MarginStateReader` (the core's
  own state in embedded mode, read between two commands, never torn); the figures are
  the core's (``margin_ops.wallet_view``), rounded in the exchange's favour;
- history comes from the margin projector's store (:class:`MarginHistoryStore`),
  newest first, a page at a time; a read after a user's own command waits (briefly)
  until the projector applied it, like the order history.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from tradewind.core.commands import (
    AnyCommand,
    Borrow,
    Cancel,
    MarginAsset,
    MarginCross,
    MarginSymbol,
    MarginTier,
    MarginTierClear,
    MarginTransfer,
    Repay,
)
from tradewind.core.events import Rejected
from tradewind.services.errors import ServiceError
from tradewind.services.history import Page
from tradewind.services.ports import WriteMarks
from tradewind.services.trading import (
    AppliedCommand,
    CommandBus,
    CoreRejected,
    CoreUnavailable,
    OrderNotFound,
)

WalletKind = Literal["cross", "isolated"]

HISTORY_KINDS: dict[str, frozenset[str]] = {
    "interest": frozenset({"interest"}),
    "loans": frozenset({"borrow", "repay"}),
    "liquidations": frozenset(
        {"margin_call", "liquidation_started", "liquidation_fill", "liquidation_finished"}
    ),
    "transfers": frozenset({"transfer"}),
}
"""What each history list shows, by the record kinds of :class:`MarginRecord`."""


class MarginUnavailable(ServiceError):
    code = "margin_unavailable"
    status_hint = 503
    default_message = "margin account figures are not available in this process"


# -- views ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LoanState:
    asset: str
    principal: int
    interest: int


@dataclass(frozen=True, slots=True)
class WalletState:
    """One margin wallet as the core sees it (integers: minor units, levels in 1/10000,
    prices in ticks of ``liquidation_symbol``)."""

    wallet: int
    kind: str
    symbol: str | None
    balances: dict[str, tuple[int, int]]
    """asset -> (available, locked)"""
    loans: list[LoanState]
    assets_value: int
    """Valuation-asset minor units, rounded down."""
    liabilities_value: int
    """Valuation-asset minor units, rounded up."""
    level: int | None
    """``None`` without liabilities."""
    max_leverage: int
    initial_level: int
    margin_call_level: int
    liquidation_level: int
    called: bool
    liquidation: tuple[str, int, int] | None
    """``(symbol, direction, price)``: at or below the liquidation level when the mark
    is ``<= price`` (direction 1) or ``>= price`` (-1); ``None`` when not defined."""


@dataclass(frozen=True, slots=True)
class SymbolTermsView:
    symbol: str
    max_leverage: int
    initial_level: int
    margin_call_level: int
    liquidation_level: int
    liquidation_fee_bps: int
    mark: int | None


@dataclass(frozen=True, slots=True)
class AssetTermsView:
    asset: str
    hourly_rate: int
    """Parts per billion of the principal per hour."""
    borrow_limit: int
    pool_available: int


@dataclass(frozen=True, slots=True)
class MarginConfig:
    valuation_asset: str | None
    symbols: list[SymbolTermsView]
    cross: SymbolTermsView | None
    """``symbol`` is ``""``; ``mark`` is ``None``."""
    assets: list[AssetTermsView]
    tier_caps: dict[int, int] = field(default_factory=dict)
    """Fee tier -> the max leverage of its users' wallets (docs/margin.md)."""


@dataclass(frozen=True, slots=True)
class MarginRecord:
    """One row of the margin history (the projector stores one per margin event)."""

    id: int
    seq: int
    ts: int
    wallet: int
    kind: str
    """transfer, borrow, repay, interest, margin_call, liquidation_started,
    liquidation_fill, liquidation_finished"""
    asset: str | None
    amount: int | None
    data: dict[str, object] = field(default_factory=dict)
    wallet_kind: str | None = None
    symbol: str | None = None


# -- ports ------------------------------------------------------------------------------


class MarginStateReader(Protocol):
    """The core's margin state, read-only."""

    @property
    def available(self) -> bool:
        """False where this process has no core state (a distributed API replica)."""
        ...

    async def prepare(self, user: int | None, write_mark: Callable[[], Awaitable[int]]) -> None:
        """Make the synchronous reads of ``user`` (``None``: ``config``) answer: a no-op
        where the core is in the process; a replica loads the published figures, once
        they include ``write_mark()`` (the user's last acknowledged command)."""
        ...

    def config(self) -> MarginConfig: ...

    def wallets(self, user: int) -> list[WalletState]: ...

    def wallet_ids(self, user: int) -> list[int]: ...

    def owner(self, wallet: int) -> int | None:
        """The user who owns margin wallet ``wallet`` (an account id < 0)."""
        ...

    def max_borrowable(self, user: int, kind: str, symbol: str | None, asset: str) -> int: ...

    def max_transferable(self, user: int, kind: str, symbol: str | None, asset: str) -> int:
        """The most of ``asset`` a transfer out of the wallet would accept now."""
        ...


class NoMarginState:
    """The :class:`MarginStateReader` of a process without the core (a distributed API
    replica): figures answer ``503 margin_unavailable``."""

    @property
    def available(self) -> bool:
        return False

    async def prepare(self, user: int | None, write_mark: Callable[[], Awaitable[int]]) -> None:
        return None

    def config(self) -> MarginConfig:
        raise MarginUnavailable()

    def wallets(self, user: int) -> list[WalletState]:
        raise MarginUnavailable()

    def wallet_ids(self, user: int) -> list[int]:
        return []

    def owner(self, wallet: int) -> int | None:
        return None

    def max_borrowable(self, user: int, kind: str, symbol: str | None, asset: str) -> int:
        raise MarginUnavailable()

    def max_transferable(self, user: int, kind: str, symbol: str | None, asset: str) -> int:
        raise MarginUnavailable()


class MarginHistoryStore(Protocol):
    async def list_records(
        self,
        user: int,
        kinds: frozenset[str],
        *,
        asset: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[MarginRecord]:
        """Records of ``user`` of these kinds, newest first, ids below ``before``."""
        ...

    async def wallets_of(self, user: int) -> list[tuple[int, str, str | None]]:
        """``(wallet id, kind, symbol)`` of every wallet the user opened."""
        ...


class Watermark(Protocol):
    @property
    def applied_seq(self) -> int: ...

    async def wait_for(self, seq: int) -> None: ...


# -- the service ------------------------------------------------------------------------


def _rejection(events: Sequence[object]) -> Rejected | None:
    for e in events:
        if type(e) is Rejected:
            return e
    return None


class MarginService:
    """Margin commands and reads for one user at a time."""

    def __init__(
        self,
        bus: CommandBus,
        state: MarginStateReader,
        history: MarginHistoryStore,
        progress: Watermark,
        marks: WriteMarks,
        *,
        read_wait_s: float = 2.0,
    ) -> None:
        self._bus = bus
        self.state = state
        self._history = history
        self._progress = progress
        self._marks = marks
        self._read_wait_s = read_wait_s

    async def _submit(self, user: int, cmd: AnyCommand) -> AppliedCommand:
        if not self._bus.available:
            raise CoreUnavailable()
        applied = await self._bus.submit(cmd)
        await self._marks.note(user, applied.seq)
        rejected = _rejection(applied.events)
        if rejected is not None:
            raise CoreRejected(rejected.reason, rejected.message, rejected.filter)
        return applied

    # -- commands ----------------------------------------------------------------------

    async def transfer(
        self,
        user: int,
        asset: str,
        amount: int,
        direction: Literal["in", "out"],
        wallet: WalletKind,
        symbol: str | None,
    ) -> int:
        """Spot <-> margin wallet; returns the command's seq."""
        cmd = MarginTransfer(
            user=user,
            asset=asset,
            amount=amount,
            direction=direction,
            wallet=wallet,
            symbol=symbol,
        )
        return (await self._submit(user, cmd)).seq

    async def borrow(
        self, user: int, asset: str, amount: int, wallet: WalletKind, symbol: str | None
    ) -> int:
        cmd = Borrow(user=user, asset=asset, amount=amount, wallet=wallet, symbol=symbol)
        return (await self._submit(user, cmd)).seq

    async def repay(
        self, user: int, asset: str, amount: int, wallet: WalletKind, symbol: str | None
    ) -> int:
        cmd = Repay(user=user, asset=asset, amount=amount, wallet=wallet, symbol=symbol)
        return (await self._submit(user, cmd)).seq

    async def configure(
        self,
        actor: int,
        cmd: MarginAsset | MarginSymbol | MarginCross | MarginTier | MarginTierClear,
    ) -> int:
        """Margin terms from the back office (the gateway checked the role); returns the
        seq. ``actor`` keys the read-your-writes mark."""
        return (await self._submit(actor, cmd)).seq

    async def cancel(self, user: int, order_id: int, symbol: str) -> int:
        """Cancel an order of one of ``user``'s margin wallets (the core checks the
        owner); returns the seq."""
        try:
            return (await self._submit(user, Cancel(id=order_id, user=user, symbol=symbol))).seq
        except CoreRejected as e:
            if e.reason == "unknown_order":
                raise OrderNotFound(f"no open margin order {order_id}") from e
            raise

    # -- reads -------------------------------------------------------------------------

    def _state(self) -> MarginStateReader:
        if not self.state.available:
            raise MarginUnavailable()
        return self.state

    async def ready(self, user: int | None) -> None:
        """Before the synchronous reads of ``user`` (``None``: the config): a replica
        loads the published figures (read-your-writes); embedded, nothing happens."""

        async def write_mark() -> int:
            return 0 if user is None else await self._marks.last(user)

        await self._state().prepare(user, write_mark)

    def config(self) -> MarginConfig:
        return self._state().config()

    def account(self, user: int) -> list[WalletState]:
        return self._state().wallets(user)

    def max_borrowable(self, user: int, kind: str, symbol: str | None, asset: str) -> int:
        return self._state().max_borrowable(user, kind, symbol, asset)

    def max_transferable(self, user: int, kind: str, symbol: str | None, asset: str) -> int:
        return self._state().max_transferable(user, kind, symbol, asset)

    async def caught_up(self, user: int) -> None:
        seq = await self._marks.last(user)
        if seq and self._progress.applied_seq < seq:
            with contextlib.suppress(TimeoutError, RuntimeError):
                await asyncio.wait_for(self._progress.wait_for(seq), self._read_wait_s)

    async def history(
        self,
        user: int,
        what: str,
        *,
        asset: str | None = None,
        limit: int = 100,
        before: int | None = None,
    ) -> Page[MarginRecord]:
        await self.caught_up(user)
        return await self._history.list_records(
            user, HISTORY_KINDS[what], asset=asset, limit=limit, before=before
        )

    async def wallet_ids(self, user: int) -> list[tuple[int, str, str | None]]:
        """The user's wallets (from the core when here, else from the projection)."""
        if self.state.available:
            with contextlib.suppress(MarginUnavailable):
                await self.ready(user)
                return [(w.wallet, w.kind, w.symbol) for w in self.state.wallets(user)]
        await self.caught_up(user)
        return await self._history.wallets_of(user)
