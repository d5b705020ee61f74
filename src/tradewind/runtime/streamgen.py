"""Deterministic generators of realistic command streams, for benchmarks and tests.

``generate_stream`` builds a setup (assets, symbols, fees, deposits funding every
account in every asset) followed by ``n_commands`` trading commands with the mix of a
liquid market seen from the core:

- about 60 % limit GTC places, of which about 20 % cross the spread on arrival;
- about 30 % cancels of orders that are open (a small share aims at orders that have
  just left the book and so are rejected, as happens on a real exchange);
- about 10 % takers: half IOC limits through the touch, half market orders.

A per-symbol "fair price" does a mean-reverting random walk; passive orders rest at
random offsets from it (dense near the touch, up to a few hundred ticks away), and the
takers' side leans towards the fair price, so the book follows it and keeps tens to
hundreds of levels per side. The generator keeps a small shadow book (price-time
priority, cancel-taker self-trade prevention) to know the touch and which orders are
still open; it ignores funds because every account is funded far beyond what it trades.

``generate_resting`` builds a setup plus ``n_orders`` passive places that never cross,
for the memory-per-resting-order measurement.

Everything comes from ``random.Random(seed)`` and integer arithmetic: the same
arguments always give the same commands, byte for byte. Commands are stamped with
``seq`` (their 1-based ordinal) and ``ts`` (milliseconds), so the JSON lines written by
``to_lines`` parse back into equal structs.
"""

from __future__ import annotations

import random
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

import msgspec

from tradewind.core.commands import (
    AddAsset,
    AddSymbol,
    AnyCommand,
    Cancel,
    Command,
    Deposit,
    Place,
    SetFees,
    Side,
)

__all__ = [
    "SETUP_OPS",
    "SYMBOLS",
    "MarketSpec",
    "StreamStats",
    "generate_resting",
    "generate_stream",
    "setup_commands",
    "setup_prefix_len",
    "to_lines",
    "write_command_file",
]

QUOTE = "USDT"
QUOTE_DECIMALS = 6
MAKER_BPS = 10
TAKER_BPS = 20
TS0 = 1_700_000_000_000
"""Milliseconds of the first command; ``ts`` advances by one every 20 commands."""

SETUP_OPS = frozenset({"asset", "symbol", "fees", "tier", "deposit", "transfer"})
"""Ops that set up a market rather than trade on it."""

_QUOTE_UNIT = 10**QUOTE_DECIMALS


@dataclass(frozen=True, slots=True)
class MarketSpec:
    """One generated symbol, quoted in USDT. ``mid`` is in ticks."""

    base: str
    base_decimals: int
    tick_size: int
    lot_size: int
    mid: int
    weight: int

    @property
    def symbol(self) -> str:
        return f"{self.base}-{QUOTE}"

    @property
    def lot_notional(self) -> int:
        """Quote minor units of one lot at one tick."""
        scale: int = 10**self.base_decimals
        return self.tick_size * self.lot_size // scale

    @property
    def unit_lots(self) -> int:
        """Lots worth about 100 USDT at the mid price: the size unit of orders."""
        lots: int = 100 * _QUOTE_UNIT // (self.mid * self.lot_notional)
        return max(1, lots)


# tick_size is in USDT minor units per whole base unit, lot_size in base minor units;
# tick_size * lot_size is a multiple of 10**base_decimals for every row.
SYMBOLS: tuple[MarketSpec, ...] = (
    MarketSpec("BTC", 8, 10_000, 10_000, 6_000_000, 30),  # 0.01 USDT, 0.0001 BTC, 60000
    MarketSpec("ETH", 8, 10_000, 100_000, 300_000, 20),  # 0.01 USDT, 0.001 ETH, 3000
    MarketSpec("SOL", 8, 1_000, 1_000_000, 150_000, 12),  # 0.001 USDT, 0.01 SOL, 150
    MarketSpec("BNB", 8, 10_000, 100_000, 55_000, 9),  # 0.01 USDT, 0.001 BNB, 550
    MarketSpec("XRP", 6, 10, 1_000_000, 50_000, 7),  # 0.00001 USDT, 1 XRP, 0.5
    MarketSpec("LTC", 8, 1_000, 1_000_000, 80_000, 6),  # 0.001 USDT, 0.01 LTC, 80
    MarketSpec("AVAX", 8, 100, 1_000_000, 300_000, 5),  # 0.0001 USDT, 0.01 AVAX, 30
    MarketSpec("LINK", 8, 100, 1_000_000, 150_000, 4),  # 0.0001 USDT, 0.01 LINK, 15
    MarketSpec("DOT", 8, 100, 1_000_000, 70_000, 4),  # 0.0001 USDT, 0.01 DOT, 7
    MarketSpec("ADA", 6, 10, 1_000_000, 40_000, 3),  # 0.00001 USDT, 1 ADA, 0.4
)

_PASSIVE_DEPTHS = (3, 3, 10, 10, 30, 30, 100, 300)
"""A passive order rests ``randrange(choice(_PASSIVE_DEPTHS))`` ticks behind the touch."""
_SIZE_MULTS = (1, 1, 1, 1, 2, 2, 3, 5, 10, 20)
_TARGET_OPEN = 2000
"""Open orders per symbol the stream steers towards: takers grow with the book's size
relative to it (a quarter to four times their base size), so the book neither drains
nor piles up."""
_REVERT_SPAN = 400
"""Ticks from the initial mid at which the fair price's walk leans fully back."""
_RECENT_GONE = 256
"""How many recently filled or cancelled ids a stale cancel may pick from."""
_STALE_CANCEL_PERMILLE = 10
"""Share of cancels (per mille) aimed at an order that has already left the book."""


@dataclass(slots=True)
class StreamStats:
    """What the generator produced, as counted by its shadow book."""

    setup: int = 0
    places: int = 0
    """Limit GTC places, crossing or not."""
    crossing_places: int = 0
    """Limit GTC places that crossed the spread when they arrived (per the shadow)."""
    cancels: int = 0
    stale_cancels: int = 0
    """Cancels of an order no longer open (expected to be rejected)."""
    ioc: int = 0
    markets: int = 0
    shadow_trades: int = 0
    """Fills in the shadow book (the core's trade count, give or take funds checks)."""
    open_orders: int = 0
    """Orders resting in the shadow book at the end."""
    levels: dict[str, tuple[int, int]] = field(default_factory=dict)
    """Per symbol, (bid levels, ask levels) at the end."""

    @property
    def trading(self) -> int:
        return self.places + self.cancels + self.ioc + self.markets


class _Shadow:
    """A minimal book of one symbol: enough to know the touch and the open orders."""

    __slots__ = (
        "ask_prices",
        "asks",
        "bid_prices",
        "bids",
        "fair",
        "fills",
        "gone",
        "ids",
        "mid0",
        "orders",
        "pos",
        "spec",
    )

    def __init__(self, spec: MarketSpec) -> None:
        self.spec = spec
        self.mid0 = spec.mid
        self.fair = spec.mid
        self.fills = 0
        # (id, user) of orders that recently left the book, for stale cancels.
        self.gone: deque[tuple[int, int]] = deque(maxlen=_RECENT_GONE)
        self.bids: dict[int, dict[int, None]] = {}
        self.asks: dict[int, dict[int, None]] = {}
        self.bid_prices: list[int] = []  # ascending, best = last
        self.ask_prices: list[int] = []  # ascending, best = first
        self.orders: dict[int, list[int]] = {}  # id -> [user, price, qty, buy]
        self.ids: list[int] = []  # open ids, for O(1) random choice
        self.pos: dict[int, int] = {}

    def best_bid(self) -> int | None:
        return self.bid_prices[-1] if self.bid_prices else None

    def best_ask(self) -> int | None:
        return self.ask_prices[0] if self.ask_prices else None

    def rest(self, oid: int, user: int, buy: bool, price: int, qty: int) -> None:
        levels, prices = (self.bids, self.bid_prices) if buy else (self.asks, self.ask_prices)
        level = levels.get(price)
        if level is None:
            level = levels[price] = {}
            insort(prices, price)
        level[oid] = None
        self.orders[oid] = [user, price, qty, int(buy)]
        self.pos[oid] = len(self.ids)
        self.ids.append(oid)

    def remove(self, oid: int) -> None:
        _user, price, _qty, buy = self.orders.pop(oid)
        levels, prices = (self.bids, self.bid_prices) if buy else (self.asks, self.ask_prices)
        level = levels[price]
        del level[oid]
        if not level:
            del levels[price]
            del prices[bisect_left(prices, price)]
        i = self.pos.pop(oid)
        last = self.ids.pop()
        if last != oid:
            self.ids[i] = last
            self.pos[last] = i

    def match(self, user: int, buy: bool, limit: int | None, qty: int) -> int:
        """Take liquidity as the core does and return the taker's quantity left (0 after
        a cancel-taker self-trade prevention stop). Makers filled in full leave the book
        and go to ``gone``."""
        prices = self.ask_prices if buy else self.bid_prices
        levels = self.asks if buy else self.bids
        while qty and prices:
            best = prices[0] if buy else prices[-1]
            if limit is not None and (best > limit if buy else best < limit):
                break
            level = levels[best]
            maker_id = next(iter(level))
            maker = self.orders[maker_id]
            if maker[0] == user:  # self-trade prevention: cancel the taker
                return 0
            fill = min(qty, maker[2])
            qty -= fill
            maker[2] -= fill
            self.fills += 1
            if maker[2] == 0:
                self.remove(maker_id)
                self.gone.append((maker_id, maker[0]))
        return qty


def _stamp(commands: list[AnyCommand]) -> list[AnyCommand]:
    """Give every command its ordinal as ``seq`` and a deterministic ``ts``."""
    return [msgspec.structs.replace(c, seq=i, ts=TS0 + i // 20) for i, c in enumerate(commands, 1)]


def _specs(n_symbols: int) -> tuple[MarketSpec, ...]:
    if not 1 <= n_symbols <= len(SYMBOLS):
        raise ValueError(f"n_symbols must be between 1 and {len(SYMBOLS)}, not {n_symbols}")
    return SYMBOLS[:n_symbols]


def setup_commands(n_symbols: int = 1, n_accounts: int = 1000) -> list[AnyCommand]:
    """Assets, symbols, fees (maker 10 bps, taker 20 bps) and deposits: users
    ``1..n_accounts`` each get 10**9 USDT and about 10**8 USDT worth of every base
    asset. Not stamped."""
    specs = _specs(n_symbols)
    if n_accounts < 1:
        raise ValueError("n_accounts must be at least 1")
    cmds: list[AnyCommand] = [AddAsset(asset=QUOTE, decimals=QUOTE_DECIMALS)]
    for s in specs:
        cmds.append(AddAsset(asset=s.base, decimals=s.base_decimals))
    for s in specs:
        assert (s.tick_size * s.lot_size) % 10**s.base_decimals == 0, s
        cmds.append(
            AddSymbol(
                symbol=s.symbol,
                base=s.base,
                quote=QUOTE,
                tick_size=s.tick_size,
                lot_size=s.lot_size,
            )
        )
    cmds.append(SetFees(maker_bps=MAKER_BPS, taker_bps=TAKER_BPS))
    quote_amount = 10**9 * _QUOTE_UNIT
    # Base worth 10**8 USDT at the mid: 10**8 * 10**6 quote units / (mid * tick) per base
    # unit, times 10**base_decimals minor units per base unit.
    base_amounts = [
        10**8 * _QUOTE_UNIT * 10**s.base_decimals // (s.mid * s.tick_size) for s in specs
    ]
    for user in range(1, n_accounts + 1):
        cmds.append(Deposit(user=user, asset=QUOTE, amount=quote_amount))
        for s, amount in zip(specs, base_amounts, strict=True):
            cmds.append(Deposit(user=user, asset=s.base, amount=amount))
    return cmds


def setup_prefix_len(commands: Sequence[Command]) -> int:
    """Length of the leading run of setup commands (assets, symbols, fees, deposits...)."""
    for i, c in enumerate(commands):
        if c.__struct_config__.tag not in SETUP_OPS:
            return i
    return len(commands)


def _size(rng: random.Random, spec: MarketSpec) -> int:
    return spec.unit_lots * rng.randint(1, 10) * rng.choice(_SIZE_MULTS)


def generate_stream(
    n_commands: int,
    *,
    n_symbols: int = 1,
    n_accounts: int = 1000,
    seed: int = 1,
    stats: StreamStats | None = None,
) -> list[AnyCommand]:
    """Setup plus ``n_commands`` trading commands, stamped with ``seq`` and ``ts``.

    Pass a ``StreamStats`` to learn what was generated (mix, crossing share, stale
    cancels, shadow trades and the shadow book's size at the end).
    """
    if n_commands < 0:
        raise ValueError("n_commands must not be negative")
    specs = _specs(n_symbols)
    rng = random.Random(seed)
    st = stats if stats is not None else StreamStats()
    cmds = setup_commands(n_symbols, n_accounts)
    st.setup = len(cmds)
    shadows = [_Shadow(s) for s in specs]
    cum_weights = list(accumulate(s.weight for s in specs))
    next_id = 1
    randrange = rng.randrange

    for _ in range(n_commands):
        sh = (
            shadows[0]
            if n_symbols == 1
            else shadows[bisect_right(cum_weights, randrange(cum_weights[-1]))]
        )
        spec = sh.spec
        sym = spec.symbol
        # The fair price walks one tick at a time and leans back towards the start.
        lean = max(-25, min(25, (sh.fair - sh.mid0) * 25 // _REVERT_SPAN))
        step = randrange(100)
        if step < 25 - lean:
            sh.fair += 1
        elif step >= 75 - lean:
            sh.fair -= 1
        fair = sh.fair
        bid, ask = sh.best_bid(), sh.best_ask()
        roll = randrange(100)

        if 60 <= roll < 90 and sh.ids:  # cancel
            gone = sh.gone
            if gone and randrange(1000) < _STALE_CANCEL_PERMILLE:
                oid, user = gone[randrange(len(gone))]
                st.stale_cancels += 1
            else:
                # The farther of two random open orders: stale far orders get cleaned up.
                a = sh.ids[randrange(len(sh.ids))]
                b = sh.ids[randrange(len(sh.ids))]
                oa, ob = sh.orders[a], sh.orders[b]
                oid, o = (a, oa) if abs(oa[1] - fair) >= abs(ob[1] - fair) else (b, ob)
                user = o[0]
                sh.remove(oid)
                sh.gone.append((oid, user))
            cmds.append(Cancel(id=oid, user=user, symbol=sym))
            st.cancels += 1
            continue

        oid = next_id
        next_id += 1
        user = randrange(1, n_accounts + 1)
        qty = _size(rng, spec)
        open_now = max(_TARGET_OPEN // 4, min(4 * _TARGET_OPEN, len(sh.orders)))
        taker_qty = max(1, qty * open_now // _TARGET_OPEN)
        # Takers lean towards the fair price so the book follows it.
        book_mid = (bid + ask) // 2 if bid is not None and ask is not None else fair
        lean_buy = max(-30, min(30, (fair - book_mid) * 3))
        taker_buy = randrange(100) < 50 + lean_buy

        if roll >= 90:  # taker: IOC limit through the touch or market
            buy = taker_buy
            touch = ask if buy else bid
            if randrange(2):
                limit = fair if touch is None else touch + (randrange(5) if buy else -randrange(5))
                limit = max(1, limit)
                cmds.append(
                    Place(
                        id=oid,
                        user=user,
                        symbol=sym,
                        side=_side(buy),
                        price=limit,
                        qty=taker_qty,
                        tif="IOC",
                    )
                )
                st.ioc += 1
                sh.match(user, buy, limit, taker_qty)
            else:
                cmds.append(
                    Place(
                        id=oid, user=user, symbol=sym, side=_side(buy), type="market", qty=taker_qty
                    )
                )
                st.markets += 1
                sh.match(user, buy, None, taker_qty)
            continue

        # Limit GTC place (also the fallback of a cancel when nothing is open).
        st.places += 1
        crossing = randrange(100) < 20
        if crossing:
            buy = taker_buy
            touch = ask if buy else bid
            if touch is not None:
                price = touch + randrange(3) if buy else max(1, touch - randrange(3))
                st.crossing_places += 1
                cmds.append(
                    Place(
                        id=oid, user=user, symbol=sym, side=_side(buy), price=price, qty=taker_qty
                    )
                )
                left = sh.match(user, buy, price, taker_qty)
                if left:
                    sh.rest(oid, user, buy, price, left)
                else:
                    sh.gone.append((oid, user))
                continue
        buy = randrange(2) == 0
        offset = randrange(rng.choice(_PASSIVE_DEPTHS))
        if buy:
            top = fair if ask is None else min(fair, ask - 1)
            price = max(1, top - offset)
        else:
            top = fair if bid is None else max(fair, bid + 1)
            price = top + offset
        cmds.append(Place(id=oid, user=user, symbol=sym, side=_side(buy), price=price, qty=qty))
        sh.rest(oid, user, buy, price, qty)

    st.shadow_trades = sum(sh.fills for sh in shadows)
    st.open_orders = sum(len(sh.orders) for sh in shadows)
    st.levels = {sh.spec.symbol: (len(sh.bid_prices), len(sh.ask_prices)) for sh in shadows}
    return _stamp(cmds)


def generate_resting(
    n_orders: int,
    *,
    n_symbols: int = 1,
    n_accounts: int = 1000,
    seed: int = 1,
) -> list[AnyCommand]:
    """Setup plus ``n_orders`` limit places that never cross: bids below each symbol's
    mid, asks above, up to 300 ticks away. Stamped with ``seq`` and ``ts``."""
    if n_orders < 0:
        raise ValueError("n_orders must not be negative")
    specs = _specs(n_symbols)
    rng = random.Random(seed)
    cmds = setup_commands(n_symbols, n_accounts)
    randrange = rng.randrange
    for oid in range(1, n_orders + 1):
        spec = specs[0] if n_symbols == 1 else specs[randrange(n_symbols)]
        buy = randrange(2) == 0
        offset = 1 + randrange(rng.choice(_PASSIVE_DEPTHS))
        price = spec.mid - offset if buy else spec.mid + offset
        cmds.append(
            Place(
                id=oid,
                user=randrange(1, n_accounts + 1),
                symbol=spec.symbol,
                side=_side(buy),
                price=price,
                qty=_size(rng, spec),
            )
        )
    return _stamp(cmds)


def _side(buy: bool) -> Side:
    return "buy" if buy else "sell"


_encoder = msgspec.json.Encoder()


def to_lines(commands: Iterable[AnyCommand]) -> list[str]:
    """The command-file JSON lines of ``commands`` (without line ends)."""
    encode = _encoder.encode
    return [encode(c).decode() for c in commands]


def write_command_file(path: Path, commands: Iterable[AnyCommand]) -> int:
    """Write ``commands`` as a command file; return the number of lines."""
    n = 0
    encode = _encoder.encode
    with path.open("wb") as f:
        for c in commands:
            f.write(encode(c))
            f.write(b"\n")
            n += 1
    return n
