"""Liquidation of one margin wallet, inside the deterministic core.

Steps, each with its events (docs/margin.md):
1. ``LiquidationStarted`` with the level and values that triggered it;
2. cancel the wallet's open orders and stops (``OrderCancelled`` reason ``liquidation``);
3. close every non-valuation exposure with an IOC order against the book within the
   symbol's ``liquidation_band_bps`` of the mark (sells of what exceeds the debt first,
   then buys of what the debt exceeds): ``OrderAccepted``, ``Trade``s,
   ``OrderCancelled``/``OrderReleased``, then ``LiquidationFill``;
4. repay every debt from the wallet's own balance of its asset (``Repaid`` reason
   ``liquidation``);
5. charge the liquidation fee (``liquidation_fee_bps`` of the liabilities' value at the
   start, in the valuation asset, at most what is left of it) to the insurance fund;
6. if a debt is still open, the insurance fund takes over what the wallet still holds
   and repays the debt from its own balance of that asset; what it cannot pay is
   written off by the lending pool (the socialised loss: lenders, not other traders,
   bear it); ``LiquidationFinished`` reports all of it.

Invariant: a liquidation ends with the wallet owing nothing, so it cannot be due again
until it borrows again, and a cascade ends. Money only moves between accounts, so
conservation holds at every step.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tradewind.core.events import (
    Event,
    LiquidationFill,
    LiquidationFinished,
    LiquidationStarted,
    OrderAccepted,
)
from tradewind.core.margin import (
    INSURANCE_ACCOUNT,
    POOL_ACCOUNT,
    VALUE_ONE,
    Wallet,
    at_or_below,
    level_of,
)
from tradewind.core.margin_ops import (
    exposures,
    held,
    pay_debt,
    refresh,
    terms_of,
    values,
)
from tradewind.core.symbols import BPS

if TYPE_CHECKING:
    from tradewind.core.engine import Core


def _close(core: Core, w: Wallet, symbol: str, buy: bool, qty: int, ev: list[Event]) -> None:
    """One IOC order of the wallet within the band around the mark."""
    m = core.margin
    mk = core.markets[symbol]
    if mk.halted:
        return
    band = m.symbols[symbol].band_bps
    mark = m.marks[symbol]
    if buy:
        limit = mark * (BPS + band) // BPS
        bal = core._bal(w.id, mk.quote)
        qty = min(qty, bal.available // (limit * mk.notional))
        lock = limit * qty * mk.notional
    else:
        limit = max(1, -(-mark * (BPS - band) // BPS))
        bal = core._bal(w.id, mk.base)
        lock = qty * mk.lot_size
    if qty <= 0:
        return
    bal.available -= lock
    bal.locked += lock
    oid = -m.next_order
    m.next_order += 1
    side = "buy" if buy else "sell"
    ev.append(
        OrderAccepted(
            oid, w.id, symbol, side, "limit", limit, qty, None, "IOC", None, None, None, lock, "new"
        )
    )
    left = core._take_ioc(mk, oid, w.id, buy, limit, qty, lock, ev)
    ev.append(LiquidationFill(w.id, w.user, oid, symbol, side, limit, qty, qty - left))


def _lots_to_buy(short: int, lot: int, fee_bps: int) -> int:
    """The fewest lots whose proceeds after the taker fee (paid in base) cover
    ``short``."""
    q = -(-short // lot)
    while q * lot - (-(-q * lot * fee_bps // BPS) if fee_bps else 0) < short:
        q += 1
    return q


def liquidate(core: Core, w: Wallet, ev: list[Event]) -> None:
    m = core.margin
    t = terms_of(m, w)
    a, lia = values(core, w)
    if not at_or_below(a, lia, t.liquidation):
        return  # an earlier liquidation's trades lifted it back
    val = m.valuation or ""
    ev.append(
        LiquidationStarted(
            w.id,
            w.user,
            level_of(a, lia) or 0,
            t.liquidation,
            a // VALUE_ONE,
            -(-lia // VALUE_ONE),
            val,
        )
    )
    # 2. cancel
    uo = core.user_orders.get(w.id)
    if uo:
        for oid in sorted(uo):
            x = uo[oid]
            mk = core.markets[x.symbol]
            # By index, not isinstance: a pure-Python core and the compiled one have
            # different Stop classes (tests compare the two in one process).
            if oid in core.stops:
                core._cancel_stop(mk, core.stops[oid], "liquidation", ev)
            else:
                core._cancel_order(mk, core.orders[oid], "liquidation", ev)
    # 3. close: sells first (they raise the valuation asset the buys need)
    exp = exposures(core, w)
    for buying in (False, True):
        for asset in exp:
            sym = m.base_symbol[asset]
            mk = core.markets[sym]
            loan = w.loans.get(asset)
            net = held(core, w.id, asset) - (0 if loan is None else loan.owed)
            if not buying and net >= mk.lot_size:
                _close(core, w, sym, False, net // mk.lot_size, ev)
            elif buying and net < 0:
                lots = _lots_to_buy(-net, mk.lot_size, core._fees(w.id)[1])
                _close(core, w, sym, True, lots, ev)
    # 4. repay from the wallet
    for asset in sorted(w.loans):
        pay = min(core.available(w.id, asset), w.loans[asset].owed)
        if pay:
            pay_debt(core, w, asset, pay, "liquidation", ev)
    # 5. the fee
    fee = -(-lia * t.fee_bps // (BPS * VALUE_ONE))
    fee = min(fee, core.available(w.id, val))
    if fee:
        core._bal(w.id, val).available -= fee
        core._bal(INSURANCE_ACCOUNT, val).available += fee
    # 6. takeover, insurance, socialised loss
    taken: dict[str, int] = {}
    paid: dict[str, int] = {}
    lost: dict[str, int] = {}
    if w.loans:
        acct = core.accounts.get(w.id, {})
        for asset in sorted(acct):
            b = acct[asset]
            if b.available:
                taken[asset] = b.available
                core._bal(INSURANCE_ACCOUNT, asset).available += b.available
                b.available = 0
        for asset in sorted(w.loans):
            owed = w.loans[asset].owed
            pay = min(core.available(INSURANCE_ACCOUNT, asset), owed)
            if pay:
                paid[asset] = pay
                pay_debt(core, w, asset, pay, "insurance", ev, payer=INSURANCE_ACCOUNT)
            if asset in w.loans:
                rest = w.loans.pop(asset).owed
                lost[asset] = rest
                m.losses[asset] = m.losses.get(asset, 0) + rest
    acct = core.accounts.get(w.id, {})
    left = {k: b.available for k, b in sorted(acct.items()) if b.available}
    ev.append(LiquidationFinished(w.id, w.user, fee, taken, paid, lost, left))
    refresh(core, w, ev)


__all__ = ["POOL_ACCOUNT", "liquidate"]
