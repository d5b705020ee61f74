"""The ledger projector: every balance change of the core as double-entry legs.

Invariants (checked by ``tests/integration/test_projectors.py``):
- the legs of one event sum to zero per asset, so all legs of an asset sum to zero;
- per ``(account, asset)``, the sum of the ``available`` legs is the core's available
  balance and the sum of the ``locked`` legs its locked balance, after every applied
  command; minus the sum of the ``external`` legs is deposits less settled withdrawals
  and expenses;
- legs are derived from events alone (no configuration, no core state), exactly once
  per command (see :mod:`tradewind.services.projectors.base` for the offset rule);
- each open order's hold is followed from ``OrderAccepted.locked`` through trades,
  cancels, releases and amends, and an order that ends (filled or cancelled by the end
  of its command) holds exactly nothing; anything else is a :class:`ProjectionError`.

Legs per event (``account`` is the core account, 0 the fee account):

=========================  ================================================================
``Deposited a``            external -a, available +a
``WithdrawalHeld a``       available -a, locked +a
``WithdrawalReleased a``   locked -a, available +a
``WithdrawalSettled a``    locked -a, external +a
``ExpensePaid a``          available -a, external +a (ref: the expense's ref, e.g.
                           ``network-fee:withdrawal:12``)
``Transferred a``          sender available -a, receiver available +a
``OrderAccepted l``        available -l, locked +l, in the asset it spends (quote for a
                           buy, base for a sell)
``Trade``                  buyer locked -quote, seller available +(quote - seller fee),
                           fee account +seller fee; seller locked -base, buyer available
                           +(base - buyer fee), fee account +buyer fee
``OrderCancelled u``       locked -u, available +u
``OrderReleased r``        locked -r, available +r
``OrderAmended l``         the difference between ``l`` (the new total hold) and the
                           order's current hold, between available and locked
``PoolFunded a``           user available -a, lending pool (account -1) available +a
                           (``out``: the reverse)
``InsuranceFunded a``      user available -a, insurance fund (account -2) available +a
                           (``out``: the reverse)
``MarginTransferred a``    user available -a, margin wallet available +a (``out``: the
                           reverse); a wallet is an account with a negative id (ADR 0020)
``Borrowed a``             lending pool available -a, wallet available +a
``Repaid a``               payer available -a (the wallet; the insurance fund when the
                           reason is ``insurance``), lending pool available +a
``LiquidationFinished``    ``fee`` in the valuation asset (named by the command's
                           ``LiquidationStarted``) and each ``taken_over`` amount: wallet
                           available -x, insurance fund available +x
=========================  ================================================================

Debts are claims, not balances: ``InterestCharged`` and a liquidation's ``pool_loss``
change what a wallet owes, not what any account holds, so they write no legs (the
margin history keeps them). Orders of a wallet (liquidation orders included, with
negative ids) are followed like any other order.

Legs of amount zero are not written. Why follow holds at all: ``OrderAmended.locked`` is
the order's new *total* hold and ``OrderCancelled`` / ``OrderReleased`` do not say which
asset they unlock, so the projector keeps ``order id -> (account, asset, amount)`` for
every open order in its own table (``ledger_holds``), written in the same transaction
as the legs. It does not read the orders projector's table: projectors advance
independently, so one must never depend on another's progress.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradewind.core.events import (
    AccountFrozen,
    AccountUnfrozen,
    AssetAdded,
    Borrowed,
    Deposited,
    Event,
    ExpensePaid,
    FeesSet,
    InsuranceFunded,
    InterestCharged,
    LiquidationFill,
    LiquidationFinished,
    LiquidationStarted,
    MarginAssetSet,
    MarginCall,
    MarginCrossSet,
    MarginSymbolSet,
    MarginTierSet,
    MarginTransferred,
    MarginWalletOpened,
    MarkPrice,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderReleased,
    OrderTriggered,
    PoolFunded,
    Rejected,
    Repaid,
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
from tradewind.services.projectors.base import ProjectionError, SymbolTable, pending
from tradewind.services.projectors.ports import (
    Batch,
    LedgerEntry,
    LedgerTx,
    LedgerWriter,
    OrderHold,
)

FEE_ACCOUNT = 0
POOL_ACCOUNT = -1
INSURANCE_ACCOUNT = -2
"""The core's lending-pool cash and insurance fund accounts (``core.margin``; restated
here because projectors take nothing but events from the core)."""

NO_MONEY: tuple[type[Event], ...] = (
    AccountFrozen,
    AccountUnfrozen,
    AssetAdded,
    FeesSet,
    TierSet,
    Rejected,
    OrderTriggered,
    SymbolHalted,
    SymbolResumed,
    MarginWalletOpened,
    MarginAssetSet,
    MarginSymbolSet,
    MarginCrossSet,
    MarginTierSet,
    InterestCharged,
    MarkPrice,
    MarginCall,
    LiquidationFill,
)
"""Events that move no money. Any event type not handled here and not listed stops the
projector: a new kind of balance change must not go unaccounted."""


class _Hold:
    __slots__ = ("account", "amount", "asset")

    def __init__(self, account: int, asset: str, amount: int) -> None:
        self.account = account
        self.asset = asset
        self.amount = amount


class _State:
    """Symbols and open holds as of ``offset`` (also what is stored, for minimal writes)."""

    __slots__ = ("holds", "offset", "stored", "symbols")

    def __init__(self, offset: int, symbols: SymbolTable, holds: Sequence[OrderHold]) -> None:
        self.offset = offset
        self.symbols = symbols
        self.holds = {h.order_id: _Hold(h.account, h.asset, h.amount) for h in holds}
        self.stored = set(self.holds)

    @classmethod
    async def load(cls, tx: LedgerTx, offset: int) -> _State:
        return cls(offset, SymbolTable(await tx.symbols()), await tx.holds())


class _Posting:
    """The legs and hold changes of one transaction."""

    def __init__(self, state: _State) -> None:
        self.state = state
        self.entries: list[LedgerEntry] = []
        self.dirty: set[int] = set()  # holds changed in this transaction
        self.ended: set[int] = set()  # orders that ended in this transaction
        self.over: set[int] = set()  # orders that ended in the current command
        self.valuation: dict[int, str] = {}  # wallet -> valuation asset of its liquidation
        # The current event's coordinates, set by `command`.
        self.seq = 0
        self.ts = 0
        self.index = 0
        self.leg = 0

    def post(
        self, account: int, bucket: str, asset: str, amount: int, kind: str, ref: str | None
    ) -> None:
        """One leg of the current event (none for a zero amount)."""
        if amount:
            self.entries.append(
                LedgerEntry(
                    self.seq,
                    self.index,
                    self.leg,
                    self.ts,
                    account,
                    bucket,
                    asset,
                    amount,
                    kind,
                    ref,
                )
            )
            self.leg += 1

    def move(
        self, account: int, asset: str, amount: int, src: str, dst: str, kind: str, ref: str | None
    ) -> None:
        """``amount`` from ``src`` to ``dst`` within one account."""
        self.post(account, src, asset, -amount, kind, ref)
        self.post(account, dst, asset, amount, kind, ref)

    def hold(self, oid: int) -> _Hold:
        try:
            return self.state.holds[oid]
        except KeyError:
            raise ProjectionError(f"seq {self.seq}: no open order {oid} holds funds") from None

    def unhold(self, oid: int, amount: int, asset: str | None = None) -> _Hold:
        h = self.hold(oid)
        if asset is not None and h.asset != asset:
            raise ProjectionError(f"seq {self.seq}: order {oid} holds {h.asset}, not {asset}")
        if amount > h.amount:
            raise ProjectionError(
                f"seq {self.seq}: order {oid} gives up {amount} {h.asset} but holds {h.amount}"
            )
        h.amount -= amount
        self.dirty.add(oid)
        return h

    def command(self, batch: Batch) -> None:
        self.seq, self.ts = batch.seq, batch.ts
        for index, e in enumerate(batch.events):
            self.index, self.leg = index, 0
            self.event(e)
        # An order filled or cancelled during the command holds nothing by its end.
        holds = self.state.holds
        for oid in self.over:
            h = holds.pop(oid)
            if h.amount:
                raise ProjectionError(
                    f"seq {self.seq}: order {oid} ended still holding {h.amount} {h.asset}"
                )
            self.dirty.discard(oid)
            self.ended.add(oid)
        self.over.clear()

    def event(self, e: Event) -> None:
        if isinstance(e, Trade):
            self.trade(e)
        elif isinstance(e, OrderAccepted):
            base, quote = self.state.symbols.assets(e.symbol)
            asset = quote if e.side == "buy" else base
            if e.id in self.state.holds:
                raise ProjectionError(f"seq {self.seq}: order {e.id} accepted while open")
            self.state.holds[e.id] = _Hold(e.user, asset, e.locked)
            self.dirty.add(e.id)
            self.ended.discard(e.id)  # an id may be reused once its order is over
            self.move(e.user, asset, e.locked, "available", "locked", "order_lock", f"order:{e.id}")
        elif isinstance(e, OrderCancelled):
            h = self.unhold(e.id, e.unlocked)
            ref = f"order:{e.id}"
            self.move(h.account, h.asset, e.unlocked, "locked", "available", "order_unlock", ref)
            self.over.add(e.id)
        elif isinstance(e, OrderReleased):
            h = self.unhold(e.id, e.amount)
            ref = f"order:{e.id}"
            self.move(h.account, h.asset, e.amount, "locked", "available", "order_release", ref)
        elif isinstance(e, OrderAmended):
            h = self.hold(e.id)
            delta = e.locked - h.amount
            h.amount = e.locked
            self.dirty.add(e.id)
            ref = f"order:{e.id}"
            self.move(h.account, h.asset, delta, "available", "locked", "order_amend", ref)
        elif isinstance(e, Deposited):
            self.move(e.user, e.asset, e.amount, "external", "available", "deposit", None)
        elif isinstance(e, WithdrawalHeld):
            ref = f"withdrawal:{e.id}"
            self.move(e.user, e.asset, e.amount, "available", "locked", "withdrawal_hold", ref)
        elif isinstance(e, WithdrawalReleased):
            ref = f"withdrawal:{e.id}"
            self.move(e.user, e.asset, e.amount, "locked", "available", "withdrawal_release", ref)
        elif isinstance(e, WithdrawalSettled):
            ref = f"withdrawal:{e.id}"
            self.move(e.user, e.asset, e.amount, "locked", "external", "withdrawal_settle", ref)
        elif isinstance(e, ExpensePaid):
            self.move(e.user, e.asset, e.amount, "available", "external", "expense", e.ref)
        elif isinstance(e, Transferred):
            self.post(e.user, "available", e.asset, -e.amount, "transfer", f"account:{e.to}")
            self.post(e.to, "available", e.asset, e.amount, "transfer", f"account:{e.user}")
        elif isinstance(e, SymbolAdded):
            self.state.symbols.learn(e)
        elif isinstance(e, (PoolFunded, InsuranceFunded, MarginTransferred)):
            self.margin_move(e)
        elif isinstance(e, Borrowed):
            ref = f"wallet:{e.wallet}"
            self.post(POOL_ACCOUNT, "available", e.asset, -e.amount, "borrow", ref)
            self.post(e.wallet, "available", e.asset, e.amount, "borrow", ref)
        elif isinstance(e, Repaid):
            payer = INSURANCE_ACCOUNT if e.reason == "insurance" else e.wallet
            ref = f"wallet:{e.wallet}"
            self.post(payer, "available", e.asset, -e.amount, "repay", ref)
            self.post(POOL_ACCOUNT, "available", e.asset, e.amount, "repay", ref)
        elif isinstance(e, LiquidationStarted):
            self.valuation[e.wallet] = e.valuation_asset
        elif isinstance(e, LiquidationFinished):
            self.liquidation(e)
        elif not isinstance(e, NO_MONEY):
            raise ProjectionError(f"seq {self.seq}: the ledger does not know {type(e).__name__}")

    def margin_move(self, e: PoolFunded | InsuranceFunded | MarginTransferred) -> None:
        """Spot account ``e.user`` to the pool, the insurance fund or a wallet (``in``),
        or back (``out``)."""
        if isinstance(e, PoolFunded):
            other, kind = POOL_ACCOUNT, "pool_fund"
        elif isinstance(e, InsuranceFunded):
            other, kind = INSURANCE_ACCOUNT, "insurance_fund"
        else:
            other, kind = e.wallet, "margin_transfer"
        sign = 1 if e.direction == "in" else -1
        self.post(e.user, "available", e.asset, -sign * e.amount, kind, f"account:{other}")
        self.post(other, "available", e.asset, sign * e.amount, kind, f"account:{e.user}")

    def liquidation(self, e: LiquidationFinished) -> None:
        ref = f"wallet:{e.wallet}"
        if e.fee:
            try:
                asset = self.valuation.pop(e.wallet)
            except KeyError:
                raise ProjectionError(
                    f"seq {self.seq}: wallet {e.wallet}'s liquidation fee has no valuation asset"
                ) from None
            self.post(e.wallet, "available", asset, -e.fee, "liquidation_fee", ref)
            self.post(INSURANCE_ACCOUNT, "available", asset, e.fee, "liquidation_fee", ref)
        for asset, amount in sorted(e.taken_over.items()):
            self.post(e.wallet, "available", asset, -amount, "liquidation_takeover", ref)
            self.post(INSURANCE_ACCOUNT, "available", asset, amount, "liquidation_takeover", ref)

    def trade(self, e: Trade) -> None:
        base, quote = self.state.symbols.assets(e.symbol)
        if e.taker_side == "buy":
            buyer, buy_id, buyer_fee = e.taker_user, e.taker_id, e.taker_fee
            seller, sell_id, seller_fee = e.maker_user, e.maker_id, e.maker_fee
        else:
            buyer, buy_id, buyer_fee = e.maker_user, e.maker_id, e.maker_fee
            seller, sell_id, seller_fee = e.taker_user, e.taker_id, e.taker_fee
        self.unhold(buy_id, e.quote, quote)
        self.unhold(sell_id, e.base, base)
        buy_ref, sell_ref = f"order:{buy_id}", f"order:{sell_id}"
        self.post(buyer, "locked", quote, -e.quote, "trade", buy_ref)
        self.post(seller, "available", quote, e.quote - seller_fee, "trade", sell_ref)
        self.post(FEE_ACCOUNT, "available", quote, seller_fee, "fee", sell_ref)
        self.post(seller, "locked", base, -e.base, "trade", sell_ref)
        self.post(buyer, "available", base, e.base - buyer_fee, "trade", buy_ref)
        self.post(FEE_ACCOUNT, "available", base, buyer_fee, "fee", buy_ref)
        if not e.maker_left:
            self.over.add(e.maker_id)
        if not e.taker_left:  # a market buy by quote amount: 0 after each level it takes
            self.over.add(e.taker_id)

    async def write(self, tx: LedgerTx) -> None:
        state = self.state
        await state.symbols.flush(tx)
        await tx.add_entries(self.entries)
        dropped = self.ended & state.stored
        if dropped:
            await tx.drop_holds(dropped)
        holds = state.holds
        changed = [
            OrderHold(oid, holds[oid].account, holds[oid].asset, holds[oid].amount)
            for oid in sorted(self.dirty)
        ]
        if changed:
            await tx.put_holds(changed)
        state.stored -= dropped
        state.stored.update(self.dirty)


class LedgerProjector:
    """Writes the double-entry ledger through a :class:`LedgerWriter`."""

    def __init__(self, store: LedgerWriter, name: str = "ledger") -> None:
        self._store = store
        self._name = name
        self._cache: _State | None = None

    @property
    def name(self) -> str:
        return self._name

    async def offset(self) -> int:
        return await self._store.offset(self._name)

    async def apply(self, batches: Sequence[Batch]) -> int:
        async with self._store.transaction(self._name) as tx:
            last = await tx.offset()
            todo = pending(self._name, last, batches)
            if not todo:
                return last
            cached, self._cache = self._cache, None
            state = cached if cached is not None and cached.offset == last else None
            if state is None:
                state = await _State.load(tx, last)
            posting = _Posting(state)
            for batch in todo:
                posting.command(batch)
            await posting.write(tx)
            end = todo[-1]
            await tx.advance(end.seq, end.ts)
        # Committed: the state now reflects the stored offset.
        state.offset = end.seq
        self._cache = state
        return end.seq
