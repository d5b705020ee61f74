"""Margin state and its formulas: wallets, loans, terms, the lending pool's ledger, and
the integer arithmetic of levels, liquidation prices, interest and borrowing limits.

Everything here is plain data and pure functions; ``margin_ops`` applies the commands.

Invariants this module's data keeps (checked by ``invariants.check_invariants``):
- per asset, pool cash (account ``POOL_ACCOUNT``) + every wallet's debt (principal +
  interest) == net pool funding + interest charged - losses written off;
- a loan is never negative, and a loan of zero is dropped (canonical state);
- a wallet's account id is negative and never reused; ``by_owner`` and ``user_wallets``
  agree with ``wallets``;
- ``auto_repay`` holds only ids of live orders and stops of wallets.

Values are exact: an amount ``x`` of an asset is worth ``x * scale(asset)`` where the
valuation asset has scale ``10**18`` and another asset ``mark * tick_size *
10**(18 - decimals)`` of its margin symbol (``decimals <= 18``), i.e. valuation-asset
minor units times ``10**18``. Level comparisons ``10000 * assets <= level * liabilities``
are then exact integer comparisons: no rounding decides a liquidation.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from typing import Final

LEVEL_ONE: Final = 10_000
"""Margin levels are integers in 1/10000: 11_000 is a level of 1.1."""
RATE_SCALE: Final = 10**9
"""Hourly interest rates are in parts per billion of the principal."""
VALUE_DIGITS: Final = 18
VALUE_ONE: Final = 10**VALUE_DIGITS
HOUR_MS: Final = 3_600_000
MAX_LEVERAGE: Final = 10
POOL_ACCOUNT: Final = -1
"""The lending pool's cash: an account of its own, so money conservation is unchanged."""
INSURANCE_ACCOUNT: Final = -2
FIRST_WALLET: Final = -100
"""Wallet account ids count down from here: -100, -101, ..."""
NEVER: Final = 2**63
ALWAYS: Final = 2**63
"""A long trigger that every price meets (the wallet is under water at any price)."""


def initial_level(max_leverage: int) -> int:
    """``ceil(10000 * L / (L - 1))``: at leverage L, assets L*E against debt (L-1)*E.

    >>> initial_level(10), initial_level(3), initial_level(2)
    (11112, 15000, 20000)
    """
    return -(-LEVEL_ONE * max_leverage // (max_leverage - 1))


def interest_for(principal: int, hourly_rate: int, hours: int = 1) -> int:
    """Interest of ``hours`` hours: ``hours * ceil(principal * rate / 10**9)``. Each hour
    rounds up (the exchange's favour) by less than one minor unit."""
    return hours * -(-principal * hourly_rate // RATE_SCALE)


def level_of(assets: int, liabilities: int) -> int | None:
    """The margin level in 1/10000, rounded down; ``None`` without liabilities."""
    if liabilities <= 0:
        return None
    return LEVEL_ONE * assets // liabilities


def at_or_below(assets: int, liabilities: int, level: int) -> bool:
    """Exactly ``assets / liabilities <= level / 10000`` (false without liabilities)."""
    return liabilities > 0 and LEVEL_ONE * assets <= level * liabilities


def trigger(
    level: int, base: int, base_debt: int, quote: int, quote_debt: int, tick: int, decimals: int
) -> tuple[int, int] | None:
    """Where a wallet holding ``base``/``quote`` and owing ``base_debt``/``quote_debt``
    (minor units; one base asset against the valuation asset) reaches ``level``.

    Returns ``(1, p)``: at or below ``level`` when the mark is ``<= p`` (a long: it holds
    more base than it owes); ``(-1, p)``: when the mark is ``>= p`` (a short); ``None``:
    never (a long whose ``p`` is below one tick, too). ``p`` is the exact boundary
    rounded to the tick that still meets it.

    From ``10000 * (base*m*t + quote*D) <= level * (base_debt*m*t + quote_debt*D)`` with
    mark ``m``, tick ``t``, ``D = 10**decimals``: ``m*t*c <= r`` where
    ``c = 10000*base - level*base_debt`` and ``r = D*(level*quote_debt - 10000*quote)``.
    """
    c = LEVEL_ONE * base - level * base_debt
    r = 10**decimals * (level * quote_debt - LEVEL_ONE * quote)
    if c > 0:
        p = r // (tick * c)  # m <= r / (t c)
        return (1, p) if p >= 1 else None  # a mark is at least one tick
    if c < 0:
        return (-1, -(-r // (tick * c)))  # m >= r / (t c), c < 0
    return (1, ALWAYS) if r >= 0 else None


def max_borrow_by_level(assets: int, liabilities: int, scale: int, init: int) -> int:
    """The most minor units of an asset of value ``scale`` per unit that can be borrowed
    keeping ``10000 * (A + x*s) >= init * (L + x*s)``: ``floor((10000*A - init*L) /
    (s * (init - 10000)))``, at least 0. Rounded down (the exchange's favour)."""
    room = LEVEL_ONE * assets - init * liabilities
    if room <= 0:
        return 0
    return room // (scale * (init - LEVEL_ONE))


class Terms:
    """Levels of a margin symbol's isolated wallets, or of every cross wallet."""

    __slots__ = ("call", "fee_bps", "initial", "liquidation", "max_leverage")

    def __init__(self, max_leverage: int, call: int, liquidation: int, fee_bps: int) -> None:
        self.max_leverage = max_leverage
        self.initial = initial_level(max_leverage)
        self.call = call
        self.liquidation = liquidation
        self.fee_bps = fee_bps

    def row(self) -> list[int]:
        return [self.max_leverage, self.call, self.liquidation, self.fee_bps]


class SymbolTerms(Terms):
    """A margin symbol: its isolated wallets' levels, its liquidation band and mark
    rules."""

    __slots__ = ("band_bps", "max_age_ms", "max_move_bps")

    def __init__(
        self,
        max_leverage: int,
        call: int,
        liquidation: int,
        fee_bps: int,
        band_bps: int,
        max_age_ms: int,
        max_move_bps: int,
    ) -> None:
        super().__init__(max_leverage, call, liquidation, fee_bps)
        self.band_bps = band_bps
        self.max_age_ms = max_age_ms
        self.max_move_bps = max_move_bps

    def row(self) -> list[int]:
        return [*super().row(), self.band_bps, self.max_age_ms, self.max_move_bps]


class Loan:
    """A wallet's debt in one asset: interest accrues separately from the principal and
    is repaid first."""

    __slots__ = ("interest", "principal")

    def __init__(self, principal: int = 0, interest: int = 0) -> None:
        self.principal = principal
        self.interest = interest

    @property
    def owed(self) -> int:
        return self.principal + self.interest


class Wallet:
    """A margin wallet: ``id`` is its account in ``Core.accounts`` (negative).

    ``entry`` is where the wallet sits in its symbol's trigger index (derived, rebuilt
    on restore): ``(symbol, liq, call)`` with ``liq``/``call`` a ``trigger()`` result;
    ``multi`` when it has more than one non-valuation exposure (then checked on every
    mark of any of its symbols)."""

    __slots__ = ("called", "entry", "id", "kind", "loans", "multi", "symbol", "user")

    def __init__(self, id: int, user: int, kind: str, symbol: str | None) -> None:
        self.id = id
        self.user = user
        self.kind = kind
        self.symbol = symbol
        self.loans: dict[str, Loan] = {}
        self.called = False
        self.entry: tuple[str, tuple[int, int] | None, tuple[int, int] | None] | None = None
        self.multi = False


class SymbolIndex:
    """A margin symbol's wallets by trigger price, as sorted ``(price, wallet)`` lists.

    ``liq_long``: liquidated when the mark falls to ``<= price``; ``liq_short``: when it
    rises to ``>= price``; ``call_*`` likewise for the margin call, holding only wallets
    not called yet. ``called`` holds the called wallets of this symbol (checked on each
    mark for recovery). A mark update costs a few bisections, not a scan."""

    __slots__ = ("call_long", "call_short", "called", "liq_long", "liq_short")

    def __init__(self) -> None:
        self.liq_long: list[tuple[int, int]] = []
        self.liq_short: list[tuple[int, int]] = []
        self.call_long: list[tuple[int, int]] = []
        self.call_short: list[tuple[int, int]] = []
        self.called: set[int] = set()

    def lists(self, call: bool) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        return (self.call_long, self.call_short) if call else (self.liq_long, self.liq_short)

    def put(self, call: bool, trig: tuple[int, int], wid: int) -> None:
        long, short = self.lists(call)
        insort(long if trig[0] > 0 else short, (trig[1], wid))

    def drop(self, call: bool, trig: tuple[int, int], wid: int) -> None:
        long, short = self.lists(call)
        lst = long if trig[0] > 0 else short
        key = (trig[1], wid)
        i = bisect_left(lst, key)
        if i < len(lst) and lst[i] == key:
            del lst[i]

    def hits(self, call: bool, mark: int) -> list[int]:
        """Wallets whose trigger ``mark`` meets: longs with price >= mark, shorts with
        price <= mark; worst first within each side."""
        long, short = self.lists(call)
        out = [w for _, w in reversed(long[bisect_left(long, (mark,)) :])]
        out.extend(w for _, w in short[: bisect_left(short, (mark + 1,))])
        return out


class MarginState:
    """All margin state of a core. Empty (``on`` false) until the first margin command,
    so a spot-only core's state and hash are exactly those of before."""

    def __init__(self) -> None:
        self.on = False
        self.valuation: str | None = None
        self.assets: dict[str, tuple[int, int]] = {}  # asset -> (hourly_rate, borrow_limit)
        self.symbols: dict[str, SymbolTerms] = {}
        self.cross: Terms | None = None
        self.tier_caps: dict[int, int] = {}  # fee tier -> max leverage of its wallets
        self.base_symbol: dict[str, str] = {}  # base asset -> its margin symbol
        self.marks: dict[str, int] = {}
        self.wallets: dict[int, Wallet] = {}
        self.by_owner: dict[tuple[int, str], int] = {}  # (user, symbol or "") -> wallet
        self.user_wallets: dict[int, list[int]] = {}
        self.next_wallet = FIRST_WALLET
        self.next_order = 1  # liquidation orders are -1, -2, ...
        self.funded: dict[str, int] = {}
        self.interest: dict[str, int] = {}
        self.losses: dict[str, int] = {}
        self.hour = 0  # the last hour (ts // HOUR_MS) whose interest was charged
        # Ids of live wallet orders and stops placed with ``auto_repay``: every fill of
        # one repays the wallet's debt in the asset it received (``margin_ops.settle``).
        # Kept here rather than on ``Order``, so spot orders carry nothing; an id leaves
        # when its order ends (filled, cancelled, expired, liquidated).
        self.auto_repay: set[int] = set()
        # Derived (rebuilt on restore, not state):
        self.index: dict[str, SymbolIndex] = {}
        self.multi: set[int] = set()
        self.indebted: set[int] = set()  # wallets with a loan
        self.due: list[int] = []  # wallets to liquidate within the current command
        self.due_set: set[int] = set()
