"""The trading core: risk checks, matching and settlement behind one ``apply``.

Invariants (checked by ``tradewind.core.invariants`` and the property tests):
- per asset, the sum of every account's ``available + locked`` (fee account 0
  included) equals deposits minus settled withdrawals and expenses: fills only move money;
- no balance is ever negative, and each account's ``locked`` equals the holds of its
  open orders, untriggered stops and pending withdrawals;
- no book is crossed after a command;
- a rejected command changes nothing: every check runs before the first mutation;
- the same commands give the same state and the same events: no clock, no randomness,
  and every iteration whose order reaches an event is over ordered data.

Funds: a buy locks ``price * qty * notional`` quote, a sell locks ``qty * lot_size``
base. Fees are taken from the asset received, so the lock never needs a fee margin. A
taker filled at a better price than its limit gets the surplus unlocked when it stops
taking, so a resting buy always holds exactly ``price * qty * notional``.
"""

from __future__ import annotations

import hashlib
from bisect import bisect_left, insort
from collections import deque
from collections.abc import Callable, Mapping
from heapq import heappop, heappush
from typing import Any, Final

import msgspec

from tradewind.core import commands as C
from tradewind.core import margin_ops as M
from tradewind.core.book import Balance, Book, Level, Order
from tradewind.core.errors import Reject as _Reject
from tradewind.core.events import (
    AccountFrozen,
    AccountUnfrozen,
    AssetAdded,
    Deposited,
    Event,
    ExpensePaid,
    FeesSet,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderReleased,
    OrderTriggered,
    Rejected,
    SymbolAdded,
    SymbolHalted,
    SymbolResumed,
    TierSet,
    Trade,
    Transferred,
    WithdrawalHeld,
    WithdrawalReleased,
    WithdrawalSettled,
)
from tradewind.core.margin import NEVER, MarginState
from tradewind.core.symbols import BPS, Market, Stop

FEE_ACCOUNT: Final = 0
SNAPSHOT_VERSION: Final = 2  # 2: orders keep post_only
# Final: the compiled build keeps these in C statics rather than looking them up.
_PLACE: Final = C.Place
_CANCEL: Final = C.Cancel


_NO_FUNDS: Final = Balance()
"""Stands in for a balance that does not exist yet (never written: a check fails first)."""


def _ceil_bps(amount: int, bps: int) -> int:
    return -(-amount * bps // BPS) if bps else 0


_encoder = msgspec.msgpack.Encoder()


class Core:
    """The single writer of all balances and books. ``apply`` is its only mutator."""

    def __init__(self) -> None:
        self.seq = 0
        self.ts = 0
        self.assets: dict[str, int] = {}
        self.markets: dict[str, Market] = {}
        self.accounts: dict[int, dict[str, Balance]] = {}
        self.fee_tiers: dict[int, tuple[int, int]] = {0: (0, 0)}
        self.user_tiers: dict[int, int] = {}
        self.deposited: dict[str, int] = {}
        self.withdrawn: dict[str, int] = {}
        self.withdrawals: dict[int, tuple[int, str, int]] = {}
        self.deposit_refs: set[str] = set()
        # ``Expense``: what the exchange itself paid out (network fees) and the refs
        # applied; both empty on a core that never used it (state and hash unchanged).
        self.expensed: dict[str, int] = {}
        self.expense_refs: set[str] = set()
        # Frozen users (``Freeze``): empty on nearly every core, so a place pays one
        # test of ``any_frozen`` (a bool: cheaper than a set's truth test) and no more.
        self.frozen: set[int] = set()
        self.any_frozen = False
        self.orders: dict[int, Order] = {}
        self.stops: dict[int, Stop] = {}
        self.user_orders: dict[int, dict[int, Order | Stop]] = {}
        self.client_ids: dict[tuple[int, str], int] = {}
        self.expiries: list[tuple[int, int]] = []
        # Margin (docs/margin.md): all of it in ``margin``; ``next_hour`` is the ts of the
        # next interest charge (never while margin is off: one comparison per command).
        self.margin = MarginState()
        self.margin_on = False  # the same as ``margin.on``, as a native attribute
        self.next_hour: int = NEVER
        # False only while recovery replays the journal with margin off: the hot paths
        # (place, cancel, fills) then skip building the events nobody will read. Margin
        # reads a command's own events (``M.settle``), so enabling margin turns it back on.
        self.events_on = True
        self._handlers: dict[type, Callable[[Any, list[Event]], None]] = {
            C.Place: self._place,
            C.Cancel: self._cancel,
            C.Amend: self._amend,
            C.CancelAll: self._cancel_all,
            C.Freeze: self._freeze,
            C.Unfreeze: self._unfreeze,
            C.Deposit: self._deposit,
            C.Expense: self._expense,
            C.WithdrawHold: self._withdraw_hold,
            C.WithdrawRelease: self._withdraw_release,
            C.WithdrawSettle: self._withdraw_settle,
            C.Transfer: self._transfer,
            C.AddAsset: self._add_asset,
            C.AddSymbol: self._add_symbol,
            C.SetFees: self._set_fees,
            C.SetTier: self._set_tier,
            C.Halt: self._halt,
            C.Resume: self._resume,
            C.Tick: self._tick,
            C.MarginAsset: self._margin_asset,
            C.MarginSymbol: self._margin_symbol,
            C.MarginCross: self._margin_cross,
            C.MarginTier: self._margin_tier,
            C.MarginTierClear: self._margin_tier_clear,
            C.PoolFund: self._pool_fund,
            C.PoolDefund: self._pool_defund,
            C.InsuranceFund: self._insurance_fund,
            C.InsuranceDefund: self._insurance_defund,
            C.MarginTransfer: self._margin_transfer,
            C.Borrow: self._borrow,
            C.Repay: self._repay,
            C.Mark: self._mark,
        }

    def dispatch_as(self, aliases: Mapping[type, type]) -> None:
        """Handles each ``aliases[cls]`` (a subclass of command type ``cls``) as ``cls``:
        journal replay's trusted twins (``codec.trusted``), which reach their handlers
        through the table rather than ``apply``'s two fast tests."""
        for cls, alias in aliases.items():
            self._handlers[alias] = self._handlers[cls]

    # ------------------------------------------------------------------ entry point

    def apply(self, cmd: C.Command) -> list[Event]:
        """Apply one stamped command; never raises on bad input."""
        self.seq = cmd.seq
        ts = cmd.ts
        if ts > self.ts:
            self.ts = ts
        else:
            ts = self.ts
        ev: list[Event] = []
        if self.expiries and self.expiries[0][0] <= ts:
            self._expire(ev)
        if ts >= self.next_hour:
            M.accrue(self, ev)
        try:
            # The two commands of nearly every stream call their handler directly: in the
            # compiled build that is a native call rather than a lookup and a generic call.
            if type(cmd) is _PLACE:
                self._place(cmd, ev)
            elif type(cmd) is _CANCEL:
                self._cancel(cmd, ev)
            else:
                self._handlers[type(cmd)](cmd, ev)
        except _Reject as r:
            if self.events_on:
                ev.append(
                    Rejected(
                        cmd.__struct_config__.tag,  # type: ignore[arg-type]
                        getattr(cmd, "id", None),
                        getattr(cmd, "user", None),
                        r.reason,
                        r.message,
                        r.filter,
                    )
                )
        if self.margin_on:
            M.settle(self, ev)
        return ev

    # ------------------------------------------------------------------ helpers

    def _bal(self, user: int, asset: str) -> Balance:
        acct = self.accounts.get(user)
        if acct is None:
            acct = self.accounts[user] = {}
        b = acct.get(asset)
        if b is None:
            b = acct[asset] = Balance()
        return b

    def available(self, user: int, asset: str) -> int:
        acct = self.accounts.get(user)
        if acct is None:
            return 0
        b = acct.get(asset)
        return 0 if b is None else b.available

    def _market(self, name: str) -> Market:
        m = self.markets.get(name)
        if m is None:
            raise _Reject("unknown_symbol", f"unknown symbol {name}")
        return m

    def _asset(self, name: str) -> None:
        if name not in self.assets:
            raise _Reject("unknown_asset", f"unknown asset {name}")

    def _fees(self, user: int) -> tuple[int, int]:
        if self.user_tiers:
            return self.fee_tiers.get(self.user_tiers.get(user, 0), self.fee_tiers[0])
        return self.fee_tiers[0]

    def _track(self, o: Order | Stop) -> None:
        uo = self.user_orders.get(o.user)
        if uo is None:
            uo = self.user_orders[o.user] = {}
        uo[o.id] = o
        if o.client_id is not None:
            self.client_ids[(o.user, o.client_id)] = o.id

    def _untrack(self, o: Order | Stop) -> None:
        # A user's (possibly empty) index stays: most users come back, and rebuilding it
        # on every first order cost more than the few bytes it keeps.
        del self.user_orders[o.user][o.id]
        if o.client_id is not None:
            del self.client_ids[(o.user, o.client_id)]

    def _unlock(self, user: int, asset: str, amount: int) -> None:
        if amount:
            b = self.accounts[user][asset]
            b.locked -= amount
            b.available += amount

    # ------------------------------------------------------------------ configuration

    def _add_asset(self, c: C.AddAsset, ev: list[Event]) -> None:
        if c.asset in self.assets:
            raise _Reject("asset_exists", f"asset {c.asset} exists")
        self.assets[c.asset] = c.decimals
        ev.append(AssetAdded(c.asset, c.decimals))

    def _add_symbol(self, c: C.AddSymbol, ev: list[Event]) -> None:
        if c.symbol in self.markets:
            raise _Reject("symbol_exists", f"symbol {c.symbol} exists")
        self._asset(c.base)
        self._asset(c.quote)
        if c.base == c.quote or c.symbol != f"{c.base}-{c.quote}":
            raise _Reject("invalid_symbol", "symbol must be BASE-QUOTE of two different assets")
        scale = 10 ** self.assets[c.base]
        if (c.tick_size * c.lot_size) % scale:
            raise _Reject(
                "invalid_symbol",
                f"tick_size * lot_size must be a multiple of 10**{self.assets[c.base]}",
            )
        if c.min_qty is not None and c.max_qty is not None and c.min_qty > c.max_qty:
            raise _Reject("invalid_symbol", "min_qty is above max_qty")
        self.markets[c.symbol] = Market(
            c.symbol,
            c.base,
            c.quote,
            self.assets[c.base],
            c.tick_size,
            c.lot_size,
            c.min_qty,
            c.max_qty,
            c.min_notional,
            c.price_band_bps,
            c.market_band_bps,
        )
        ev.append(SymbolAdded(c.symbol, c.base, c.quote, c.tick_size, c.lot_size))

    def _set_fees(self, c: C.SetFees, ev: list[Event]) -> None:
        self.fee_tiers[c.tier] = (c.maker_bps, c.taker_bps)
        ev.append(FeesSet(c.tier, c.maker_bps, c.taker_bps))

    def _set_tier(self, c: C.SetTier, ev: list[Event]) -> None:
        if c.tier not in self.fee_tiers:
            raise _Reject("unknown_tier", f"fee tier {c.tier} is not configured")
        if c.tier:
            self.user_tiers[c.user] = c.tier
        else:
            self.user_tiers.pop(c.user, None)
        if self.margin_on:
            M.copy_tier(self, c.user)
        ev.append(TierSet(c.user, c.tier))

    def _halt(self, c: C.Halt, ev: list[Event]) -> None:
        self._market(c.symbol).halted = True
        ev.append(SymbolHalted(c.symbol))

    def _resume(self, c: C.Resume, ev: list[Event]) -> None:
        self._market(c.symbol).halted = False
        ev.append(SymbolResumed(c.symbol))

    def _tick(self, c: C.Tick, ev: list[Event]) -> None:
        pass

    # ------------------------------------------------------------------ freezing

    def _not_frozen(self, user: int) -> None:
        if user in self.frozen:
            raise _Reject("account_frozen", f"account {user} is frozen")

    def _freeze(self, c: C.Freeze, ev: list[Event]) -> None:
        user = c.user
        if user in self.frozen:
            raise _Reject("already_frozen", f"account {user} is already frozen")
        start = len(ev)
        self._cancel_everything(user, "frozen", ev)
        self.frozen.add(user)
        self.any_frozen = True
        ev.append(AccountFrozen(user, len(ev) - start))

    def _unfreeze(self, c: C.Unfreeze, ev: list[Event]) -> None:
        if c.user not in self.frozen:
            raise _Reject("not_frozen", f"account {c.user} is not frozen")
        self.frozen.discard(c.user)
        self.any_frozen = bool(self.frozen)
        ev.append(AccountUnfrozen(c.user))

    # ------------------------------------------------------------------ margin (margin_ops)

    def _margin_asset(self, c: C.MarginAsset, ev: list[Event]) -> None:
        M.set_asset(self, c, ev)

    def _margin_symbol(self, c: C.MarginSymbol, ev: list[Event]) -> None:
        M.set_symbol(self, c, ev)

    def _margin_cross(self, c: C.MarginCross, ev: list[Event]) -> None:
        M.set_cross(self, c, ev)

    def _margin_tier(self, c: C.MarginTier, ev: list[Event]) -> None:
        M.set_tier_cap(self, c.tier, c.max_leverage, ev)

    def _margin_tier_clear(self, c: C.MarginTierClear, ev: list[Event]) -> None:
        M.set_tier_cap(self, c.tier, None, ev)

    def _pool_fund(self, c: C.PoolFund, ev: list[Event]) -> None:
        M.pool_fund(self, c, ev)

    def _pool_defund(self, c: C.PoolDefund, ev: list[Event]) -> None:
        M.pool_defund(self, c, ev)

    def _insurance_fund(self, c: C.InsuranceFund, ev: list[Event]) -> None:
        M.insurance_fund(self, c, ev)

    def _insurance_defund(self, c: C.InsuranceDefund, ev: list[Event]) -> None:
        M.insurance_defund(self, c, ev)

    def _margin_transfer(self, c: C.MarginTransfer, ev: list[Event]) -> None:
        if self.frozen and c.direction == "out":
            self._not_frozen(c.user)
        M.transfer(self, c, ev)

    def _borrow(self, c: C.Borrow, ev: list[Event]) -> None:
        if self.frozen:
            self._not_frozen(c.user)
        M.borrow(self, c, ev)

    def _repay(self, c: C.Repay, ev: list[Event]) -> None:
        M.repay(self, c, ev)

    def _mark(self, c: C.Mark, ev: list[Event]) -> None:
        M.mark(self, c, ev)

    def _take_ioc(
        self,
        mk: Market,
        oid: int,
        user: int,
        buy: bool,
        limit: int,
        qty: int,
        lock: int,
        ev: list[Event],
    ) -> int:
        """A liquidation's IOC order of ``user`` (a wallet) whose ``lock`` is already
        held: match it, release the rest; returns the lots left unfilled. Built here so
        that it is this build's ``Order`` and ``Balance``."""
        bal = self.accounts[user][mk.quote if buy else mk.base]
        o = Order(oid, user, mk.name, buy, limit, qty, lock, bal, None, None, "none")
        self._run_taker(mk, o, False, "ioc", ev)
        return o.qty

    # ------------------------------------------------------------------ funds

    def _deposit(self, c: C.Deposit, ev: list[Event]) -> None:
        self._asset(c.asset)
        ref = c.ref
        if ref is not None and ref in self.deposit_refs:
            raise _Reject("duplicate_deposit", f"deposit {ref} was already credited")
        if self.deposited.get(c.asset, 0) - self.withdrawn.get(c.asset, 0) + c.amount > C.MAX_INT:
            raise _Reject(
                "amount_too_large", f"{c.asset} held on the exchange would exceed 2**63-1"
            )
        self._bal(c.user, c.asset).available += c.amount
        self.deposited[c.asset] = self.deposited.get(c.asset, 0) + c.amount
        if ref is not None:
            self.deposit_refs.add(ref)
        ev.append(Deposited(c.user, c.asset, c.amount))

    def _expense(self, c: C.Expense, ev: list[Event]) -> None:
        self._asset(c.asset)
        ref = c.ref
        if ref in self.expense_refs:
            raise _Reject("duplicate_expense", f"expense {ref} was already booked")
        if self.available(c.user, c.asset) < c.amount:
            raise _Reject("insufficient_balance", f"available {c.asset} is below {c.amount}")
        self._bal(c.user, c.asset).available -= c.amount
        self.expensed[c.asset] = self.expensed.get(c.asset, 0) + c.amount
        self.expense_refs.add(ref)
        ev.append(ExpensePaid(c.user, c.asset, c.amount, ref))

    def _withdraw_hold(self, c: C.WithdrawHold, ev: list[Event]) -> None:
        self._asset(c.asset)
        if self.frozen:
            self._not_frozen(c.user)
        if c.id in self.withdrawals:
            raise _Reject("duplicate_withdrawal", f"withdrawal {c.id} is already pending")
        if self.available(c.user, c.asset) < c.amount:
            raise _Reject("insufficient_balance", f"available {c.asset} is below {c.amount}")
        b = self._bal(c.user, c.asset)
        b.available -= c.amount
        b.locked += c.amount
        self.withdrawals[c.id] = (c.user, c.asset, c.amount)
        ev.append(WithdrawalHeld(c.id, c.user, c.asset, c.amount))

    def _pop_withdrawal(self, wid: int) -> tuple[int, str, int]:
        w = self.withdrawals.pop(wid, None)
        if w is None:
            raise _Reject("unknown_withdrawal", f"no pending withdrawal {wid}")
        return w

    def _withdraw_release(self, c: C.WithdrawRelease, ev: list[Event]) -> None:
        user, asset, amount = self._pop_withdrawal(c.id)
        self._unlock(user, asset, amount)
        ev.append(WithdrawalReleased(c.id, user, asset, amount))

    def _withdraw_settle(self, c: C.WithdrawSettle, ev: list[Event]) -> None:
        user, asset, amount = self._pop_withdrawal(c.id)
        self.accounts[user][asset].locked -= amount
        self.withdrawn[asset] = self.withdrawn.get(asset, 0) + amount
        ev.append(WithdrawalSettled(c.id, user, asset, amount))

    def _transfer(self, c: C.Transfer, ev: list[Event]) -> None:
        self._asset(c.asset)
        if c.user == c.to:
            raise _Reject("invalid_transfer", "cannot transfer to the same account")
        if self.frozen:
            self._not_frozen(c.user)
        if self.available(c.user, c.asset) < c.amount:
            raise _Reject("insufficient_balance", f"available {c.asset} is below {c.amount}")
        self._bal(c.user, c.asset).available -= c.amount
        self._bal(c.to, c.asset).available += c.amount
        ev.append(Transferred(c.user, c.to, c.asset, c.amount))

    # ------------------------------------------------------------------ orders

    def _place(self, c: C.Place, ev: list[Event]) -> None:
        """Risk-check and place an order. The plain limit order is the hot path of the
        whole exchange, so it is written out here; other types branch off early."""
        if self.any_frozen and c.user in self.frozen:  # a margin wallet's id never is
            raise _Reject("account_frozen", f"account {c.user} is frozen")
        if c.wallet != "spot":
            if c.symbol not in self.markets:
                raise _Reject("unknown_symbol", f"unknown symbol {c.symbol}")
            M.place(self, c, ev)
            return
        # Lookups that nearly always hit are tried rather than tested first: a failed
        # subscript is the rare case, and the interpreter's dict subscript is its fastest.
        try:
            mk = self.markets[c.symbol]
        except KeyError:
            raise _Reject("unknown_symbol", f"unknown symbol {c.symbol}") from None
        if mk.halted:
            raise _Reject("symbol_halted", f"trading in {c.symbol} is halted")
        oid = c.id
        if oid in self.orders or oid in self.stops:
            raise _Reject("duplicate_order_id", f"order id {oid} is already open")
        user = c.user
        cid = c.client_id
        if cid is not None and (user, cid) in self.client_ids:
            raise _Reject("duplicate_client_id", f"client order id {cid} is in use")
        typ = c.type
        if typ != "limit":
            if typ == "market":
                self._place_market(mk, c, ev)
            else:
                self._place_stop(mk, c, ev)
            return
        price, qty, tif = c.price, c.qty, c.tif
        if price is None or qty is None:
            raise _Reject("invalid_order", "a limit order needs price and qty")
        if c.quote_qty is not None or c.stop_price is not None:
            raise _Reject("invalid_order", "quote_qty and stop_price are not for limit orders")
        expire_ts = c.expire_ts
        if tif != "GTC" or expire_ts is not None:
            if (tif == "GTD") != (expire_ts is not None):
                raise _Reject("invalid_order", "expire_ts is required with GTD and only with GTD")
            if expire_ts is not None and expire_ts <= self.ts:
                raise _Reject("already_expired", f"expire_ts {expire_ts} is not in the future")
        display = c.display_qty
        if display is not None and (display >= qty or tif == "IOC" or tif == "FOK"):
            raise _Reject("invalid_order", "display_qty must be below qty, on GTC or GTD")
        if mk.filtered:
            bad = mk.filter_violation(price, qty)
            if bad is not None:
                raise _Reject("filter_violated", bad[1], bad[0])
        side = c.side
        buy = side == "buy"
        book = mk.book
        if buy:
            keys = book.ask_keys
            crosses = -keys[-1] <= price if keys else False
        else:
            keys = book.bid_keys
            crosses = keys[-1] >= price if keys else False
        post_only = c.post_only
        if post_only:
            if tif == "IOC" or tif == "FOK":
                raise _Reject("invalid_order", "post_only cannot be IOC or FOK")
            if crosses:
                raise _Reject("post_only_would_take", "post-only order would take liquidity")
        if tif == "FOK" and not self._fillable(book, buy, price, qty, user, c.stp):
            raise _Reject("fok_not_fillable", "fill-or-kill order cannot be filled in full")
        if buy:
            asset, lock = mk.quote, price * qty * mk.notional
        else:
            asset, lock = mk.base, qty * mk.lot_size
        try:
            b = self.accounts[user][asset]
        except KeyError:
            b = _NO_FUNDS
        if b.available < lock:
            raise _Reject("insufficient_balance", f"available {asset} is below {lock}")
        b.available -= lock
        b.locked += lock
        name = mk.name
        if self.events_on:
            ev.append(
                OrderAccepted(
                    oid,
                    user,
                    name,
                    side,
                    "limit",
                    price,
                    qty,
                    None,
                    tif,
                    None,
                    display,
                    cid,
                    lock,
                    "new",
                )
            )
        if crosses:
            o = Order(
                oid, user, name, buy, price, qty, lock, b, display, expire_ts, c.stp, cid, post_only
            )
            self._run_taker(mk, o, tif != "IOC" and tif != "FOK", "ioc", ev)
        elif tif == "IOC":
            b.available += lock
            b.locked -= lock
            if self.events_on:
                ev.append(OrderCancelled(oid, user, name, qty, lock, "ioc"))
        else:
            o = Order(
                oid, user, name, buy, price, qty, lock, b, display, expire_ts, c.stp, cid, post_only
            )
            # Book.add written out.
            if buy:
                levels = book.bids
                if price in levels:
                    lvl = levels[price]
                else:
                    lvl = levels[price] = Level()
                    insort(book.bid_keys, price)
            else:
                levels = book.asks
                if price in levels:
                    lvl = levels[price]
                else:
                    lvl = levels[price] = Level()
                    insort(book.ask_keys, -price)
            lvl.orders.append(o)
            lvl.n += 1
            self.orders[oid] = o
            try:
                self.user_orders[user][oid] = o
            except KeyError:
                self.user_orders[user] = {oid: o}
            if cid is not None:
                self.client_ids[(user, cid)] = oid
            if expire_ts is not None:
                heappush(self.expiries, (expire_ts, oid))

    def _place_market(self, mk: Market, c: C.Place, ev: list[Event]) -> None:
        buy = c.side == "buy"
        qty, quote_qty = c.qty, c.quote_qty
        if (qty is None) == (quote_qty is None):
            raise _Reject("invalid_order", "a market order needs exactly one of qty, quote_qty")
        if quote_qty is not None and not buy:
            raise _Reject("invalid_order", "quote_qty is for market buys only")
        if c.price is not None or c.stop_price is not None or c.display_qty is not None:
            raise _Reject("invalid_order", "price, stop_price, display_qty are not for market")
        if c.post_only or c.tif not in ("GTC", "IOC") or c.expire_ts is not None:
            raise _Reject(
                "invalid_order", "a market order is immediate: no post_only, FOK, GTD, expire_ts"
            )
        if qty is not None:
            bad = mk.filter_violation(None, qty)
            if bad is not None:
                raise _Reject("filter_violated", bad[1], bad[0])
        elif mk.min_notional is not None and quote_qty is not None and quote_qty < mk.min_notional:
            raise _Reject(
                "filter_violated",
                f"quote amount {quote_qty} is below the minimum notional {mk.min_notional}",
                "min_notional",
            )
        book = mk.book
        band = mk.market_band_bps
        if buy:
            if not book.ask_keys:
                raise _Reject("no_liquidity", f"no asks in {mk.name}")
            limit = -book.ask_keys[-1] * (BPS + band) // BPS
            asset = mk.quote
            lock = quote_qty if quote_qty is not None else limit * (qty or 0) * mk.notional
        else:
            if not book.bid_keys:
                raise _Reject("no_liquidity", f"no bids in {mk.name}")
            limit = -(-book.bid_keys[-1] * (BPS - band) // BPS)
            asset, lock = mk.base, (qty or 0) * mk.lot_size
        if self.available(c.user, asset) < lock:
            raise _Reject("insufficient_balance", f"available {asset} is below {lock}")
        b = self.accounts[c.user][asset]
        b.available -= lock
        b.locked += lock
        if self.events_on:
            ev.append(
                OrderAccepted(
                    c.id,
                    c.user,
                    mk.name,
                    c.side,
                    "market",
                    None,
                    qty,
                    quote_qty,
                    "IOC",
                    None,
                    None,
                    c.client_id,
                    lock,
                    "new",
                )
            )
        o = Order(c.id, c.user, mk.name, buy, limit, qty or 0, lock, b, None, None, c.stp)
        if quote_qty is not None:
            self._run_quote_taker(mk, o, ev)
        else:
            self._run_taker(mk, o, False, "market_remainder", ev)

    def _place_stop(self, mk: Market, c: C.Place, ev: list[Event]) -> None:
        typ, qty, stop = c.type, c.qty, c.stop_price
        market = typ in ("stop_market", "take_profit")
        if qty is None or stop is None:
            raise _Reject("invalid_order", f"a {typ} order needs qty and stop_price")
        if c.quote_qty is not None or c.display_qty is not None or c.post_only:
            raise _Reject("invalid_order", f"quote_qty, display_qty, post_only: not for {typ}")
        if market and c.price is not None:
            raise _Reject("invalid_order", f"a {typ} order takes no price")
        if not market and c.price is None:
            raise _Reject("invalid_order", f"a {typ} order needs a limit price")
        if c.tif not in ("GTC", "IOC") or c.expire_ts is not None:
            raise _Reject("invalid_order", f"a {typ} order is GTC or IOC, without expire_ts")
        buy = c.side == "buy"
        band = mk.market_band_bps
        if market:
            # A market stop fires as a market order capped by the band around its trigger,
            # so it can lock its worst case now.
            limit = stop * (BPS + band) // BPS if buy else -(-stop * (BPS - band) // BPS)
        else:
            limit = c.price or 0
        bad = mk.filter_violation(None if market else limit, qty)
        if bad is not None:
            raise _Reject("filter_violated", bad[1], bad[0])
        s = Stop(
            c.id,
            c.user,
            mk.name,
            buy,
            typ,
            stop,
            limit,
            qty,
            0,
            c.tif,
            c.stp,
            c.client_id,
            self.seq,
        )
        last = mk.last_price
        if last is not None and (last >= stop if s.up else last <= stop):
            raise _Reject(
                "would_trigger_immediately",
                f"the last price {last} already meets the trigger {stop}",
            )
        asset, lock = (mk.quote, limit * qty * mk.notional) if buy else (mk.base, qty * mk.lot_size)
        if self.available(c.user, asset) < lock:
            raise _Reject("insufficient_balance", f"available {asset} is below {lock}")
        b = self.accounts[c.user][asset]
        b.available -= lock
        b.locked += lock
        s.locked = lock
        self.stops[s.id] = s
        self._track(s)
        mk.add_stop(s)
        ev.append(
            OrderAccepted(
                c.id,
                c.user,
                mk.name,
                c.side,
                typ,
                None if market else limit,
                qty,
                None,
                c.tif,
                stop,
                None,
                c.client_id,
                lock,
                "untriggered",
            )
        )

    def _fillable(self, book: Book, buy: bool, limit: int, qty: int, user: int, stp: str) -> bool:
        """Whether a taker could fill ``qty`` now. Mirrors ``_take``: an iceberg's
        later slices queue behind what follows it in its level, so where self-trade
        prevention would stop the taker at its own order, only what stands before that
        order (icebergs: their shown slice) can be counted."""
        need = qty
        blocking = stp == "cancel_taker" or stp == "cancel_both"
        if buy:
            levels, keys, sgn, lim = book.asks, book.ask_keys, -1, -limit
        else:
            levels, keys, sgn, lim = book.bids, book.bid_keys, 1, limit
        for key in reversed(keys):
            if key < lim:
                return False
            live = [o for o in levels[key * sgn].orders if o.qty]
            own = next((i for i, o in enumerate(live) if o.user == user), None)
            if own is None or stp == "none":
                need -= sum(o.qty for o in live)
            elif not blocking:  # cancel_maker: own orders vanish, the rest all counts
                need -= sum(o.qty for o in live if o.user != user)
            else:
                for o in live[:own]:
                    need -= o.visible
                    if need <= 0:
                        return True
                return False
            if need <= 0:
                return True
        return False

    # ------------------------------------------------------------------ matching

    def _run_taker(
        self, mk: Market, o: Order, rest: bool, why: str, ev: list[Event], fire: bool = True
    ) -> None:
        """Match ``o`` against the book, then rest or cancel what is left, settle its
        lock, and fire any stops the new last price triggers."""
        last = mk.last_price
        stopped = self._take(mk, o, ev)
        book = mk.book
        user = o.user
        if o.qty and rest and not stopped:
            if o.buy:
                need = o.price * o.qty * mk.notional
                if o.locked != need:
                    extra = o.locked - need
                    b = o.bal
                    b.locked -= extra
                    b.available += extra
                    if self.events_on:
                        ev.append(OrderReleased(o.id, user, mk.name, extra))
                    o.locked = need
            o.visible = o.qty if o.display is None else min(o.display, o.qty)
            book.add(o)
            self.orders[o.id] = o
            self._track(o)
            if o.expire_ts is not None:
                heappush(self.expiries, (o.expire_ts, o.id))
        else:
            if not self.events_on:
                pass
            elif o.qty:
                ev.append(
                    OrderCancelled(o.id, user, mk.name, o.qty, o.locked, "stp" if stopped else why)
                )
            elif o.locked:
                ev.append(OrderReleased(o.id, user, mk.name, o.locked))
            left = o.locked
            if left:
                b = o.bal
                b.locked -= left
                b.available += left
                o.locked = 0
        if fire and mk.last_price != last and (mk.stops_up or mk.stops_down):
            self._fire_stops(mk, ev)

    def _take(self, mk: Market, t: Order, ev: list[Event]) -> bool:
        """Fill taker ``t`` against the opposite side up to its price; True when
        self-trade prevention stopped it."""
        book = mk.book
        buy = t.buy
        if buy:
            levels, keys, sgn, lim = book.asks, book.ask_keys, -1, -t.price
        else:
            levels, keys, sgn, lim = book.bids, book.bid_keys, 1, t.price
        if not keys or keys[-1] < lim:
            return False
        tuser = t.user
        stopped = False
        lot, notional, name = mk.lot_size, mk.notional, mk.name
        base, quote = mk.base, mk.quote
        accounts = self.accounts
        # The taker's locked balance is on the order; the one it receives may be new.
        if buy:
            tq = t.bal
            tb = accounts[tuser].get(base) or self._bal(tuser, base)
        else:
            tb = t.bal
            tq = accounts[tuser].get(quote) or self._bal(tuser, quote)
        tier = self.user_tiers
        fee_tiers = self.fee_tiers
        tfee = (fee_tiers.get(tier.get(tuser, 0), fee_tiers[0]) if tier else fee_tiers[0])[1]
        fee_acct = accounts.get(FEE_ACCOUNT)
        if fee_acct is None:
            fee_acct = accounts[FEE_ACCOUNT] = {}
        # Fetched once per taker rather than per fill (creating an empty balance changes
        # no state: empty balances are not part of it).
        fb = fee_acct.get(base) or self._bal(FEE_ACCOUNT, base)
        fq = fee_acct.get(quote) or self._bal(FEE_ACCOUNT, quote)
        fees0 = fee_tiers[0][0]
        side = "buy" if buy else "sell"
        emit = self.events_on
        tqty = t.qty
        lastp = 0
        while tqty and keys:
            key = keys[-1]
            if key < lim:
                break
            price = key * sgn
            lvl = levels[price]
            dq = lvl.orders
            while dq:
                m = dq[0]
                mqty = m.qty
                if not mqty:
                    dq.popleft()
                    continue
                muser = m.user
                if muser == tuser and t.stp != "none":
                    mode = t.stp
                    if mode != "cancel_taker":
                        # Cancel the maker where it stands: at the front of this queue.
                        dq.popleft()
                        lvl.n -= 1
                        m.qty = 0
                        del self.orders[m.id]
                        self._untrack(m)
                        unlocked = m.locked
                        mb = m.bal
                        mb.locked -= unlocked
                        mb.available += unlocked
                        m.locked = 0
                        ev.append(OrderCancelled(m.id, muser, name, mqty, unlocked, "stp"))
                    if mode != "cancel_maker":
                        stopped = True
                        break
                    continue
                q = m.visible
                if tqty < q:
                    q = tqty
                base_amt = q * lot
                quote_amt = price * q * notional
                mfee_bps = fee_tiers.get(tier.get(muser, 0), fee_tiers[0])[0] if tier else fees0
                if buy:
                    taker_fee = -(-base_amt * tfee // BPS) if tfee else 0
                    maker_fee = -(-quote_amt * mfee_bps // BPS) if mfee_bps else 0
                    tq.locked -= quote_amt
                    tb.available += base_amt - taker_fee
                    m.bal.locked -= base_amt
                    m.locked -= base_amt
                    mq = accounts[muser].get(quote) or self._bal(muser, quote)
                    mq.available += quote_amt - maker_fee
                    t.locked -= quote_amt
                    if taker_fee:
                        fb.available += taker_fee
                    if maker_fee:
                        fq.available += maker_fee
                else:
                    taker_fee = -(-quote_amt * tfee // BPS) if tfee else 0
                    maker_fee = -(-base_amt * mfee_bps // BPS) if mfee_bps else 0
                    tb.locked -= base_amt
                    tq.available += quote_amt - taker_fee
                    m.bal.locked -= quote_amt
                    m.locked -= quote_amt
                    mb = accounts[muser].get(base) or self._bal(muser, base)
                    mb.available += base_amt - maker_fee
                    t.locked -= base_amt
                    if taker_fee:
                        fq.available += taker_fee
                    if maker_fee:
                        fb.available += maker_fee
                tqty -= q
                mqty -= q
                m.qty = mqty
                lastp = price
                if emit:
                    ev.append(
                        Trade(
                            name,
                            price,
                            q,
                            base_amt,
                            quote_amt,
                            m.id,
                            t.id,
                            muser,
                            tuser,
                            side,
                            maker_fee,
                            taker_fee,
                            mqty,
                            tqty,
                        )
                    )
                if not mqty:
                    dq.popleft()
                    lvl.n -= 1
                    mid = m.id
                    del self.orders[mid]
                    del self.user_orders[muser][mid]
                    if m.client_id is not None:
                        del self.client_ids[(muser, m.client_id)]
                else:
                    vis = m.visible - q
                    if vis:
                        m.visible = vis
                    else:
                        # An iceberg slice is used up: show the next slice at the back.
                        m.visible = mqty if m.display is None or m.display > mqty else m.display
                        dq.popleft()
                        dq.append(m)
                if not tqty:
                    break
            if lastp:
                mk.last_price = lastp
            if not lvl.n:
                del levels[price]
                keys.pop()
            if stopped:
                break
        t.qty = tqty
        return stopped

    def _run_quote_taker(self, mk: Market, o: Order, ev: list[Event]) -> None:
        """A market buy for a quote amount: take whole lots while the rest of the
        budget pays for one, within the price band ``o.price``."""
        book = mk.book
        keys, levels = book.ask_keys, book.asks
        last = mk.last_price
        stopped = False
        notional = mk.notional
        cap = o.price
        while keys and o.locked:
            price = -keys[-1]
            if price > cap:
                break
            lvl = levels[price]
            lots = o.locked // (price * notional)
            if not lots:
                break
            o.qty = min(lots, sum(x.qty for x in lvl.orders if x.qty))
            o.price = price  # this level only: the lots were priced here
            if self._take(mk, o, ev):
                stopped = True
                break
            o.qty = 0
        left = o.locked
        if left:
            self._unlock(o.user, mk.quote, left)
            o.locked = 0
            reason = "stp" if stopped else "market_remainder"
            ev.append(OrderCancelled(o.id, o.user, mk.name, 0, left, reason))
        if mk.last_price != last and (mk.stops_up or mk.stops_down):
            self._fire_stops(mk, ev)

    def _fire_stops(self, mk: Market, ev: list[Event]) -> None:
        """Fire every stop the last price has reached, oldest first, until the last
        price stops moving them."""
        while True:
            last = mk.last_price
            if last is None:
                return
            fired = mk.pop_triggered(last)
            if not fired:
                return
            for sid in fired:
                s = self.stops.pop(sid)
                self._untrack(s)
                ev.append(OrderTriggered(s.id, s.user, mk.name, last))
                bal = self.accounts[s.user][mk.quote if s.buy else mk.base]
                o = Order(
                    s.id, s.user, mk.name, s.buy, s.limit, s.qty, s.locked, bal, None, None, s.stp
                )
                o.client_id = s.client_id
                if s.market:
                    book = mk.book
                    if s.buy and book.ask_keys:
                        cap = -book.ask_keys[-1] * (BPS + mk.market_band_bps) // BPS
                        o.price = min(o.price, cap)
                    elif not s.buy and book.bid_keys:
                        floor = -(-book.bid_keys[-1] * (BPS - mk.market_band_bps) // BPS)
                        o.price = max(o.price, floor)
                    self._run_taker(mk, o, False, "market_remainder", ev, fire=False)
                else:
                    self._run_taker(mk, o, s.tif == "GTC", "ioc", ev, fire=False)

    # ------------------------------------------------------------------ cancel, amend

    def _cancel_order(self, mk: Market, o: Order, reason: str, ev: list[Event]) -> None:
        # Written out (no _untrack/_unlock calls): cancels are a third of a busy stream.
        oid, user, left, unlocked = o.id, o.user, o.qty, o.locked
        mk.book.remove(o)
        del self.orders[oid]
        del self.user_orders[user][oid]
        if o.client_id is not None:
            del self.client_ids[(user, o.client_id)]
        b = o.bal
        b.locked -= unlocked
        b.available += unlocked
        o.locked = 0
        ev.append(OrderCancelled(oid, user, mk.name, left, unlocked, reason))

    def _cancel_stop(self, mk: Market, s: Stop, reason: str, ev: list[Event]) -> None:
        mk.remove_stop(s)
        del self.stops[s.id]
        self._untrack(s)
        self._unlock(s.user, mk.quote if s.buy else mk.base, s.locked)
        ev.append(OrderCancelled(s.id, s.user, mk.name, s.qty, s.locked, reason))

    def _cancel(self, c: C.Cancel, ev: list[Event]) -> None:
        oid = c.id
        orders = self.orders
        if oid in orders:
            o = orders[oid]
            user = o.user
            symbol = o.symbol
            if user == c.user and symbol == c.symbol:
                # _cancel_order and Book.remove written out: a third of a busy stream. The
                # order's symbol is the market's own str: its hash is cached, and the
                # lookup matches it by identity (the command's str is new each time).
                left, unlocked, price = o.qty, o.locked, o.price
                o.qty = 0
                book = self.markets[symbol].book
                levels = book.bids if o.buy else book.asks
                lvl = levels[price]
                n = lvl.n - 1
                lvl.n = n
                if not n:
                    del levels[price]
                    if o.buy:
                        keys = book.bid_keys
                        del keys[bisect_left(keys, price)]
                    else:
                        keys = book.ask_keys
                        del keys[bisect_left(keys, -price)]
                elif len(lvl.orders) > 2 * n + 16:
                    lvl.orders = deque([x for x in lvl.orders if x.qty])
                del orders[oid]
                del self.user_orders[user][oid]
                if o.client_id is not None:
                    del self.client_ids[(user, o.client_id)]
                b = o.bal
                b.locked -= unlocked
                b.available += unlocked
                o.locked = 0
                if self.events_on:
                    ev.append(OrderCancelled(oid, user, symbol, left, unlocked, "user"))
                return
        s = self.stops.get(c.id)
        if s is not None and s.user == c.user and s.symbol == c.symbol:
            self._cancel_stop(self.markets[c.symbol], s, "user", ev)
            return
        if self.margin_on:
            wid = M.owned_order(self, c.id, c.user, c.symbol)
            if wid is not None:  # the owner cancels an order of their margin wallet
                self._cancel(msgspec.structs.replace(c, user=wid), ev)
                return
        raise _Reject("unknown_order", f"no open order {c.id} of this user in {c.symbol}")

    def _cancel_all(self, c: C.CancelAll, ev: list[Event]) -> None:
        if c.symbol is not None:
            self._market(c.symbol)
        self._cancel_everything(c.user, "user", ev, c.symbol)

    def _cancel_everything(
        self, user: int, reason: str, ev: list[Event], symbol: str | None = None
    ) -> None:
        """Cancel ``user``'s orders and stops (in ``symbol`` only, when given), those of
        the user's margin wallets first, each account's in id order."""
        if self.margin_on and user > 0:
            for wid in self.margin.user_wallets.get(user, ()):
                self._cancel_everything(wid, reason, ev, symbol)
        uo = self.user_orders.get(user)
        if not uo:
            return
        for oid in sorted(uo):
            x = uo[oid]
            if symbol is not None and x.symbol != symbol:
                continue
            mk = self.markets[x.symbol]
            if isinstance(x, Stop):
                self._cancel_stop(mk, x, reason, ev)
            else:
                self._cancel_order(mk, x, reason, ev)

    def _amend(self, c: C.Amend, ev: list[Event]) -> None:
        if self.frozen:
            self._not_frozen(c.user)
        o = self.orders.get(c.id)
        if o is None or o.user != c.user or o.symbol != c.symbol:
            if self.margin_on:
                wid = M.owned_order(self, c.id, c.user, c.symbol)
                if wid is not None:  # the owner amends an order of their margin wallet
                    self._amend(msgspec.structs.replace(c, user=wid), ev)
                    return
            s = self.stops.get(c.id)
            if s is not None and s.user == c.user and s.symbol == c.symbol:
                raise _Reject("not_amendable", "an untriggered stop cannot be amended")
            raise _Reject("unknown_order", f"no open order {c.id} of this user in {c.symbol}")
        mk = self.markets[c.symbol]
        if mk.halted:
            raise _Reject("symbol_halted", f"trading in {c.symbol} is halted")
        price = o.price if c.price is None else c.price
        qty = c.qty
        if mk.filtered:
            # The band is about new prices: an order keeping its price is not re-checked.
            bad = mk.filter_violation(price, qty, band=price != o.price)
            if bad is not None:
                raise _Reject("filter_violated", bad[1], bad[0])
        asset = mk.quote if o.buy else mk.base
        need = price * qty * mk.notional if o.buy else qty * mk.lot_size
        delta = need - o.locked
        if delta > 0 and self.available(o.user, asset) < delta:
            raise _Reject("insufficient_balance", f"available {asset} is below {delta}")
        if o.post_only and price != o.price:
            keys = mk.book.ask_keys if o.buy else mk.book.bid_keys
            if keys and (-keys[-1] <= price if o.buy else keys[-1] >= price):
                raise _Reject("post_only_would_take", "post-only order would take liquidity")
        b = o.bal
        keep = price == o.price and qty <= o.qty
        if keep:
            b.locked += delta
            b.available -= delta
            o.locked = need
            o.qty = qty
            if o.visible > qty:
                o.visible = qty
            ev.append(OrderAmended(o.id, o.user, mk.name, price, qty, need, True))
            return
        b.available -= delta
        b.locked += delta
        # Losing priority: the old queue entry becomes a tombstone, a fresh entry joins
        # the back of its (possibly new) level and may match at once.
        mk.book.remove(o)
        del self.orders[o.id]
        self._untrack(o)
        n = Order(
            o.id,
            o.user,
            mk.name,
            o.buy,
            price,
            qty,
            need,
            b,
            o.display,
            o.expire_ts,
            o.stp,
            o.client_id,
            o.post_only,
        )
        ev.append(OrderAmended(n.id, n.user, mk.name, price, qty, need, False))
        self._run_taker(mk, n, True, "ioc", ev)

    def _expire(self, ev: list[Event]) -> None:
        exp, ts = self.expiries, self.ts
        while exp and exp[0][0] <= ts:
            expire_ts, oid = heappop(exp)
            o = self.orders.get(oid)
            if o is not None and o.expire_ts == expire_ts:
                self._cancel_order(self.markets[o.symbol], o, "expired", ev)

    # ------------------------------------------------------------------ snapshots

    def state(self) -> dict[str, Any]:
        """The whole business state as canonical plain data (sorted, no tombstones)."""
        markets = []
        for name in sorted(self.markets):
            mk = self.markets[name]
            sides = []
            for buy in (True, False):
                sides.append(
                    [
                        [
                            p,
                            [
                                [
                                    o.id,
                                    o.user,
                                    o.qty,
                                    o.visible,
                                    o.display,
                                    o.locked,
                                    o.expire_ts,
                                    o.stp,
                                    o.client_id,
                                    o.post_only,
                                ]
                                for o in orders
                            ],
                        ]
                        for p, orders in mk.book.side_levels(buy)
                    ]
                )
            stops = [
                [
                    s.id,
                    s.user,
                    s.buy,
                    s.type,
                    s.stop_price,
                    s.limit,
                    s.qty,
                    s.locked,
                    s.tif,
                    s.stp,
                    s.client_id,
                    s.arrival,
                ]
                for s in sorted(
                    (x for x in self.stops.values() if x.symbol == name), key=lambda x: x.arrival
                )
            ]
            markets.append(
                [
                    name,
                    mk.base,
                    mk.quote,
                    mk.tick_size,
                    mk.lot_size,
                    mk.min_qty,
                    mk.max_qty,
                    mk.min_notional,
                    mk.price_band_bps,
                    mk.market_band_bps,
                    mk.halted,
                    mk.last_price,
                    sides[0],
                    sides[1],
                    stops,
                ]
            )
        balances = [
            [u, a, b.available, b.locked]
            for u in sorted(self.accounts)
            for a, b in sorted(self.accounts[u].items())
            if b.available or b.locked
        ]
        st: dict[str, Any] = {
            "assets": sorted(self.assets.items()),
            "markets": markets,
            "balances": balances,
            "fee_tiers": sorted([t, m, k] for t, (m, k) in self.fee_tiers.items()),
            "user_tiers": sorted(self.user_tiers.items()),
            "deposited": sorted(self.deposited.items()),
            "withdrawn": sorted(self.withdrawn.items()),
            "withdrawals": sorted([w, u, a, n] for w, (u, a, n) in self.withdrawals.items()),
        }
        if self.deposit_refs:  # absent when unused: older snapshots and hashes stay valid
            st["deposit_refs"] = sorted(self.deposit_refs)
        if self.expense_refs:  # likewise (``expensed`` is never without a ref)
            st["expensed"] = sorted(self.expensed.items())
            st["expense_refs"] = sorted(self.expense_refs)
        if self.frozen:  # likewise
            st["frozen"] = sorted(self.frozen)
        if self.margin_on:  # likewise
            st["margin"] = M.state_of(self.margin)
        return st

    def snapshot(self) -> bytes:
        return _encoder.encode([SNAPSHOT_VERSION, self.seq, self.ts, self.state()])

    def state_hash(self) -> str:
        return hashlib.sha256(_encoder.encode(self.state())).hexdigest()

    @classmethod
    def restore(cls, blob: bytes) -> Core:
        version, seq, ts, st = msgspec.msgpack.decode(blob)
        if version != SNAPSHOT_VERSION:
            raise ValueError(f"snapshot version {version} is not {SNAPSHOT_VERSION}")
        core = cls()
        core.seq, core.ts = seq, ts
        core.assets = dict(st["assets"])
        for u, a, avail, locked in st["balances"]:
            core._bal(u, a).available = avail
            core.accounts[u][a].locked = locked
        core.fee_tiers = {t: (m, k) for t, m, k in st["fee_tiers"]}
        core.user_tiers = dict(st["user_tiers"])
        core.deposited = dict(st["deposited"])
        core.withdrawn = dict(st["withdrawn"])
        core.withdrawals = {w: (u, a, n) for w, u, a, n in st["withdrawals"]}
        core.deposit_refs = set(st.get("deposit_refs", ()))
        core.expensed = dict(st.get("expensed", ()))
        core.expense_refs = set(st.get("expense_refs", ()))
        core.frozen = set(st.get("frozen", ()))
        core.any_frozen = bool(core.frozen)
        for row in st["markets"]:
            (
                name,
                base,
                quote,
                tick,
                lot,
                min_qty,
                max_qty,
                min_notional,
                band,
                mband,
                halted,
                last,
                bids,
                asks,
                stops,
            ) = row
            mk = Market(
                name,
                base,
                quote,
                core.assets[base],
                tick,
                lot,
                min_qty,
                max_qty,
                min_notional,
                band,
                mband,
            )
            mk.halted, mk.last_price = halted, last
            core.markets[name] = mk
            for buy, side in ((True, bids), (False, asks)):
                for price, orders in side:
                    for row in orders:
                        oid, user, qty, visible, display, locked, expire_ts, stp, cid, po = row
                        o = Order(
                            oid,
                            user,
                            name,
                            buy,
                            price,
                            qty,
                            locked,
                            core._bal(user, quote if buy else base),
                            display,
                            expire_ts,
                            stp,
                            cid,
                            po,
                        )
                        o.visible = visible
                        mk.book.add(o)
                        core.orders[oid] = o
                        core._track(o)
                        if expire_ts is not None:
                            heappush(core.expiries, (expire_ts, oid))
            for sid, user, buy, typ, stop, limit, qty, locked, tif, stp, cid, arrival in stops:
                s = Stop(
                    sid, user, name, buy, typ, stop, limit, qty, locked, tif, stp, cid, arrival
                )
                core.stops[sid] = s
                core._track(s)
                mk.add_stop(s)
        if "margin" in st:
            M.restore(core, st["margin"])
        return core


__all__ = ["FEE_ACCOUNT", "Balance", "Core"]
