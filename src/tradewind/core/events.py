"""Events: what the core reports after each command, in the order things happened.

Events carry every amount a consumer needs (ledger, history, market data) so that no
projector has to re-derive money from configuration. The runner publishes them with the
command's ``seq`` and ``ts``; events themselves stay small and positional.
"""

from __future__ import annotations

import msgspec


class Event(msgspec.Struct, frozen=True, tag_field="ev"):
    """Base of every event."""


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
    available. ``reason``: user, ioc, market_remainder, stp, expired."""

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


AnyEvent = (
    AssetAdded
    | SymbolAdded
    | FeesSet
    | TierSet
    | Deposited
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
)
