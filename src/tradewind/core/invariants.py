"""The core's invariants, checked from the outside on any state (live or restored).

These are the promises of DESIGN.md §2: money is conserved per asset (what came in
less what was withdrawn and what the exchange spent, ``Expense``), nothing is
negative, every locked unit is explained by an open order, stop or pending withdrawal,
books are uncrossed and their indexes agree with their queues.

Margin (docs/margin.md): the lending pool's cash and the insurance fund are accounts
(``POOL_ACCOUNT``, ``INSURANCE_ACCOUNT``) and margin wallets are accounts too, so the
money equation above covers them unchanged. The claims add one equation per asset:
pool cash + all wallets' debts == net pool funding + interest charged - losses written
off. No debt is negative, and no wallet with debts is at or below its liquidation level
at the current marks (every command ends with due liquidations done). Every order id
marked ``auto_repay`` is a live order or stop of a margin wallet.
"""

from __future__ import annotations

from tradewind.core.engine import Core
from tradewind.core.margin import POOL_ACCOUNT, at_or_below
from tradewind.core.margin_ops import terms_of, values


def check_invariants(core: Core) -> list[str]:
    """Every violated invariant as a readable line; empty when all hold."""
    bad: list[str] = []
    totals: dict[str, int] = {}
    locked: dict[tuple[int, str], int] = {}
    for user, acct in core.accounts.items():
        for asset, b in acct.items():
            if b.available < 0 or b.locked < 0:
                bad.append(f"negative balance {user}/{asset}: {b.available}/{b.locked}")
            totals[asset] = totals.get(asset, 0) + b.available + b.locked
            if b.locked:
                locked[(user, asset)] = b.locked
    assets = set(totals) | set(core.deposited) | set(core.withdrawn) | set(core.expensed)
    for asset in sorted(assets):
        expected = (
            core.deposited.get(asset, 0)
            - core.withdrawn.get(asset, 0)
            - core.expensed.get(asset, 0)
        )
        if totals.get(asset, 0) != expected:
            bad.append(
                f"{asset}: balances sum to {totals.get(asset, 0)}, "
                f"deposits minus withdrawals and expenses are {expected}"
            )
    holds: dict[tuple[int, str], int] = {}

    def hold(user: int, asset: str, amount: int) -> None:
        holds[(user, asset)] = holds.get((user, asset), 0) + amount

    seen: set[int] = set()
    for name, mk in core.markets.items():
        book = mk.book
        for buy in (True, False):
            levels = book.bids if buy else book.asks
            keys = book.bid_keys if buy else [-k for k in book.ask_keys]
            if sorted(keys) != sorted(levels) or len(set(keys)) != len(keys):
                bad.append(f"{name}: price index disagrees with levels")
            for price, lvl in levels.items():
                live = [o for o in lvl.orders if o.qty]
                if len(live) != lvl.n or not live:
                    bad.append(f"{name}: level {price} counts {lvl.n} live, has {len(live)}")
                for o in live:
                    seen.add(o.id)
                    if core.orders.get(o.id) is not o:
                        bad.append(f"{name}: order {o.id} in book but not indexed")
                    if o.price != price or o.buy != buy:
                        bad.append(f"{name}: order {o.id} sits at the wrong level")
                    if not 0 < o.visible <= o.qty:
                        bad.append(f"{name}: order {o.id} shows {o.visible} of {o.qty}")
                    need = price * o.qty * mk.notional if buy else o.qty * mk.lot_size
                    if o.locked != need:
                        bad.append(f"{name}: order {o.id} holds {o.locked}, needs {need}")
                    hold(o.user, mk.quote if buy else mk.base, o.locked)
        bid, ask = book.best_bid(), book.best_ask()
        if bid is not None and ask is not None and bid >= ask:
            bad.append(f"{name}: crossed book, bid {bid} >= ask {ask}")
    if seen != set(core.orders):
        bad.append(f"order index holds {len(core.orders)} orders, books hold {len(seen)}")
    for s in core.stops.values():
        mk = core.markets[s.symbol]
        hold(s.user, mk.quote if s.buy else mk.base, s.locked)
    for user, asset, amount in core.withdrawals.values():
        hold(user, asset, amount)
    for key in sorted(set(locked) | set(holds)):
        if locked.get(key, 0) != holds.get(key, 0):
            bad.append(
                f"locked {key[0]}/{key[1]} is {locked.get(key, 0)}, "
                f"open orders and withdrawals hold {holds.get(key, 0)}"
            )
    if core.margin.on:
        bad.extend(_margin_invariants(core))
    return bad


def _margin_invariants(core: Core) -> list[str]:
    bad: list[str] = []
    m = core.margin
    owed: dict[str, int] = {}
    for wid, w in m.wallets.items():
        if wid >= POOL_ACCOUNT or m.by_owner.get((w.user, w.symbol or "")) != wid:
            bad.append(f"wallet {wid} of user {w.user} is not registered consistently")
        for asset, loan in w.loans.items():
            if loan.principal < 0 or loan.interest < 0 or not loan.owed:
                bad.append(f"wallet {wid} {asset} loan {loan.principal}/{loan.interest}")
            owed[asset] = owed.get(asset, 0) + loan.owed
        if w.loans and at_or_below(*values(core, w), terms_of(m, w).liquidation):
            bad.append(f"wallet {wid} is at or below its liquidation level after a command")
        if (wid in m.indebted) != bool(w.loans):
            bad.append(f"wallet {wid}: indebted set disagrees with its loans")
    for oid in sorted(m.auto_repay):
        o = core.orders.get(oid) or core.stops.get(oid)
        if o is None or o.user not in m.wallets:
            bad.append(f"auto_repay order {oid} is not a live order of a margin wallet")
    for acct in core.accounts:
        if acct < POOL_ACCOUNT - 1 and acct not in m.wallets:
            bad.append(f"account {acct} is neither the pool, the insurance fund nor a wallet")
    pool = core.accounts.get(POOL_ACCOUNT, {})
    assets = set(owed) | set(pool) | set(m.funded) | set(m.interest) | set(m.losses)
    for asset in sorted(assets):
        b = pool.get(asset)
        cash = 0 if b is None else b.available + b.locked
        claims = cash + owed.get(asset, 0)
        equity = m.funded.get(asset, 0) + m.interest.get(asset, 0) - m.losses.get(asset, 0)
        if claims != equity:
            bad.append(
                f"{asset}: pool cash {cash} + debts {owed.get(asset, 0)} = {claims}, "
                f"funding + interest - losses = {equity}"
            )
    return bad
