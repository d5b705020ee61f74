"""The margin state reader over an in-process core (embedded mode, and the core process).

Invariant: read-only. Every figure comes from the core's own views and formulas
(``margin_ops.wallet_view``, ``max_borrowable``, ``values``/``scale``), so what the API
shows is exactly what the core's checks will use; it is read on the event loop between
two commands (the core runner applies on the same loop), never half-way through one.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from tradewind.core import margin_ops as M
from tradewind.core.engine import Core
from tradewind.core.errors import Reject
from tradewind.core.margin import LEVEL_ONE, POOL_ACCOUNT
from tradewind.core.marks import clamp_move, index_inputs, median
from tradewind.services.margin import (
    AssetTermsView,
    LoanState,
    MarginConfig,
    MarginUnavailable,
    SymbolTermsView,
    WalletState,
)

_MAX_PRICE = 2**63 - 1


class CoreMarginState:
    """:class:`~tradewind.services.margin.MarginStateReader` of a core in this process;
    ``core`` returns it (and raises while the core is starting)."""

    def __init__(self, core: Callable[[], Core | None]) -> None:
        self._core = core

    @property
    def available(self) -> bool:
        return self._core() is not None

    async def prepare(self, user: int | None, write_mark: Callable[[], Awaitable[int]]) -> None:
        return None  # the core is here: reads are current

    def _get(self) -> Core:
        core = self._core()
        if core is None:
            raise MarginUnavailable("the trading core is starting")
        return core

    def config(self) -> MarginConfig:
        core = self._get()
        m = core.margin
        symbols = [
            SymbolTermsView(
                symbol=s,
                max_leverage=t.max_leverage,
                initial_level=t.initial,
                margin_call_level=t.call,
                liquidation_level=t.liquidation,
                liquidation_fee_bps=t.fee_bps,
                mark=m.marks.get(s),
            )
            for s, t in sorted(m.symbols.items())
        ]
        cross = None
        if m.cross is not None:
            t = m.cross
            cross = SymbolTermsView(
                "", t.max_leverage, t.initial, t.call, t.liquidation, t.fee_bps, None
            )
        assets = [
            AssetTermsView(a, rate, limit, core.available(POOL_ACCOUNT, a))
            for a, (rate, limit) in sorted(m.assets.items())
        ]
        caps = dict(sorted(m.tier_caps.items()))
        return MarginConfig(m.valuation, symbols, cross, assets, caps)

    def wallet_ids(self, user: int) -> list[int]:
        core = self._core()
        if core is None:
            return []
        return list(core.margin.user_wallets.get(user, ()))

    def mark_preview(
        self, symbol: str, feeds: tuple[tuple[int, int], ...], now_ms: int
    ) -> int | None:
        """The mark a ``mark`` command with ``feeds`` at ``now_ms`` would set (the core's
        own functions), or ``None`` when it would be rejected (no inputs)."""
        core = self._core()
        if core is None:
            return None
        t = core.margin.symbols.get(symbol)
        if t is None:
            return None
        ts = max(now_ms, core.ts)
        inputs = index_inputs(core.markets[symbol].book, feeds, ts, t.max_age_ms)
        if not inputs:
            return None
        return clamp_move(core.margin.marks.get(symbol), median(inputs), t.max_move_bps)

    def mark_of(self, symbol: str) -> int | None:
        core = self._core()
        return None if core is None else core.margin.marks.get(symbol)

    def interest_due(self, now_ms: int) -> bool:
        """Whether a command stamped ``now_ms`` would charge an hour's interest."""
        core = self._core()
        return core is not None and core.margin.on and max(now_ms, core.ts) >= core.next_hour

    def owner(self, wallet: int) -> int | None:
        core = self._core()
        w = None if core is None else core.margin.wallets.get(wallet)
        return None if w is None else w.user

    def wallets(self, user: int) -> list[WalletState]:
        core = self._get()
        m = core.margin
        out: list[WalletState] = []
        for wid in sorted(m.user_wallets.get(user, ()), reverse=True):
            w = m.wallets[wid]
            view = M.wallet_view(core, wid)
            liq = view["liquidation_price"]
            liquidation: tuple[str, int, int] | None = None
            if isinstance(liq, tuple) and 1 <= liq[2] <= _MAX_PRICE:
                liquidation = (str(liq[0]), int(liq[1]), int(liq[2]))
            balances = view["balances"]
            loans = view["loans"]
            assert isinstance(balances, dict) and isinstance(loans, dict)
            level = view["level"]
            out.append(
                WalletState(
                    wallet=wid,
                    kind=w.kind,
                    symbol=w.symbol,
                    balances={str(k): (int(v[0]), int(v[1])) for k, v in balances.items()},
                    loans=[LoanState(str(a), int(p), int(i)) for a, (p, i) in loans.items()],
                    assets_value=int(view["assets"]),  # type: ignore[call-overload]
                    liabilities_value=int(view["liabilities"]),  # type: ignore[call-overload]
                    level=None if level is None else int(level),  # type: ignore[call-overload]
                    max_leverage=M.max_leverage_of(core, w),
                    initial_level=int(view["initial_level"]),  # type: ignore[call-overload]
                    margin_call_level=int(view["margin_call_level"]),  # type: ignore[call-overload]
                    liquidation_level=int(view["liquidation_level"]),  # type: ignore[call-overload]
                    called=bool(view["called"]),
                    liquidation=liquidation,
                )
            )
        return out

    def max_borrowable(self, user: int, kind: str, symbol: str | None, asset: str) -> int:
        core = self._get()
        if not core.margin.on:
            return 0
        return M.max_borrowable(core, user, kind, symbol, asset)

    def max_transferable(self, user: int, kind: str, symbol: str | None, asset: str) -> int:
        """Out of the wallet: its available ``asset``, and, with debts, no more than keeps
        ``10000 * assets >= initial * liabilities`` (the core's own test), rounded down."""
        core = self._get()
        if not core.margin.on:
            return 0
        try:
            w = M.find_wallet(core, user, kind, symbol)
        except Reject:
            return 0
        free = core.available(w.id, asset)
        if not w.loans or free <= 0:
            return max(free, 0)
        a, lia = M.values(core, w)
        s = M.scale(core, asset)
        room = LEVEL_ONE * a - M.initial_of(core, w) * lia
        if room <= 0 or s <= 0:
            return 0
        return min(free, room // (LEVEL_ONE * s))
