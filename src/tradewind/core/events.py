"""Events: what the core reports after each command, in the order things happened.

Events carry every amount a consumer needs (ledger, history, market data) so that no
projector has to re-derive money from configuration. The runner publishes them with the
command's ``seq`` and ``ts``; events themselves stay small and positional.
"""

from __future__ import annotations

import msgspec


class Event(msgspec.Struct, frozen=True, tag_field="ev", gc=False):
    """Base of every event. Events hold only scalars (and dicts of them), so they can
    never be part of a reference cycle: ``gc=False`` keeps them out of the cyclic
    collector, which saves its tracking on each of the million events a busy core makes
    and the collections they would trigger."""


class AssetAdded(Event, frozen=True, tag="asset_added"):
    asset: str
    decimals: int


class SymbolAdded(Event, frozen=True, tag="symbol_added"):
    symbol: str
    base: str
    quote: str
    tick_size: int
    lot_size: int


class FeesSet(Event, frozen=True, tag="fees_set"):
    tier: int
    maker_bps: int
    taker_bps: int


class TierSet(Event, frozen=True, tag="tier_set"):
    user: int
    tier: int


class Deposited(Event, frozen=True, tag="deposited"):
    user: int
    asset: str
    amount: int


class ExpensePaid(Event, frozen=True, tag="expense_paid"):
    """``amount`` left the exchange from ``user``'s available funds (``Expense``)."""

    user: int
    asset: str
    amount: int
    ref: str


class WithdrawalHeld(Event, frozen=True, tag="withdrawal_held"):
    id: int
    user: int
    asset: str
    amount: int


class WithdrawalReleased(Event, frozen=True, tag="withdrawal_released"):
    id: int
    user: int
    asset: str
    amount: int


class WithdrawalSettled(Event, frozen=True, tag="withdrawal_settled"):
    id: int
    user: int
    asset: str
    amount: int


class Transferred(Event, frozen=True, tag="transferred"):
    user: int
    to: int
    asset: str
    amount: int


class Rejected(Event, frozen=True, tag="rejected"):
    """A command that changed nothing. ``reason`` is a stable code for clients;
    ``filter`` names the symbol filter for ``filter_violated``."""

    op: str
    id: int | None
    user: int | None
    reason: str
    message: str
    filter: str | None = None


class OrderAccepted(Event, frozen=True, tag="order_accepted"):
    """An order passed the risk checks; ``locked`` is what it holds.

    ``status`` is ``new`` for an order that goes to the book (or matches now) and
    ``untriggered`` for a stop or take-profit waiting for its trigger."""

    id: int
    user: int
    symbol: str
    side: str
    type: str
    price: int | None
    qty: int | None
    quote_qty: int | None
    tif: str
    stop_price: int | None
    display_qty: int | None
    client_id: str | None
    locked: int
    status: str


class OrderTriggered(Event, frozen=True, tag="order_triggered"):
    id: int
    user: int
    symbol: str
    last_price: int


class Trade(Event, frozen=True, tag="trade"):
    """One fill. Fees are in the asset each side receives: the buyer's in base, the
    seller's in quote. ``*_left`` is the order's open quantity after this fill."""

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


class OrderCancelled(Event, frozen=True, tag="order_cancelled"):
    """An order left the book or trigger list unfilled; ``unlocked`` went back to
    available. ``reason``: user, ioc, market_remainder, stp, expired, liquidation,
    frozen (the account was frozen)."""

    id: int
    user: int
    symbol: str
    left: int
    unlocked: int
    reason: str


class OrderReleased(Event, frozen=True, tag="order_released"):
    """Funds an order holds but no longer needs went back to available: a taker buy
    filled below its limit, or the unused protection band of a market order by
    quantity. An order's hold changes only through OrderAccepted, Trade,
    OrderCancelled, OrderAmended (its new total hold) and this event."""

    id: int
    user: int
    symbol: str
    amount: int


class OrderAmended(Event, frozen=True, tag="order_amended"):
    id: int
    user: int
    symbol: str
    price: int
    qty: int
    locked: int
    kept_priority: bool


class SymbolHalted(Event, frozen=True, tag="symbol_halted"):
    symbol: str


class SymbolResumed(Event, frozen=True, tag="symbol_resumed"):
    symbol: str


class AccountFrozen(Event, frozen=True, tag="account_frozen"):
    """``user`` is frozen: follows the ``OrderCancelled`` (reason ``frozen``) of every
    order and stop the user had, spot and margin wallets; ``cancelled`` counts them."""

    user: int
    cancelled: int


class AccountUnfrozen(Event, frozen=True, tag="account_unfrozen"):
    user: int


# ---------------------------------------------------------------------- margin (docs/margin.md)
#
# Margin wallets are accounts of their own with negative ids (``wallet``); every margin
# event names both the wallet and its owner ``user``. Order and trade events of a margin
# order carry the wallet id where spot events carry the user id (``OrderAccepted.user``,
# ``Trade.maker_user``/``taker_user``, ...): ``MarginWalletOpened`` maps it to its owner.
# Liquidation orders have negative order ids.


class MarginWalletOpened(Event, frozen=True, tag="margin_wallet_opened"):
    """A user's first transfer into a cross wallet or a symbol's isolated wallet opened
    it; ``wallet`` is its account id from now on (negative, never reused)."""

    wallet: int
    user: int
    kind: str
    symbol: str | None


class MarginAssetSet(Event, frozen=True, tag="margin_asset_set"):
    asset: str
    hourly_rate: int
    borrow_limit: int


class MarginSymbolSet(Event, frozen=True, tag="margin_symbol_set"):
    """``initial_level`` is derived from ``max_leverage``; levels in 1/10000."""

    symbol: str
    max_leverage: int
    initial_level: int
    margin_call_level: int
    liquidation_level: int
    liquidation_fee_bps: int
    liquidation_band_bps: int
    mark_max_age_ms: int
    mark_max_move_bps: int


class MarginCrossSet(Event, frozen=True, tag="margin_cross_set"):
    max_leverage: int
    initial_level: int
    margin_call_level: int
    liquidation_level: int
    liquidation_fee_bps: int


class MarginTierSet(Event, frozen=True, tag="margin_tier_set"):
    """Fee tier ``tier``'s leverage cap and the initial level it gives; both ``None``
    when the cap was cleared."""

    tier: int
    max_leverage: int | None
    initial_level: int | None


class PoolFunded(Event, frozen=True, tag="pool_funded"):
    """``amount`` moved between spot account ``user`` and the lending pool:
    ``direction`` ``in`` (funded) or ``out`` (defunded)."""

    user: int
    asset: str
    amount: int
    direction: str


class InsuranceFunded(Event, frozen=True, tag="insurance_funded"):
    """``amount`` moved between spot account ``user`` and the insurance fund:
    ``direction`` ``in`` or ``out``."""

    user: int
    asset: str
    amount: int
    direction: str


class MarginTransferred(Event, frozen=True, tag="margin_transferred"):
    """``direction`` ``in``: spot to wallet; ``out``: wallet to spot."""

    wallet: int
    user: int
    asset: str
    amount: int
    direction: str


class Borrowed(Event, frozen=True, tag="borrowed"):
    """``principal``/``interest``: the wallet's debt in ``asset`` afterwards.
    ``auto``: borrowed by an order's ``auto_borrow`` (its id in ``order_id``)."""

    wallet: int
    user: int
    asset: str
    amount: int
    principal: int
    interest: int
    order_id: int | None = None


class Repaid(Event, frozen=True, tag="repaid"):
    """``amount`` = ``interest_paid + principal_paid`` left the wallet for the pool;
    ``principal``/``interest`` are the debt afterwards. ``reason``: ``user``,
    ``auto_repay``, ``liquidation`` (from the wallet) or ``insurance`` (the insurance
    fund paid it after taking the wallet over)."""

    wallet: int
    user: int
    asset: str
    amount: int
    interest_paid: int
    principal_paid: int
    principal: int
    interest: int
    reason: str


class InterestCharged(Event, frozen=True, tag="interest_charged"):
    """Hourly interest added to a wallet's debt: ``hours`` hour boundaries were crossed
    (``until_hour`` = the last one, in hours since the epoch), ``amount`` =
    ``hours * ceil(principal * hourly_rate / 10**9)``."""

    wallet: int
    user: int
    asset: str
    amount: int
    principal: int
    interest: int
    hours: int
    until_hour: int


class MarkPrice(Event, frozen=True, tag="mark_price"):
    """A new mark for ``symbol`` (ticks). ``index`` is the median of ``inputs`` prices
    (book mid and fresh feeds); ``clamped`` when the move limit held the mark back."""

    symbol: str
    mark: int
    index: int
    inputs: int
    clamped: bool


class MarginCall(Event, frozen=True, tag="margin_call"):
    """The wallet's level fell to or below its margin-call level (once per crossing: it
    comes again only after the level has been above it). Levels in 1/10000, the
    wallet's ``level`` rounded down."""

    wallet: int
    user: int
    level: int
    margin_call_level: int
    liquidation_level: int


class LiquidationStarted(Event, frozen=True, tag="liquidation_started"):
    """The wallet's level is at or below its liquidation level. ``assets`` and
    ``liabilities`` are valued at the marks in valuation-asset minor units (assets
    rounded down, liabilities up). The wallet's orders are cancelled next
    (``OrderCancelled`` reason ``liquidation``)."""

    wallet: int
    user: int
    level: int
    liquidation_level: int
    assets: int
    liabilities: int
    valuation_asset: str


class LiquidationFill(Event, frozen=True, tag="liquidation_fill"):
    """One closing IOC order of a liquidation, after its ``Trade`` events: ``order_id``
    (negative), ``qty`` lots asked, ``filled`` lots traded, ``limit`` the band price."""

    wallet: int
    user: int
    order_id: int
    symbol: str
    side: str
    limit: int
    qty: int
    filled: int


class LiquidationFinished(Event, frozen=True, tag="liquidation_finished"):
    """The end of a liquidation, after the ``Repaid`` events of its debts.

    ``fee``: valuation-asset units charged to the insurance fund from what the wallet
    had left. ``taken_over``: what the wallet still held when a debt could not be repaid
    (the insurance fund takes it). ``insurance_paid``: debt the insurance fund repaid.
    ``pool_loss``: debt nobody could pay, written off by the lending pool (the
    socialised loss). ``left``: what stays in the wallet for the user."""

    wallet: int
    user: int
    fee: int
    taken_over: dict[str, int]
    insurance_paid: dict[str, int]
    pool_loss: dict[str, int]
    left: dict[str, int]


AnyEvent = (
    AssetAdded
    | SymbolAdded
    | FeesSet
    | TierSet
    | Deposited
    | ExpensePaid
    | WithdrawalHeld
    | WithdrawalReleased
    | WithdrawalSettled
    | Transferred
    | Rejected
    | OrderAccepted
    | OrderTriggered
    | Trade
    | OrderCancelled
    | OrderReleased
    | OrderAmended
    | SymbolHalted
    | SymbolResumed
    | AccountFrozen
    | AccountUnfrozen
    | MarginWalletOpened
    | MarginAssetSet
    | MarginSymbolSet
    | MarginCrossSet
    | MarginTierSet
    | PoolFunded
    | InsuranceFunded
    | MarginTransferred
    | Borrowed
    | Repaid
    | InterestCharged
    | MarkPrice
    | MarginCall
    | LiquidationStarted
    | LiquidationFill
    | LiquidationFinished
)
