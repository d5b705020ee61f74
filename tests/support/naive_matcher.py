"""A deliberately naive reference exchange, used to check the real core by differential tests.

Everything here favours being obviously right over being fast:

* resting orders of every symbol live in one plain list;
* each matching step filters that list for orders that cross the taker and sorts them by
  (price priority, arrival number), then takes the first one;
* "can this FOK order fill completely?" is answered by matching it, as IOC, on a deep
  copy of the whole exchange and looking at what happened;
* balances are a dict of ``[available, locked]`` pairs per (user, asset).

It supports the subset of commands the differential tests generate: assets, symbols
(without filters), tier-0 fees, deposits, limit orders (GTC, IOC, FOK, GTD; post-only;
iceberg), market orders (by quantity and by quote amount), every self-trade prevention
mode, cancels, amends and ticks. Anything else
raises :class:`Unsupported`, so a test generator cannot silently drift outside what the
model knows.

Semantics (DESIGN.md §2, docs/core-api.md and the core's documented behaviour):

* a buy limit locks ``price * qty * k`` quote, a sell locks ``qty * lot_size`` base, with
  ``k = tick_size * lot_size // 10**base_decimals``; short available → rejected
  ``insufficient_balance`` and nothing changes;
* checks, in order: ``already_expired`` (GTD whose ``expire_ts`` is not after now),
  ``post_only_would_take`` (a post-only order that would cross the book),
  ``fok_not_fillable``, ``insufficient_balance`` (the specification leaves the order of
  the checks open; this is the core's);
* price-time priority, the trade price is the maker's price; a taker buy filled below its
  limit gets the difference back within the same command, when it stops taking, so that
  events add up: ``locked`` at acceptance = quote of its fills + what goes back. What goes
  back is reported after the taker's trades: a cancelled taker's ``unlocked`` includes
  it; a taker that rests reports the surplus over ``price * open qty * k`` as
  ``OrderReleased``, and one that filled completely but still holds funds (price
  improvement, a market order's unused band) reports all of it as ``OrderReleased``;
  no event when there is nothing to release;
* GTC and GTD rest the remainder, IOC cancels it (reason ``ioc``), FOK is rejected when
  the whole quantity would not fill right now — whatever stops it: depth, price, or
  self-trade prevention;
* a market order needs liquidity on the other side (else ``no_liquidity``) and trades
  within ``market_band_bps`` of the best opposite price at arrival: a buy up to
  ``floor(best_ask * (1 + band))``, a sell down to ``ceil(best_bid * (1 - band))``. By
  quantity it locks its worst case (a buy: that price limit times qty) and behaves as an
  IOC order at that limit, its rest cancelled with reason ``market_remainder``. By quote
  amount (buys) it locks the amount and buys whole lots, best price first, while what is
  left pays for one; what is left at the end is returned (``OrderCancelled`` with
  ``left`` 0, reason ``market_remainder``, or ``stp`` when self-trade prevention stopped
  it; never ``OrderReleased``);
* a GTD order is cancelled (reason ``expired``) by the first command whose ``ts`` reaches
  its ``expire_ts``, before that command does anything else;
* an iceberg shows ``display_qty`` lots at a time; a fill takes at most the shown slice;
  when the slice is used up and lots remain, the next slice is shown at the back of the
  price level (it loses time priority);
* self-trade prevention uses the taker's ``stp``: ``cancel_taker`` cancels the taker's
  remainder and stops, ``cancel_maker`` cancels the resting order and continues,
  ``cancel_both`` does both, ``none`` lets them trade;
* fees are taken from the asset received (buyer in base, seller in quote),
  ``ceil(amount * bps / 10000)``, credited to the fee account (user 0);
* cancelling or amending an order that is unknown, closed or someone else's is rejected
  ``unknown_order``;
* amend: ``qty`` is the new open quantity, ``price`` (when given) the new price; the hold
  follows (an increase needs available funds, else ``insufficient_balance``); a smaller
  or equal quantity at the same price keeps the queue place, anything else re-enters the
  book as a GTC taker at the back of its level (keeping its ``stp``, ``display_qty``,
  ``expire_ts`` and ``post_only``); a post-only order amended to a new price that would
  cross the book is rejected ``post_only_would_take``, checked after
  ``insufficient_balance``.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from dataclasses import dataclass, replace

from tradewind.core.commands import (
    AddAsset,
    AddSymbol,
    Amend,
    Cancel,
    Command,
    Deposit,
    Place,
    SetFees,
    Tick,
)

FEE_ACCOUNT = 0
QUOTE_TAKER_LEFT = -1
"""``taker_left`` of the fills of a market buy by quote amount, which has no open
quantity in lots: the comparison leaves that field out for such orders."""


class Unsupported(Exception):
    """The reference model does not know this command or option."""


# ---------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class NaiveTrade:
    """One fill; the same fields, in the same meaning, as the core's ``Trade`` event."""

    symbol: str
    price: int
    qty: int
    base: int
    quote: int
    maker_id: int
    taker_id: int
    maker_user: int
    taker_user: int
    taker_side: str
    maker_fee: int
    taker_fee: int
    maker_left: int
    taker_left: int


@dataclass(frozen=True, order=True)
class NaiveCancel:
    """An order that left the book (or never rested) unfilled, as ``OrderCancelled``."""

    id: int
    user: int
    symbol: str
    left: int
    unlocked: int
    reason: str


@dataclass(frozen=True)
class NaiveReleased:
    """Funds a taker held but no longer needs, as ``OrderReleased``."""

    id: int
    user: int
    symbol: str
    amount: int


@dataclass(frozen=True)
class NaiveAmended:
    """An amended order, as ``OrderAmended``."""

    id: int
    user: int
    symbol: str
    price: int
    qty: int
    locked: int
    kept_priority: bool


@dataclass(frozen=True)
class NaiveReject:
    """A command that changed nothing, as ``Rejected`` (without the free-text message)."""

    op: str
    id: int | None
    user: int | None
    reason: str


Outcome = NaiveTrade | NaiveCancel | NaiveReleased | NaiveAmended | NaiveReject


# ---------------------------------------------------------------------- state


@dataclass(frozen=True)
class SymbolSpec:
    name: str
    base: str
    quote: str
    tick_size: int
    lot_size: int
    k: int
    """Quote minor units per tick per lot: the notional of one lot at price 1."""


@dataclass
class RestingOrder:
    id: int
    user: int
    symbol: str
    side: str
    price: int
    qty: int
    """Open (remaining) quantity in lots."""
    visible: int
    """Lots shown now: ``qty`` for a plain order, the current slice for an iceberg."""
    arrival: int
    """Place in time priority; smaller is earlier."""
    stp: str
    display: int | None
    expire_ts: int | None
    post_only: bool = False


@dataclass(frozen=True)
class Taker:
    """An incoming order: a new limit, or an amended one sent in again."""

    id: int
    user: int
    symbol: str
    side: str
    price: int
    qty: int
    tif: str
    stp: str
    display: int | None = None
    expire_ts: int | None = None
    remainder_reason: str = "ioc"
    """Why an unfilled remainder that cannot rest is cancelled."""
    post_only: bool = False
    """Kept by the resting order, so that an amend to a crossing price is rejected."""


@dataclass(frozen=True, order=True)
class BookEntry:
    """One resting order as seen from outside, for comparing books."""

    symbol: str
    side: str
    price: int
    id: int
    user: int
    qty: int
    visible: int


def ceil_fee(amount: int, bps: int) -> int:
    """``ceil(amount * bps / 10000)`` in integers."""
    return -(-amount * bps // 10_000)


class NaiveExchange:
    """The reference model. ``apply`` returns the trades, cancels, releases, amendments
    and rejections of a command in the order they happened."""

    def __init__(self) -> None:
        self.decimals: dict[str, int] = {}
        self.symbols: dict[str, SymbolSpec] = {}
        self.market_band_bps: dict[str, int] = {}
        self.maker_bps = 0
        self.taker_bps = 0
        self.balances: defaultdict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
        self.resting: list[RestingOrder] = []
        self.used_ids: set[int] = set()
        self.arrivals = 0
        self.now = 0
        self.trades: list[NaiveTrade] = []

    # ----------------------------------------------------------------- commands

    def apply(self, cmd: Command) -> list[Outcome]:
        self.now = max(self.now, cmd.ts)
        out: list[Outcome] = self._expire()
        if isinstance(cmd, AddAsset):
            if cmd.asset in self.decimals:
                raise Unsupported(f"asset {cmd.asset} added twice")
            self.decimals[cmd.asset] = cmd.decimals
        elif isinstance(cmd, AddSymbol):
            self._add_symbol(cmd)
        elif isinstance(cmd, SetFees):
            if cmd.tier != 0:
                raise Unsupported("fee tiers other than 0")
            self.maker_bps, self.taker_bps = cmd.maker_bps, cmd.taker_bps
        elif isinstance(cmd, Deposit):
            if cmd.asset not in self.decimals:
                raise Unsupported(f"deposit of unknown asset {cmd.asset}")
            self.balances[cmd.user, cmd.asset][0] += cmd.amount
        elif isinstance(cmd, Place):
            out += self._place(cmd)
        elif isinstance(cmd, Cancel):
            out += self._cancel(cmd)
        elif isinstance(cmd, Amend):
            out += self._amend(cmd)
        elif not isinstance(cmd, Tick):
            raise Unsupported(type(cmd).__name__)
        return out

    def _expire(self) -> list[Outcome]:
        due = [o for o in self.resting if o.expire_ts is not None and o.expire_ts <= self.now]
        due.sort(key=lambda o: (o.expire_ts, o.id))
        out: list[Outcome] = []
        for order in due:
            self.resting.remove(order)
            out.append(self._cancel_resting(order, "expired"))
        return out

    def _add_symbol(self, cmd: AddSymbol) -> None:
        if cmd.symbol in self.symbols or cmd.base not in self.decimals:
            raise Unsupported(f"symbol {cmd.symbol}")
        if cmd.quote not in self.decimals:
            raise Unsupported(f"symbol {cmd.symbol}")
        if any(
            f is not None for f in (cmd.min_qty, cmd.max_qty, cmd.min_notional, cmd.price_band_bps)
        ):
            raise Unsupported("symbol filters")
        unit = 10 ** self.decimals[cmd.base]
        if (cmd.tick_size * cmd.lot_size) % unit:
            raise Unsupported("tick_size * lot_size not a multiple of the base unit")
        self.market_band_bps[cmd.symbol] = cmd.market_band_bps
        self.symbols[cmd.symbol] = SymbolSpec(
            cmd.symbol,
            cmd.base,
            cmd.quote,
            cmd.tick_size,
            cmd.lot_size,
            cmd.tick_size * cmd.lot_size // unit,
        )

    def _place(self, cmd: Place) -> list[Outcome]:
        if cmd.type == "market":
            return self._place_market(cmd)
        if cmd.type != "limit" or cmd.price is None or cmd.qty is None:
            raise Unsupported("only limit and market orders")
        if cmd.stop_price is not None or cmd.quote_qty is not None or cmd.client_id:
            raise Unsupported("stops, quote_qty and client ids")
        if (cmd.tif == "GTD") != (cmd.expire_ts is not None):
            raise Unsupported("expire_ts goes with GTD and only with GTD")
        if cmd.display_qty is not None and (
            cmd.display_qty >= cmd.qty or cmd.tif in ("IOC", "FOK")
        ):
            raise Unsupported("display_qty must be below qty, on GTC or GTD")
        if cmd.post_only and cmd.tif in ("IOC", "FOK"):
            raise Unsupported("post_only with IOC or FOK")
        if cmd.symbol not in self.symbols:
            raise Unsupported(f"unknown symbol {cmd.symbol}")
        if cmd.id in self.used_ids:
            raise Unsupported(f"order id {cmd.id} used twice")
        spec = self.symbols[cmd.symbol]
        taker = Taker(
            cmd.id,
            cmd.user,
            cmd.symbol,
            cmd.side,
            cmd.price,
            cmd.qty,
            cmd.tif,
            cmd.stp,
            cmd.display_qty,
            cmd.expire_ts,
            post_only=cmd.post_only,
        )

        def reject(reason: str) -> list[Outcome]:
            return [NaiveReject("place", cmd.id, cmd.user, reason)]

        if cmd.expire_ts is not None and cmd.expire_ts <= self.now:
            return reject("already_expired")
        if cmd.post_only and self._candidates(cmd.symbol, cmd.side, cmd.price):
            return reject("post_only_would_take")
        if cmd.tif == "FOK" and not self._fillable(taker):
            return reject("fok_not_fillable")
        asset, need = self._hold(spec, cmd.side, cmd.price, cmd.qty)
        if self.balances[cmd.user, asset][0] < need:
            return reject("insufficient_balance")

        self.used_ids.add(cmd.id)
        self._move(cmd.user, asset, available=-need, locked=need)
        return self._match(taker, spec)

    def _place_market(self, cmd: Place) -> list[Outcome]:
        """A market order is an IOC limit order at the edge of the protection band
        around the best opposite price (rounded into the band), locking its worst case;
        by ``quote_qty`` it buys whole lots while its budget pays for one."""
        if (cmd.qty is None) == (cmd.quote_qty is None) or cmd.price is not None:
            raise Unsupported("a market order has exactly one of qty, quote_qty; no price")
        if cmd.quote_qty is not None and cmd.side != "buy":
            raise Unsupported("quote_qty on a sell")
        if cmd.stop_price is not None or cmd.display_qty is not None or cmd.post_only:
            raise Unsupported("stop_price, display_qty, post_only on a market order")
        if cmd.tif not in ("GTC", "IOC") or cmd.expire_ts is not None or cmd.client_id:
            raise Unsupported("tif other than GTC/IOC, expire_ts or client ids")
        if cmd.symbol not in self.symbols:
            raise Unsupported(f"unknown symbol {cmd.symbol}")
        if cmd.id in self.used_ids:
            raise Unsupported(f"order id {cmd.id} used twice")
        spec = self.symbols[cmd.symbol]
        band = self.market_band_bps[cmd.symbol]
        opposite = [o.price for o in self.resting if o.symbol == cmd.symbol and o.side != cmd.side]
        if not opposite:
            return [NaiveReject("place", cmd.id, cmd.user, "no_liquidity")]
        if cmd.side == "buy":
            limit = min(opposite) * (10_000 + band) // 10_000  # floor: inside the band
        else:
            limit = -(-max(opposite) * (10_000 - band) // 10_000)  # ceil: inside the band
        if cmd.quote_qty is not None:
            asset, need = spec.quote, cmd.quote_qty
        else:
            asset, need = self._hold(spec, cmd.side, limit, cmd.qty or 0)
        if self.balances[cmd.user, asset][0] < need:
            return [NaiveReject("place", cmd.id, cmd.user, "insufficient_balance")]
        self.used_ids.add(cmd.id)
        self._move(cmd.user, asset, available=-need, locked=need)
        if cmd.quote_qty is not None:
            return self._match_quote(cmd.id, cmd.user, spec, limit, cmd.quote_qty, cmd.stp)
        taker = Taker(
            cmd.id,
            cmd.user,
            cmd.symbol,
            cmd.side,
            limit,
            cmd.qty or 0,
            "IOC",
            cmd.stp,
            remainder_reason="market_remainder",
        )
        return self._match(taker, spec)

    def _match_quote(
        self, oid: int, user: int, spec: SymbolSpec, cap: int, budget: int, stp: str
    ) -> list[Outcome]:
        """A market buy for ``budget`` quote: one whole lot at a time, best ask first."""
        out: list[Outcome] = []
        held = budget
        while True:
            candidates = self._candidates(spec.name, "buy", cap)
            if not candidates:
                break
            maker = candidates[0]
            affordable = held // (maker.price * spec.k)
            if affordable == 0:
                break  # done: the budget no longer pays for a lot at the best price
            if maker.user == user and stp != "none":
                if stp in ("cancel_maker", "cancel_both"):
                    self.resting.remove(maker)
                    out.append(self._cancel_resting(maker, "stp"))
                if stp in ("cancel_taker", "cancel_both"):
                    self._move(user, spec.quote, available=held, locked=-held)
                    out.append(NaiveCancel(oid, user, spec.name, 0, held, "stp"))
                    return out
                continue
            qty = min(affordable, maker.visible)
            taker = Taker(oid, user, spec.name, "buy", maker.price, qty, "IOC", stp)
            self._take_one(taker, spec, maker, qty, QUOTE_TAKER_LEFT)
            held -= qty * maker.price * spec.k
            out.append(self.trades[-1])
        if held:
            self._move(user, spec.quote, available=held, locked=-held)
            out.append(NaiveCancel(oid, user, spec.name, 0, held, "market_remainder"))
        return out

    def _find(self, oid: int, user: int, symbol: str) -> RestingOrder | None:
        for order in self.resting:
            if order.id == oid and order.user == user and order.symbol == symbol:
                return order
        return None

    def _cancel(self, cmd: Cancel) -> list[Outcome]:
        order = self._find(cmd.id, cmd.user, cmd.symbol)
        if order is None:
            return [NaiveReject("cancel", cmd.id, cmd.user, "unknown_order")]
        self.resting.remove(order)
        return [self._cancel_resting(order, "user")]

    def _amend(self, cmd: Amend) -> list[Outcome]:
        order = self._find(cmd.id, cmd.user, cmd.symbol)
        if order is None:
            return [NaiveReject("amend", cmd.id, cmd.user, "unknown_order")]
        spec = self.symbols[order.symbol]
        price = order.price if cmd.price is None else cmd.price
        asset, old = self._hold(spec, order.side, order.price, order.qty)
        new = self._hold(spec, order.side, price, cmd.qty)[1]
        if new - old > self.balances[order.user, asset][0]:
            return [NaiveReject("amend", cmd.id, cmd.user, "insufficient_balance")]
        if (
            order.post_only
            and price != order.price
            and self._candidates(order.symbol, order.side, price)
        ):
            return [NaiveReject("amend", cmd.id, cmd.user, "post_only_would_take")]
        self._move(order.user, asset, available=old - new, locked=new - old)
        keep = price == order.price and cmd.qty <= order.qty
        amended = NaiveAmended(order.id, order.user, order.symbol, price, cmd.qty, new, keep)
        if keep:
            order.qty = cmd.qty
            order.visible = min(order.visible, cmd.qty)
            return [amended]
        self.resting.remove(order)
        taker = Taker(
            order.id,
            order.user,
            order.symbol,
            order.side,
            price,
            cmd.qty,
            "GTC",
            order.stp,
            order.display,
            order.expire_ts,
            post_only=order.post_only,
        )
        return [amended, *self._match(taker, spec)]

    # ----------------------------------------------------------------- matching

    def _candidates(self, symbol: str, side: str, price: int) -> list[RestingOrder]:
        """Resting orders a taker on ``side`` with limit ``price`` may trade with, best first."""
        if side == "buy":
            asks = [o for o in self.resting if o.symbol == symbol and o.side == "sell"]
            return sorted((o for o in asks if o.price <= price), key=lambda o: (o.price, o.arrival))
        bids = [o for o in self.resting if o.symbol == symbol and o.side == "buy"]
        return sorted((o for o in bids if o.price >= price), key=lambda o: (-o.price, o.arrival))

    def _fillable(self, taker: Taker) -> bool:
        """Would the whole quantity fill right now? Try it, as IOC, on a copy."""
        trial = copy.copy(self)  # then fresh copies of everything matching may change
        trial.balances = copy.deepcopy(self.balances)
        trial.resting = copy.deepcopy(self.resting)
        trial.trades = []
        asset, need = self._hold(trial.symbols[taker.symbol], taker.side, taker.price, taker.qty)
        trial.balances[taker.user, asset][1] += need  # funds are checked separately
        out = trial._match(replace(taker, tif="IOC"), trial.symbols[taker.symbol])
        return not any(isinstance(o, NaiveCancel) and o.id == taker.id for o in out)

    def _match(self, taker: Taker, spec: SymbolSpec) -> list[Outcome]:
        """Match a taker whose funds are locked, then rest or cancel what is left."""
        out: list[Outcome] = []
        left = taker.qty
        # What the taker still holds. A buy pays the (maker's) trade price out of a hold
        # made at its own limit, so the surplus of a better price stays here until the
        # taker stops taking; then it goes back, after the trades: as NaiveReleased when
        # the taker filled completely or rests, else in the cancel's ``unlocked``.
        held_asset, held = self._hold(spec, taker.side, taker.price, left)
        while left > 0:
            candidates = self._candidates(taker.symbol, taker.side, taker.price)
            if not candidates:
                break
            maker = candidates[0]
            if maker.user == taker.user and taker.stp != "none":
                if taker.stp in ("cancel_maker", "cancel_both"):
                    self.resting.remove(maker)
                    out.append(self._cancel_resting(maker, "stp"))
                if taker.stp in ("cancel_taker", "cancel_both"):
                    out.append(self._cancel_taker(taker, spec, left, held, "stp"))
                    return out
                continue
            qty = min(left, maker.visible)
            left -= qty
            trade = self._take_one(taker, spec, maker, qty, left)
            held -= trade.quote if taker.side == "buy" else trade.base
            out.append(trade)

        if left == 0:
            if held:
                self._move(taker.user, held_asset, available=held, locked=-held)
                out.append(NaiveReleased(taker.id, taker.user, taker.symbol, held))
        elif taker.tif in ("GTC", "GTD"):
            surplus = held - self._hold(spec, taker.side, taker.price, left)[1]
            if surplus:
                self._move(taker.user, held_asset, available=surplus, locked=-surplus)
                out.append(NaiveReleased(taker.id, taker.user, taker.symbol, surplus))
            visible = left if taker.display is None else min(taker.display, left)
            self.resting.append(
                RestingOrder(
                    taker.id,
                    taker.user,
                    taker.symbol,
                    taker.side,
                    taker.price,
                    left,
                    visible,
                    self._next_arrival(),
                    taker.stp,
                    taker.display,
                    taker.expire_ts,
                    taker.post_only,
                )
            )
        else:
            out.append(self._cancel_taker(taker, spec, left, held, taker.remainder_reason))
        return out

    def _take_one(
        self, taker: Taker, spec: SymbolSpec, maker: RestingOrder, qty: int, taker_left: int
    ) -> NaiveTrade:
        """Fill ``qty`` (at most the shown quantity) of ``maker``."""
        maker.qty -= qty
        maker.visible -= qty
        if maker.qty == 0:
            self.resting.remove(maker)
        elif maker.visible == 0:
            # The next slice of an iceberg shows at the back of its level.
            assert maker.display is not None
            maker.visible = min(maker.display, maker.qty)
            maker.arrival = self._next_arrival()
        return self._fill(taker, spec, maker, qty, taker_left)

    def _next_arrival(self) -> int:
        self.arrivals += 1
        return self.arrivals

    def _fill(
        self, taker: Taker, spec: SymbolSpec, maker: RestingOrder, qty: int, taker_left: int
    ) -> NaiveTrade:
        price = maker.price
        base = qty * spec.lot_size
        quote = price * qty * spec.k
        if taker.side == "buy":
            buyer, seller = taker.user, maker.user
            taker_fee = ceil_fee(base, self.taker_bps)
            maker_fee = ceil_fee(quote, self.maker_bps)
            buyer_fee, seller_fee = taker_fee, maker_fee
        else:
            buyer, seller = maker.user, taker.user
            taker_fee = ceil_fee(quote, self.taker_bps)
            maker_fee = ceil_fee(base, self.maker_bps)
            buyer_fee, seller_fee = maker_fee, taker_fee
        # Buyer: pays the trade price from its locked quote (a taker's surplus over its
        # limit is released by ``_match``); receives base minus its fee.
        self._move(buyer, spec.quote, locked=-quote)
        self._move(buyer, spec.base, available=base - buyer_fee)
        # Seller: its locked base goes; it receives quote minus its fee.
        self._move(seller, spec.base, locked=-base)
        self._move(seller, spec.quote, available=quote - seller_fee)
        self._move(FEE_ACCOUNT, spec.base, available=buyer_fee)
        self._move(FEE_ACCOUNT, spec.quote, available=seller_fee)
        trade = NaiveTrade(
            symbol=taker.symbol,
            price=price,
            qty=qty,
            base=base,
            quote=quote,
            maker_id=maker.id,
            taker_id=taker.id,
            maker_user=maker.user,
            taker_user=taker.user,
            taker_side=taker.side,
            maker_fee=maker_fee,
            taker_fee=taker_fee,
            maker_left=maker.qty,
            taker_left=taker_left,
        )
        self.trades.append(trade)
        return trade

    # ----------------------------------------------------------------- funds

    @staticmethod
    def _hold(spec: SymbolSpec, side: str, price: int, qty: int) -> tuple[str, int]:
        """The asset and amount an order of ``qty`` lots at ``price`` holds."""
        if side == "buy":
            return spec.quote, price * qty * spec.k
        return spec.base, qty * spec.lot_size

    def _cancel_resting(self, order: RestingOrder, reason: str) -> NaiveCancel:
        spec = self.symbols[order.symbol]
        asset, amount = self._hold(spec, order.side, order.price, order.qty)
        self._move(order.user, asset, available=amount, locked=-amount)
        return NaiveCancel(order.id, order.user, order.symbol, order.qty, amount, reason)

    def _cancel_taker(
        self, taker: Taker, spec: SymbolSpec, left: int, held: int, reason: str
    ) -> NaiveCancel:
        asset = spec.quote if taker.side == "buy" else spec.base
        self._move(taker.user, asset, available=held, locked=-held)
        return NaiveCancel(taker.id, taker.user, taker.symbol, left, held, reason)

    def _move(self, user: int, asset: str, *, available: int = 0, locked: int = 0) -> None:
        entry = self.balances[user, asset]
        entry[0] += available
        entry[1] += locked
        assert entry[0] >= 0 and entry[1] >= 0, f"model bug: negative balance {user} {asset}"

    # ----------------------------------------------------------------- views

    def balance_view(self) -> dict[tuple[int, str], tuple[int, int]]:
        """Non-zero balances as ``{(user, asset): (available, locked)}``."""
        return {key: (a, lk) for key, (a, lk) in self.balances.items() if a or lk}

    def book_view(self) -> list[BookEntry]:
        """Resting orders per symbol and side, in matching priority."""
        out: list[BookEntry] = []
        for symbol in sorted(self.symbols):
            for side, sign in (("buy", -1), ("sell", 1)):
                orders = [o for o in self.resting if o.symbol == symbol and o.side == side]
                orders.sort(key=lambda o: (sign * o.price, o.arrival))
                out.extend(
                    BookEntry(symbol, side, o.price, o.id, o.user, o.qty, o.visible) for o in orders
                )
        return out
