"""Margin commands applied to a ``Core``: configuration, funding, transfers, borrowing,
repaying, marks, hourly interest, and the trigger index that finds wallets to call or
liquidate without scanning them all.

Invariants kept here (see ``margin.py`` for the data's own):
- every check runs before the first mutation: a rejected command changes nothing
  (``auto_borrow`` undoes its borrow exactly when the order is then rejected);
- after every command (``settle``), no wallet with debts is at or below its liquidation
  level at the current marks: the wallets a price, interest or trade put there have been
  liquidated (``liquidation.py``), and a liquidation always ends with no debt;
- a wallet with debts and one non-valuation exposure sits in its symbol's trigger index
  under its exact liquidation and margin-call prices; one with several sits in
  ``MarginState.multi`` and is checked on every mark. Index entries are derived data,
  rebuilt on restore.
- iteration that reaches an event is over sorted data, so replay is deterministic.

The engine calls in only when margin is in use (``MarginState.on``) or for a margin
command, so the spot path is unchanged but for one flag test per command.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from tradewind.core import commands as C
from tradewind.core.errors import Reject
from tradewind.core.events import (
    Borrowed,
    Event,
    InsuranceFunded,
    InterestCharged,
    MarginAssetSet,
    MarginCall,
    MarginCrossSet,
    MarginSymbolSet,
    MarginTierSet,
    MarginTransferred,
    MarginWalletOpened,
    MarkPrice,
    OrderAccepted,
    OrderCancelled,
    PoolFunded,
    Repaid,
    Trade,
)
from tradewind.core.margin import (
    FIRST_WALLET,
    HOUR_MS,
    INSURANCE_ACCOUNT,
    LEVEL_ONE,
    MAX_LEVERAGE,
    POOL_ACCOUNT,
    VALUE_ONE,
    Loan,
    MarginState,
    SymbolIndex,
    SymbolTerms,
    Terms,
    Wallet,
    at_or_below,
    initial_level,
    interest_for,
    level_of,
    max_borrow_by_level,
    trigger,
)
from tradewind.core.marks import clamp_move, index_inputs, median
from tradewind.core.symbols import BPS

if TYPE_CHECKING:
    from tradewind.core.engine import Core


# ------------------------------------------------------------------ lookups and values


def enable(core: Core) -> None:
    m = core.margin
    if not m.on:
        m.on = core.margin_on = True
        core.events_on = True  # ``settle`` reads each command's events from now on
        m.hour = core.ts // HOUR_MS
        core.next_hour = (m.hour + 1) * HOUR_MS


def terms_of(m: MarginState, w: Wallet) -> Terms:
    if w.symbol is not None:
        return m.symbols[w.symbol]
    assert m.cross is not None
    return m.cross


def max_leverage_of(core: Core, w: Wallet) -> int:
    """The wallet's max leverage: its terms', capped by its owner's fee tier's cap."""
    lev = terms_of(core.margin, w).max_leverage
    caps = core.margin.tier_caps
    if caps:
        cap = caps.get(core.user_tiers.get(w.id, 0))
        if cap is not None and cap < lev:
            return cap
    return lev


def initial_of(core: Core, w: Wallet) -> int:
    """The wallet's initial level: ``initial_level`` of its effective max leverage."""
    t = terms_of(core.margin, w)
    lev = max_leverage_of(core, w)
    return t.initial if lev == t.max_leverage else initial_level(lev)


def scale(core: Core, asset: str) -> int:
    """Value of one minor unit of ``asset`` in valuation minor units times 10**18; 0 for
    an asset without a mark (never held or owed in a wallet: the checks prevent it)."""
    m = core.margin
    if asset == m.valuation:
        return VALUE_ONE
    sym = m.base_symbol.get(asset)
    if sym is None:
        return 0
    mark = m.marks.get(sym)
    if mark is None:
        return 0
    mk = core.markets[sym]
    unit: int = 10 ** (18 - mk.base_decimals)
    return mark * mk.tick_size * unit


def held(core: Core, wid: int, asset: str) -> int:
    acct = core.accounts.get(wid)
    if acct is None:
        return 0
    b = acct.get(asset)
    return 0 if b is None else b.available + b.locked


def values(core: Core, w: Wallet) -> tuple[int, int]:
    """(assets, liabilities) of a wallet, exact, in valuation minor units * 10**18."""
    a = 0
    acct = core.accounts.get(w.id)
    if acct:
        for asset, b in acct.items():
            h = b.available + b.locked
            if h:
                a += h * scale(core, asset)
    lia = 0
    for asset, loan in w.loans.items():
        lia += loan.owed * scale(core, asset)
    return a, lia


def exposures(core: Core, w: Wallet) -> list[str]:
    """The wallet's non-valuation assets held or owed, sorted."""
    m = core.margin
    out = set(w.loans)
    acct = core.accounts.get(w.id)
    if acct:
        out.update(a for a, b in acct.items() if b.available or b.locked)
    out.discard(m.valuation or "")
    return sorted(out)


def wallet_key(kind: str, symbol: str | None) -> str:
    return symbol or "" if kind == "isolated" else ""


def find_wallet(core: Core, user: int, kind: str, symbol: str | None) -> Wallet:
    m = core.margin
    if kind == "isolated" and symbol is None:
        raise Reject("invalid_wallet", "an isolated wallet is named by its symbol")
    if kind == "cross" and symbol is not None:
        raise Reject("invalid_wallet", "the cross wallet takes no symbol")
    wid = m.by_owner.get((user, wallet_key(kind, symbol)))
    if wid is None:
        raise Reject("no_margin_wallet", f"user {user} has no {kind} wallet {symbol or ''}")
    return m.wallets[wid]


def _check_wallet_asset(core: Core, kind: str, symbol: str | None, asset: str) -> None:
    """The wallet kind is configured and may hold ``asset``, and ``asset`` has a mark."""
    m = core.margin
    if kind == "cross":
        if m.cross is None:
            raise Reject("margin_not_enabled", "cross margin is not configured")
        if asset != m.valuation and asset not in m.base_symbol:
            raise Reject("asset_not_in_wallet", f"{asset} is not a margin asset")
    else:
        if symbol is None:
            raise Reject("invalid_wallet", "an isolated wallet is named by its symbol")
        if symbol not in m.symbols:
            raise Reject("margin_not_enabled", f"margin is not enabled on {symbol}")
        mk = core.markets[symbol]
        if asset not in (mk.base, mk.quote):
            raise Reject("asset_not_in_wallet", f"{asset} is not an asset of {symbol}")
    if asset != m.valuation and m.marks.get(m.base_symbol[asset]) is None:
        raise Reject("no_mark_price", f"{m.base_symbol[asset]} has no mark price yet")


# ------------------------------------------------------------------ the trigger index


def _unindex(m: MarginState, w: Wallet) -> None:
    if w.entry is not None:
        sym, liq, call = w.entry
        idx = m.index[sym]
        if liq is not None:
            idx.drop(False, liq, w.id)
        if call is not None and not w.called:
            idx.drop(True, call, w.id)
        idx.called.discard(w.id)
        w.entry = None
    if w.multi:
        m.multi.discard(w.id)
        w.multi = False


def _index(core: Core, w: Wallet) -> None:
    """Put a wallet with debts where the marks will find it."""
    m = core.margin
    exp = exposures(core, w)
    if len(exp) > 1:
        w.multi = True
        m.multi.add(w.id)
        return
    if not exp:
        return  # valuation asset only: its level moves with interest alone
    asset = exp[0]
    sym = m.base_symbol[asset]
    mk = core.markets[sym]
    val = m.valuation or ""
    loan = w.loans.get(asset)
    vloan = w.loans.get(val)
    t = terms_of(m, w)
    args = (
        held(core, w.id, asset),
        0 if loan is None else loan.owed,
        held(core, w.id, val),
        0 if vloan is None else vloan.owed,
        mk.tick_size,
        mk.base_decimals,
    )
    liq = trigger(t.liquidation, *args)
    call = trigger(t.call, *args)
    idx = m.index.get(sym)
    if idx is None:
        idx = m.index[sym] = SymbolIndex()
    w.entry = (sym, liq, call)
    if liq is not None:
        idx.put(False, liq, w.id)
    if call is not None:
        if w.called:
            idx.called.add(w.id)
        else:
            idx.put(True, call, w.id)
    elif w.called:
        idx.called.add(w.id)


def _call(core: Core, w: Wallet, a: int, lia: int, ev: list[Event]) -> None:
    m = core.margin
    t = terms_of(m, w)
    w.called = True
    if w.entry is not None:
        sym, _, call = w.entry
        idx = m.index[sym]
        if call is not None:
            idx.drop(True, call, w.id)
        idx.called.add(w.id)
    ev.append(MarginCall(w.id, w.user, level_of(a, lia) or 0, t.call, t.liquidation))


def _uncall(core: Core, w: Wallet) -> None:
    m = core.margin
    w.called = False
    if w.entry is not None:
        sym, _, call = w.entry
        idx = m.index[sym]
        idx.called.discard(w.id)
        if call is not None:
            idx.put(True, call, w.id)


def due(m: MarginState, wid: int) -> None:
    if wid not in m.due_set:
        m.due_set.add(wid)
        m.due.append(wid)


def check_now(core: Core, w: Wallet, ev: list[Event]) -> None:
    """Compare the wallet's level with its thresholds at the current marks: queue a
    liquidation, raise a margin call, or clear one."""
    m = core.margin
    t = terms_of(m, w)
    a, lia = values(core, w)
    if at_or_below(a, lia, t.liquidation):
        due(m, w.id)
    elif at_or_below(a, lia, t.call):
        if not w.called:
            _call(core, w, a, lia, ev)
    elif w.called:
        _uncall(core, w)


def refresh(core: Core, w: Wallet, ev: list[Event] | None) -> None:
    """Re-index a wallet whose balances or debts changed; with ``ev``, also check it."""
    m = core.margin
    _unindex(m, w)
    if not w.loans:
        m.indebted.discard(w.id)
        if w.called:
            w.called = False
        return
    m.indebted.add(w.id)
    _index(core, w)
    if ev is not None:
        check_now(core, w, ev)


def refresh_all(core: Core, ev: list[Event]) -> None:
    m = core.margin
    for wid in sorted(m.indebted):
        refresh(core, m.wallets[wid], ev)


def _received(core: Core, e: Trade, maker: bool) -> tuple[str, int]:
    """The asset and amount (after its fee) one side of a trade received."""
    mk = core.markets[e.symbol]
    if (e.taker_side == "buy") != maker:  # the buyer gets base, less its fee
        return mk.base, e.base - (e.maker_fee if maker else e.taker_fee)
    return mk.quote, e.quote - (e.maker_fee if maker else e.taker_fee)


def _auto_repay(core: Core, proceeds: dict[tuple[int, str], int], ev: list[Event]) -> None:
    """Repay each wallet's debt in each asset its ``auto_repay`` orders received: at most
    the proceeds, what is available and what is owed (interest first)."""
    m = core.margin
    for wid, asset in sorted(proceeds):
        w = m.wallets.get(wid)
        loan = None if w is None else w.loans.get(asset)
        if w is None or loan is None:
            continue
        pay = min(proceeds[(wid, asset)], core.available(wid, asset), loan.owed)
        if pay > 0:
            pay_debt(core, w, asset, pay, "auto_repay", ev)


def settle(core: Core, ev: list[Event]) -> None:
    """After every command once margin is on: repay from the fills of ``auto_repay``
    orders (as taker or maker), re-check the wallets that traded, then liquidate every
    due wallet, and the wallets those liquidations' trades put under, until none is
    left."""
    from tradewind.core.liquidation import liquidate

    m = core.margin
    wallets = m.wallets
    flagged = m.auto_repay
    pos = 0
    while True:
        n = len(ev)
        if pos < n:
            touched: dict[int, None] = {}
            proceeds: dict[tuple[int, str], int] = {}
            seen: list[int] = []  # flagged orders that traded, ended or began here
            for i in range(pos, n):
                e = ev[i]
                if type(e) is Trade:
                    if e.maker_user < 0:
                        touched[e.maker_user] = None
                        if flagged and e.maker_id in flagged:
                            seen.append(e.maker_id)
                            key, amount = _received(core, e, True)
                            k = (e.maker_user, key)
                            proceeds[k] = proceeds.get(k, 0) + amount
                    if e.taker_user < 0:
                        touched[e.taker_user] = None
                        if flagged and e.taker_id in flagged:
                            seen.append(e.taker_id)
                            key, amount = _received(core, e, False)
                            k = (e.taker_user, key)
                            proceeds[k] = proceeds.get(k, 0) + amount
                elif (
                    flagged
                    and (type(e) is OrderCancelled or type(e) is OrderAccepted)
                    and e.user < 0
                    and e.id in flagged
                ):
                    seen.append(e.id)
            pos = n
            if seen:
                for oid in seen:  # an order that is over wants nothing more
                    if oid not in core.orders and oid not in core.stops:
                        flagged.discard(oid)
            if proceeds:
                _auto_repay(core, proceeds, ev)
            for wid in touched:
                w = wallets.get(wid)
                if w is not None:
                    refresh(core, w, ev)
            if len(ev) > pos:
                continue
        if not m.due:
            return
        wid = m.due.pop(0)
        m.due_set.discard(wid)
        liquidate(core, wallets[wid], ev)


# ------------------------------------------------------------------ configuration


def _check_terms(max_leverage: int, call: int, liquidation: int) -> None:
    if max_leverage > MAX_LEVERAGE:
        raise Reject(
            "leverage_too_high", f"leverage {max_leverage}x is above the limit {MAX_LEVERAGE}x"
        )
    if max_leverage < 2:
        raise Reject("invalid_margin_terms", "max_leverage must be at least 2")
    init = initial_level(max_leverage)
    if not LEVEL_ONE < liquidation < call < init:
        raise Reject(
            "invalid_margin_terms",
            f"levels must satisfy 10000 < liquidation {liquidation} < margin call {call} "
            f"< initial {init}",
        )


def set_asset(core: Core, c: C.MarginAsset, ev: list[Event]) -> None:
    if c.asset not in core.assets:
        raise Reject("unknown_asset", f"unknown asset {c.asset}")
    enable(core)
    core.margin.assets[c.asset] = (c.hourly_rate, c.borrow_limit)
    ev.append(MarginAssetSet(c.asset, c.hourly_rate, c.borrow_limit))


def set_symbol(core: Core, c: C.MarginSymbol, ev: list[Event]) -> None:
    mk = core.markets.get(c.symbol)
    if mk is None:
        raise Reject("unknown_symbol", f"unknown symbol {c.symbol}")
    _check_terms(c.max_leverage, c.margin_call_level, c.liquidation_level)
    m = core.margin
    if m.valuation is not None and mk.quote != m.valuation:
        raise Reject(
            "invalid_margin_terms", f"margin symbols are quoted in {m.valuation}, not {mk.quote}"
        )
    if mk.base in m.base_symbol and m.base_symbol[mk.base] != c.symbol:
        raise Reject("invalid_margin_terms", f"{mk.base} already has a margin symbol")
    enable(core)
    m.valuation = mk.quote
    m.base_symbol[mk.base] = c.symbol
    t = SymbolTerms(
        c.max_leverage,
        c.margin_call_level,
        c.liquidation_level,
        c.liquidation_fee_bps,
        c.liquidation_band_bps,
        c.mark_max_age_ms,
        c.mark_max_move_bps,
    )
    m.symbols[c.symbol] = t
    ev.append(
        MarginSymbolSet(
            c.symbol,
            c.max_leverage,
            t.initial,
            t.call,
            t.liquidation,
            t.fee_bps,
            t.band_bps,
            t.max_age_ms,
            t.max_move_bps,
        )
    )
    refresh_all(core, ev)


def set_cross(core: Core, c: C.MarginCross, ev: list[Event]) -> None:
    _check_terms(c.max_leverage, c.margin_call_level, c.liquidation_level)
    enable(core)
    m = core.margin
    m.cross = t = Terms(
        c.max_leverage, c.margin_call_level, c.liquidation_level, c.liquidation_fee_bps
    )
    ev.append(MarginCrossSet(c.max_leverage, t.initial, t.call, t.liquidation, t.fee_bps))
    refresh_all(core, ev)


def set_tier_cap(core: Core, tier: int, max_leverage: int | None, ev: list[Event]) -> None:
    """Set (or, with ``None``, clear) fee tier ``tier``'s leverage cap. It raises only
    initial levels (used by borrows and transfers out), so no wallet is re-checked."""
    if tier not in core.fee_tiers:
        raise Reject("unknown_tier", f"fee tier {tier} is not configured")
    if max_leverage is not None:
        if max_leverage > MAX_LEVERAGE:
            raise Reject(
                "leverage_too_high", f"leverage {max_leverage}x is above the limit {MAX_LEVERAGE}x"
            )
        if max_leverage < 2:
            raise Reject("invalid_margin_terms", "max_leverage must be at least 2")
    enable(core)
    m = core.margin
    if max_leverage is None:
        m.tier_caps.pop(tier, None)
        ev.append(MarginTierSet(tier, None, None))
    else:
        m.tier_caps[tier] = max_leverage
        ev.append(MarginTierSet(tier, max_leverage, initial_level(max_leverage)))


def _move(core: Core, src: int, dst: int, asset: str, amount: int) -> None:
    core._bal(src, asset).available -= amount
    core._bal(dst, asset).available += amount


def _fund(core: Core, user: int, asset: str, amount: int, account: int, into: bool) -> None:
    if asset not in core.assets:
        raise Reject("unknown_asset", f"unknown asset {asset}")
    if into:
        if core.available(user, asset) < amount:
            raise Reject("insufficient_balance", f"available {asset} is below {amount}")
        enable(core)
        _move(core, user, account, asset, amount)
    else:
        if core.available(account, asset) < amount:
            what = "pool cash" if account == POOL_ACCOUNT else "insurance fund"
            raise Reject("insufficient_funds", f"the {what} in {asset} is below {amount}")
        _move(core, account, user, asset, amount)


def pool_fund(core: Core, c: C.PoolFund, ev: list[Event]) -> None:
    _fund(core, c.user, c.asset, c.amount, POOL_ACCOUNT, True)
    m = core.margin
    m.funded[c.asset] = m.funded.get(c.asset, 0) + c.amount
    ev.append(PoolFunded(c.user, c.asset, c.amount, "in"))


def pool_defund(core: Core, c: C.PoolDefund, ev: list[Event]) -> None:
    _fund(core, c.user, c.asset, c.amount, POOL_ACCOUNT, False)
    m = core.margin
    m.funded[c.asset] = m.funded.get(c.asset, 0) - c.amount
    ev.append(PoolFunded(c.user, c.asset, c.amount, "out"))


def insurance_fund(core: Core, c: C.InsuranceFund, ev: list[Event]) -> None:
    _fund(core, c.user, c.asset, c.amount, INSURANCE_ACCOUNT, True)
    ev.append(InsuranceFunded(c.user, c.asset, c.amount, "in"))


def insurance_defund(core: Core, c: C.InsuranceDefund, ev: list[Event]) -> None:
    _fund(core, c.user, c.asset, c.amount, INSURANCE_ACCOUNT, False)
    ev.append(InsuranceFunded(c.user, c.asset, c.amount, "out"))


# ------------------------------------------------------------------ wallets and loans


def open_wallet(core: Core, user: int, kind: str, symbol: str | None, ev: list[Event]) -> Wallet:
    m = core.margin
    key = (user, wallet_key(kind, symbol))
    wid = m.by_owner.get(key)
    if wid is not None:
        return m.wallets[wid]
    wid = m.next_wallet
    m.next_wallet -= 1
    w = m.wallets[wid] = Wallet(wid, user, kind, symbol if kind == "isolated" else None)
    m.by_owner[key] = wid
    m.user_wallets.setdefault(user, []).append(wid)
    tier = core.user_tiers.get(user)
    if tier:
        core.user_tiers[wid] = tier
    ev.append(MarginWalletOpened(wid, user, kind, w.symbol))
    return w


def copy_tier(core: Core, user: int) -> None:
    """A user's fee tier applies to their margin wallets too."""
    tier = core.user_tiers.get(user)
    for wid in core.margin.user_wallets.get(user, ()):
        if tier:
            core.user_tiers[wid] = tier
        else:
            core.user_tiers.pop(wid, None)


def transfer(core: Core, c: C.MarginTransfer, ev: list[Event]) -> None:
    m = core.margin
    if not m.on:
        raise Reject("margin_not_enabled", "margin trading is not configured")
    if c.asset not in core.assets:
        raise Reject("unknown_asset", f"unknown asset {c.asset}")
    if c.wallet == "cross" and c.symbol is not None:
        raise Reject("invalid_wallet", "the cross wallet takes no symbol")
    _check_wallet_asset(core, c.wallet, c.symbol, c.asset)
    if c.direction == "in":
        if core.available(c.user, c.asset) < c.amount:
            raise Reject("insufficient_balance", f"available {c.asset} is below {c.amount}")
        w = open_wallet(core, c.user, c.wallet, c.symbol, ev)
        _move(core, c.user, w.id, c.asset, c.amount)
    else:
        w = find_wallet(core, c.user, c.wallet, c.symbol)
        if core.available(w.id, c.asset) < c.amount:
            raise Reject("insufficient_balance", f"available {c.asset} is below {c.amount}")
        if w.loans:
            a, lia = values(core, w)
            a -= c.amount * scale(core, c.asset)
            init = initial_of(core, w)
            if LEVEL_ONE * a < init * lia:
                raise Reject(
                    "below_initial_margin",
                    f"the wallet's level would fall to {level_of(max(a, 0), lia)}, "
                    f"below the initial level {init}",
                )
        _move(core, w.id, c.user, c.asset, c.amount)
    ev.append(MarginTransferred(w.id, c.user, c.asset, c.amount, c.direction))
    refresh(core, w, ev)


def check_borrow(core: Core, w: Wallet, asset: str, amount: int) -> None:
    m = core.margin
    terms = m.assets.get(asset)
    if terms is None:
        raise Reject("asset_not_borrowable", f"{asset} cannot be borrowed")
    _check_wallet_asset(core, w.kind, w.symbol, asset)
    loan = w.loans.get(asset)
    owed = 0 if loan is None else loan.owed
    if owed + amount > terms[1]:
        raise Reject(
            "borrow_limit_exceeded",
            f"debt in {asset} would be {owed + amount}, above the limit {terms[1]}",
        )
    if core.available(POOL_ACCOUNT, asset) < amount:
        raise Reject("pool_insufficient", f"the lending pool holds less than {amount} {asset}")
    a, lia = values(core, w)
    s = scale(core, asset)
    init = initial_of(core, w)
    if LEVEL_ONE * (a + amount * s) < init * (lia + amount * s):
        raise Reject(
            "below_initial_margin",
            f"the wallet's level would fall below the initial level {init}",
        )


def do_borrow(
    core: Core, w: Wallet, asset: str, amount: int, ev: list[Event], order_id: int | None = None
) -> None:
    _move(core, POOL_ACCOUNT, w.id, asset, amount)
    loan = w.loans.get(asset)
    if loan is None:
        loan = w.loans[asset] = Loan()
    loan.principal += amount
    ev.append(Borrowed(w.id, w.user, asset, amount, loan.principal, loan.interest, order_id))


def undo_borrow(core: Core, w: Wallet, asset: str, amount: int) -> None:
    _move(core, w.id, POOL_ACCOUNT, asset, amount)
    loan = w.loans[asset]
    loan.principal -= amount
    if not loan.owed:
        del w.loans[asset]


def borrow(core: Core, c: C.Borrow, ev: list[Event]) -> None:
    w = find_wallet(core, c.user, c.wallet, c.symbol)
    check_borrow(core, w, c.asset, c.amount)
    do_borrow(core, w, c.asset, c.amount, ev)
    refresh(core, w, ev)


def pay_debt(
    core: Core, w: Wallet, asset: str, amount: int, reason: str, ev: list[Event], payer: int = 0
) -> None:
    """Repay ``amount`` (interest first) from ``payer``'s available (the wallet by
    default) into the pool."""
    loan = w.loans[asset]
    _move(core, payer or w.id, POOL_ACCOUNT, asset, amount)
    ip = min(amount, loan.interest)
    loan.interest -= ip
    loan.principal -= amount - ip
    if not loan.owed:
        del w.loans[asset]
    ev.append(
        Repaid(w.id, w.user, asset, amount, ip, amount - ip, loan.principal, loan.interest, reason)
    )


def repay(core: Core, c: C.Repay, ev: list[Event]) -> None:
    w = find_wallet(core, c.user, c.wallet, c.symbol)
    loan = w.loans.get(c.asset)
    owed = 0 if loan is None else loan.owed
    if c.amount > owed:
        raise Reject("repay_exceeds_debt", f"the debt in {c.asset} is {owed}, not {c.amount}")
    if core.available(w.id, c.asset) < c.amount:
        raise Reject("insufficient_balance", f"available {c.asset} is below {c.amount}")
    pay_debt(core, w, c.asset, c.amount, "user", ev)
    refresh(core, w, ev)


# ------------------------------------------------------------------ orders


def _order_need(core: Core, c: C.Place) -> tuple[str, int] | None:
    """The asset and amount a margin order will hold, for ``auto_borrow`` (``None`` when
    the order is malformed: the engine then rejects it)."""
    mk = core.markets[c.symbol]
    buy = c.side == "buy"
    if c.type == "limit":
        if c.price is None or c.qty is None:
            return None
        return (mk.quote, c.price * c.qty * mk.notional) if buy else (mk.base, c.qty * mk.lot_size)
    if c.type == "market":
        if not buy:
            return None if c.qty is None else (mk.base, c.qty * mk.lot_size)
        if c.quote_qty is not None:
            return (mk.quote, c.quote_qty)
        keys = mk.book.ask_keys
        if c.qty is None or not keys:
            return None
        limit = -keys[-1] * (BPS + mk.market_band_bps) // BPS
        return (mk.quote, limit * c.qty * mk.notional)
    raise Reject("invalid_order", "auto_borrow is for limit and market orders")


def place(core: Core, c: C.Place, ev: list[Event]) -> None:
    """An order from a margin wallet: the engine's own placing, as the wallet's account."""
    m = core.margin
    w = find_wallet(core, c.user, c.wallet, c.symbol if c.wallet == "isolated" else None)
    if c.symbol not in m.symbols or (w.symbol is not None and w.symbol != c.symbol):
        raise Reject("margin_not_enabled", f"{c.symbol} cannot be traded from this wallet")
    if c.symbol not in m.marks:
        raise Reject("no_mark_price", f"{c.symbol} has no mark price yet")
    mk = core.markets[c.symbol]
    if mk.halted:
        raise Reject("symbol_halted", f"trading in {c.symbol} is halted")
    inner = msgspec.structs.replace(
        c, user=w.id, wallet="spot", auto_borrow=False, auto_repay=False
    )
    borrowed: tuple[str, int] | None = None
    start = len(ev)
    if c.auto_borrow:
        need = _order_need(core, c)
        if need is not None:
            asset, amount = need
            short = amount - core.available(w.id, asset)
            if short > 0:
                check_borrow(core, w, asset, short)
                do_borrow(core, w, asset, short, ev, c.id)
                borrowed = (asset, short)
    try:
        core._place(inner, ev)
    except Reject:
        if borrowed is not None:
            undo_borrow(core, w, *borrowed)
            del ev[start:]
        raise
    if c.auto_repay:
        # ``settle`` repays from this order's fills, now and whenever it fills later as
        # a maker, then checks the wallet; it drops the id once the order is over.
        m.auto_repay.add(c.id)
        if any(type(e) is Trade for e in ev[start:]):
            return  # ``settle`` checks the wallet after repaying: no margin call before
    refresh(core, w, ev)


def owned_order(core: Core, oid: int, user: int, symbol: str) -> int | None:
    """The wallet id of ``user``'s margin order or stop ``oid`` in ``symbol``, if any."""
    o = core.orders.get(oid) or core.stops.get(oid)
    if o is None or o.user >= 0 or o.symbol != symbol:
        return None
    w = core.margin.wallets.get(o.user)
    return o.user if w is not None and w.user == user else None


# ------------------------------------------------------------------ marks and interest


def mark(core: Core, c: C.Mark, ev: list[Event]) -> None:
    m = core.margin
    t = m.symbols.get(c.symbol)
    if t is None:
        raise Reject("margin_not_enabled", f"margin is not enabled on {c.symbol}")
    mk = core.markets[c.symbol]
    inputs = index_inputs(mk.book, c.feeds, core.ts, t.max_age_ms)
    if not inputs:
        raise Reject("no_index_price", "no book mid and no fresh feed price")
    index = median(inputs)
    new = clamp_move(m.marks.get(c.symbol), index, t.max_move_bps)
    m.marks[c.symbol] = new
    ev.append(MarkPrice(c.symbol, new, index, len(inputs), new != index))
    idx = m.index.get(c.symbol)
    wallets = m.wallets
    if idx is not None:
        for wid in idx.hits(False, new):
            due(m, wid)
        for wid in idx.hits(True, new):
            if wid not in m.due_set:
                w = wallets[wid]
                a, lia = values(core, w)
                _call(core, w, a, lia, ev)
        if idx.called:
            for wid in sorted(idx.called):
                w = wallets[wid]
                if wid not in m.due_set and not at_or_below(*values(core, w), terms_of(m, w).call):
                    _uncall(core, w)
    if m.multi:
        for wid in sorted(m.multi):
            check_now(core, wallets[wid], ev)


def accrue(core: Core, ev: list[Event]) -> None:
    """Charge the interest of every hour boundary the sequencer's ts has crossed."""
    m = core.margin
    hour = core.ts // HOUR_MS
    hours = hour - m.hour
    core.next_hour = (hour + 1) * HOUR_MS
    if hours <= 0:
        return
    m.hour = hour
    for wid in sorted(m.indebted):
        w = m.wallets[wid]
        charged = False
        for asset in sorted(w.loans):
            loan = w.loans[asset]
            amount = interest_for(loan.principal, m.assets[asset][0], hours)
            if amount:
                loan.interest += amount
                m.interest[asset] = m.interest.get(asset, 0) + amount
                charged = True
                ev.append(
                    InterestCharged(
                        wid, w.user, asset, amount, loan.principal, loan.interest, hours, hour
                    )
                )
        if charged:
            refresh(core, w, ev)


# ------------------------------------------------------------------ views (for the API)


def max_borrowable(core: Core, user: int, kind: str, symbol: str | None, asset: str) -> int:
    """What ``borrow`` would accept now: the least of the borrow limit's room, the pool's
    cash and the initial-level bound (rounded down). 0 when it would be rejected."""
    m = core.margin
    try:
        w = find_wallet(core, user, kind, symbol)
        _check_wallet_asset(core, kind, symbol, asset)
    except Reject:
        return 0
    terms = m.assets.get(asset)
    if terms is None:
        return 0
    loan = w.loans.get(asset)
    room = terms[1] - (0 if loan is None else loan.owed)
    a, lia = values(core, w)
    by_level = max_borrow_by_level(a, lia, scale(core, asset), initial_of(core, w))
    return max(0, min(room, core.available(POOL_ACCOUNT, asset), by_level))


def liquidation_price(core: Core, w: Wallet) -> tuple[str, int, int] | None:
    """``(symbol, direction, price)`` of a one-exposure wallet with debts: liquidated
    when the mark is ``<= price`` (direction 1) or ``>= price`` (-1)."""
    if w.entry is None:
        return None
    sym, liq, _ = w.entry
    if liq is None:
        return None
    return (sym, liq[0], liq[1])


def wallet_view(core: Core, wid: int) -> dict[str, object]:
    """A wallet as plain data: balances, debts, values (valuation minor units; assets
    rounded down, liabilities up), level (1/10000, rounded down) and terms."""
    m = core.margin
    w = m.wallets[wid]
    t = terms_of(m, w)
    a, lia = values(core, w)
    acct = core.accounts.get(wid, {})
    return {
        "wallet": wid,
        "user": w.user,
        "kind": w.kind,
        "symbol": w.symbol,
        "balances": {
            k: (b.available, b.locked) for k, b in sorted(acct.items()) if b.available or b.locked
        },
        "loans": {k: (x.principal, x.interest) for k, x in sorted(w.loans.items())},
        "assets": a // VALUE_ONE,
        "liabilities": -(-lia // VALUE_ONE),
        "level": level_of(a, lia),
        "max_leverage": max_leverage_of(core, w),
        "initial_level": initial_of(core, w),
        "margin_call_level": t.call,
        "liquidation_level": t.liquidation,
        "called": w.called,
        "liquidation_price": liquidation_price(core, w),
    }


# ------------------------------------------------------------------ snapshots


def state_of(m: MarginState) -> dict[str, object]:
    st: dict[str, object] = {
        "valuation": m.valuation,
        "assets": sorted([a, r, lim] for a, (r, lim) in m.assets.items()),
        "symbols": sorted([s, *t.row()] for s, t in m.symbols.items()),
        "cross": None if m.cross is None else m.cross.row(),
        "marks": sorted([s, p] for s, p in m.marks.items()),
        "wallets": [
            [
                wid,
                w.user,
                w.kind,
                w.symbol,
                w.called,
                sorted([a, x.principal, x.interest] for a, x in w.loans.items()),
            ]
            for wid, w in sorted(m.wallets.items(), reverse=True)
        ],
        "next_wallet": m.next_wallet,
        "next_order": m.next_order,
        "funded": sorted([a, n] for a, n in m.funded.items() if n),
        "interest": sorted([a, n] for a, n in m.interest.items() if n),
        "losses": sorted([a, n] for a, n in m.losses.items() if n),
        "hour": m.hour,
    }
    if m.tier_caps:  # absent when unused, like ``auto_repay``
        st["tier_caps"] = sorted([t, lev] for t, lev in m.tier_caps.items())
    if m.auto_repay:  # absent when unused: older margin snapshots and hashes stay valid
        st["auto_repay"] = sorted(m.auto_repay)
    return st


def restore(core: Core, st: dict[str, object]) -> None:
    m = core.margin
    m.on = core.margin_on = True
    m.valuation = st["valuation"]  # type: ignore[assignment]
    m.assets = {a: (r, lim) for a, r, lim in st["assets"]}  # type: ignore[attr-defined]
    for s, lev, call, liq, fee, band, age, move in st["symbols"]:  # type: ignore[attr-defined]
        m.symbols[s] = SymbolTerms(lev, call, liq, fee, band, age, move)
        m.base_symbol[core.markets[s].base] = s
    cross = st["cross"]
    if cross is not None:
        m.cross = Terms(*cross)  # type: ignore[misc]
    m.marks = {s: p for s, p in st["marks"]}  # type: ignore[attr-defined]
    for wid, user, kind, symbol, called, loans in st["wallets"]:  # type: ignore[attr-defined]
        w = m.wallets[wid] = Wallet(wid, user, kind, symbol)
        w.called = called
        for a, p, i in loans:
            w.loans[a] = Loan(p, i)
        m.by_owner[(user, wallet_key(kind, symbol))] = wid
        m.user_wallets.setdefault(user, []).append(wid)
    m.next_wallet = st["next_wallet"]  # type: ignore[assignment]
    m.next_order = st["next_order"]  # type: ignore[assignment]
    m.funded = {a: n for a, n in st["funded"]}  # type: ignore[attr-defined]
    m.interest = {a: n for a, n in st["interest"]}  # type: ignore[attr-defined]
    m.losses = {a: n for a, n in st["losses"]}  # type: ignore[attr-defined]
    m.hour = st["hour"]  # type: ignore[assignment]
    m.auto_repay = set(st.get("auto_repay", ()))  # type: ignore[call-overload]
    m.tier_caps = {t: lev for t, lev in st.get("tier_caps", ())}  # type: ignore[attr-defined]
    core.next_hour = (m.hour + 1) * HOUR_MS
    for wid in sorted(m.wallets):
        refresh(core, m.wallets[wid], None)


__all__ = ["FIRST_WALLET", "max_borrowable", "wallet_view"]
