"""Commands: the only way to change the core's state.

Every command is an immutable msgspec struct tagged by ``op``, so one JSON line of the
command file, one journal record and one bus message decode straight into it. The
sequencer stamps ``seq`` and ``ts`` (milliseconds); the core never reads a clock, so the
same stamped commands always give the same state and events.

Amounts are integers: minor units of an asset, ``price`` in ticks and ``qty`` in lots of
the symbol. Fields are validated at decode time for type and sign; the core checks the
rest and rejects with a reason code rather than raising.
"""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

MAX_INT = 2**63 - 1
"""Upper bound of every integer in a command, and of any asset's total in the core: it
keeps every amount, balance and sum encodable in the journal and snapshots (msgpack
integers are 64-bit). Choose an asset's ``decimals`` so its supply fits (18-decimal
tokens: use fewer decimals on the exchange, as exchanges do)."""
Positive = Annotated[int, msgspec.Meta(ge=1, le=MAX_INT)]
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=MAX_INT)]
Bps = Annotated[int, msgspec.Meta(ge=0, le=10_000)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[A-Z0-9]+$")]
SymbolName = Annotated[
    str, msgspec.Meta(min_length=3, max_length=65, pattern=r"^[A-Z0-9]+-[A-Z0-9]+$")
]
ClientId = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
DepositRef = Annotated[str, msgspec.Meta(min_length=1, max_length=160)]
ExpenseRef = Annotated[str, msgspec.Meta(min_length=1, max_length=64)]
"""64: the ledger keeps an expense's ref as its legs' ref (``ledger_entries.ref``)."""

Side = Literal["buy", "sell"]
OrderType = Literal[
    "limit", "market", "stop_market", "stop_limit", "take_profit", "take_profit_limit"
]
TimeInForce = Literal["GTC", "IOC", "FOK", "GTD"]
Stp = Literal["cancel_taker", "cancel_maker", "cancel_both", "none"]
Wallet = Literal["spot", "cross", "isolated"]
MarginWallet = Literal["cross", "isolated"]
Feeds = Annotated[
    tuple[tuple[Annotated[int, msgspec.Meta(ge=1, le=MAX_INT)], NonNegative], ...],
    msgspec.Meta(max_length=16),
]


class Command(
    msgspec.Struct,
    frozen=True,
    kw_only=True,
    tag_field="op",
    forbid_unknown_fields=True,
    omit_defaults=True,
):
    """Base of every command; ``seq`` and ``ts`` are set by the sequencer."""

    seq: NonNegative = 0
    ts: NonNegative = 0


class AddAsset(Command, frozen=True, tag="asset"):
    asset: Name
    decimals: Annotated[int, msgspec.Meta(ge=0, le=18)]


class AddSymbol(Command, frozen=True, tag="symbol"):
    symbol: SymbolName
    base: Name
    quote: Name
    tick_size: Positive
    lot_size: Positive
    min_qty: Positive | None = None
    max_qty: Positive | None = None
    min_notional: Positive | None = None
    price_band_bps: Bps | None = None
    market_band_bps: Bps = 500


class SetFees(Command, frozen=True, tag="fees"):
    maker_bps: Bps
    taker_bps: Bps
    tier: Annotated[int, msgspec.Meta(ge=0, le=100)] = 0


class SetTier(Command, frozen=True, tag="tier"):
    user: Positive
    tier: Annotated[int, msgspec.Meta(ge=0, le=100)]


class Deposit(Command, frozen=True, tag="deposit"):
    """Credits ``amount``. ``ref``, when given, names the external deposit (a chain
    watcher's ``network:txid:index``): the core applies a ref once and rejects it ever
    after with ``duplicate_deposit``, so a credit retried after a crash cannot double."""

    user: NonNegative
    asset: Name
    amount: Positive
    ref: DepositRef | None = None


class Expense(Command, frozen=True, tag="expense"):
    """Pays ``amount`` out of ``user``'s available funds to the outside world: money
    the exchange itself spent (a network fee its hot wallet paid, ADR 0034). It leaves
    the exchange like a settled withdrawal, but counts as ``expensed``, not withdrawn.
    ``ref`` names what was paid (``network-fee:withdrawal:12``): the core applies a ref
    once and rejects it ever after with ``duplicate_expense``, so a booking retried
    after a crash cannot pay twice. Which accounts may pay is the caller's rule (the
    exchange's own accounts); the core only checks the funds."""

    user: NonNegative
    asset: Name
    amount: Positive
    ref: ExpenseRef


class WithdrawHold(Command, frozen=True, tag="withdraw_hold"):
    """Locks funds for a pending withdrawal; ``id`` names the withdrawal."""

    id: Positive
    user: NonNegative
    asset: Name
    amount: Positive


class WithdrawRelease(Command, frozen=True, tag="withdraw_release"):
    """A withdrawal failed or was cancelled: its funds return to available."""

    id: Positive


class WithdrawSettle(Command, frozen=True, tag="withdraw_settle"):
    """A withdrawal was paid out: its locked funds leave the exchange."""

    id: Positive


class Transfer(Command, frozen=True, tag="transfer"):
    user: NonNegative
    to: NonNegative
    asset: Name
    amount: Positive


class Place(Command, frozen=True, tag="place"):
    id: Positive
    user: Positive
    symbol: SymbolName
    side: Side
    type: OrderType = "limit"
    price: Positive | None = None
    qty: Positive | None = None
    quote_qty: Positive | None = None
    tif: TimeInForce = "GTC"
    expire_ts: NonNegative | None = None
    post_only: bool = False
    stop_price: Positive | None = None
    display_qty: Positive | None = None
    stp: Stp = "cancel_taker"
    client_id: ClientId | None = None
    wallet: Wallet = "spot"
    """``cross`` or ``isolated`` (with ``symbol``'s isolated wallet) places from the user's
    margin wallet instead of the spot account (docs/margin.md). Omitted for spot, so spot
    commands encode exactly as before."""
    auto_borrow: bool = False
    """Margin only: borrow what the order's hold lacks first (same checks as ``borrow``)."""
    auto_repay: bool = False
    """Margin only: once the command's matching is done, repay the wallet's debts in the
    symbol's two assets from what is available."""


class Amend(Command, frozen=True, tag="amend"):
    """``qty`` is the new open quantity; ``price``, when given, the new price."""

    id: Positive
    user: Positive
    symbol: SymbolName
    qty: Positive
    price: Positive | None = None


class Cancel(Command, frozen=True, tag="cancel"):
    id: Positive
    user: Positive
    symbol: SymbolName


class CancelAll(Command, frozen=True, tag="cancel_all"):
    user: Positive
    symbol: SymbolName | None = None


class Freeze(Command, frozen=True, tag="freeze"):
    """Freezes ``user``'s account (the back office, docs/security.md): every open order
    and stop of the user, spot and margin wallets, is cancelled (reason ``frozen``) in
    this command, and from then on ``place``, ``amend``, ``withdraw_hold``, ``transfer``
    from the user, ``borrow`` and ``margin_transfer`` out are rejected
    ``account_frozen``. Deposits, cancels, repays and liquidations still happen. A frozen
    account again is rejected ``already_frozen``."""

    user: Positive


class Unfreeze(Command, frozen=True, tag="unfreeze"):
    """Lifts a freeze; an account that is not frozen is rejected ``not_frozen``."""

    user: Positive


class Halt(Command, frozen=True, tag="halt"):
    symbol: SymbolName


class Resume(Command, frozen=True, tag="resume"):
    symbol: SymbolName


class Tick(Command, frozen=True, tag="tick"):
    """Advances time only: lets GTD orders expire and hourly margin interest be charged
    when nothing else happens."""


# ---------------------------------------------------------------------- margin (docs/margin.md)


class MarginAsset(Command, frozen=True, tag="margin_asset"):
    """Makes ``asset`` borrowable from the lending pool, or changes its terms.

    ``hourly_rate`` is the interest per hour in parts per billion of the principal
    (``RATE_SCALE = 10**9``: 417 is 0.0000417 % an hour, about 3.65 % a year);
    ``borrow_limit`` caps one wallet's debt in the asset (principal plus interest), in
    minor units."""

    asset: Name
    hourly_rate: NonNegative
    borrow_limit: NonNegative


class MarginSymbol(Command, frozen=True, tag="margin_symbol"):
    """Enables margin on ``symbol`` (its isolated wallets, and its base asset in cross
    wallets) or changes its terms. All margin symbols share one quote asset, the
    valuation asset (the first one sets it).

    Levels are in 1/10000 (``11_000`` is a margin level of 1.1). ``max_leverage`` (2..10;
    above 10 is rejected ``leverage_too_high``) sets the initial level
    ``ceil(10000 * L / (L - 1))``; it must exceed ``margin_call_level``, which must
    exceed ``liquidation_level``, which must exceed 10000. The mark price takes feeds no
    older than ``mark_max_age_ms`` before the command's ts and moves at most
    ``mark_max_move_bps`` per ``mark``; liquidation orders trade within
    ``liquidation_band_bps`` of the mark; the liquidation fee is
    ``liquidation_fee_bps`` of the liabilities' value."""

    symbol: SymbolName
    max_leverage: Positive
    margin_call_level: Positive
    liquidation_level: Positive
    liquidation_fee_bps: Bps = 0
    liquidation_band_bps: Bps = 500
    mark_max_age_ms: Positive = 60_000
    mark_max_move_bps: Annotated[int, msgspec.Meta(ge=1, le=10_000)] = 1_000


class MarginCross(Command, frozen=True, tag="margin_cross"):
    """Terms of every cross-margin wallet (same rules as ``MarginSymbol``'s levels);
    cross wallets cannot be used before this is set."""

    max_leverage: Positive
    margin_call_level: Positive
    liquidation_level: Positive
    liquidation_fee_bps: Bps = 0


class MarginTier(Command, frozen=True, tag="margin_tier"):
    """Caps the leverage of every margin wallet whose owner is in fee tier ``tier``:
    such a wallet's max leverage is the least of its symbol's (or cross) and this cap,
    and its initial level follows from that (docs/margin.md). ``max_leverage`` 2..10
    (above 10 ``leverage_too_high``); the tier must exist (``unknown_tier``). Margin-call
    and liquidation levels stay the symbol's."""

    tier: NonNegative
    max_leverage: Positive


class MarginTierClear(Command, frozen=True, tag="margin_tier_clear"):
    """Removes fee tier ``tier``'s leverage cap (its wallets get their symbol's)."""

    tier: NonNegative


class PoolFund(Command, frozen=True, tag="pool_fund"):
    """The exchange lends: moves available ``amount`` from spot account ``user`` into
    the lending pool of ``asset``."""

    user: NonNegative
    asset: Name
    amount: Positive


class PoolDefund(Command, frozen=True, tag="pool_defund"):
    """Moves ``amount`` of the pool's cash (not lent out) back to spot account ``user``."""

    user: NonNegative
    asset: Name
    amount: Positive


class InsuranceFund(Command, frozen=True, tag="insurance_fund"):
    """Moves available ``amount`` from spot account ``user`` into the insurance fund."""

    user: NonNegative
    asset: Name
    amount: Positive


class InsuranceDefund(Command, frozen=True, tag="insurance_defund"):
    """Moves ``amount`` of the insurance fund back to spot account ``user``."""

    user: NonNegative
    asset: Name
    amount: Positive


class MarginTransfer(Command, frozen=True, tag="margin_transfer"):
    """Moves available funds between ``user``'s spot account and a margin wallet:
    ``direction`` ``in`` is spot to margin, ``out`` margin to spot. ``symbol`` names the
    isolated wallet (required with ``wallet="isolated"``, not allowed with ``cross``).
    The first transfer in opens the wallet (``MarginWalletOpened``). A transfer out must
    leave a wallet with debts at or above its initial level."""

    user: Positive
    asset: Name
    amount: Positive
    direction: Literal["in", "out"]
    wallet: MarginWallet
    symbol: SymbolName | None = None


class Borrow(Command, frozen=True, tag="borrow"):
    """Borrows ``amount`` of ``asset`` from the lending pool into the wallet: its
    available balance and its principal grow by ``amount``. Checks: the asset is
    borrowable, the wallet's debt stays within ``borrow_limit``, the pool holds the cash,
    and the wallet's level afterwards is at least its initial level."""

    user: Positive
    asset: Name
    amount: Positive
    wallet: MarginWallet
    symbol: SymbolName | None = None


class Repay(Command, frozen=True, tag="repay"):
    """Repays ``amount`` of the wallet's debt in ``asset`` from its available balance,
    accrued interest first, then principal; more than is owed is rejected
    ``repay_exceeds_debt``."""

    user: Positive
    asset: Name
    amount: Positive
    wallet: MarginWallet
    symbol: SymbolName | None = None


class Mark(Command, frozen=True, tag="mark"):
    """A mark-price update of a margin symbol. ``feeds`` are external index prices
    ``(price in ticks, feed ts in ms)``; those older than the symbol's
    ``mark_max_age_ms`` before this command's ``ts`` are ignored. The index is the
    median of the book's mid (when both sides have orders) and the fresh feeds; the mark
    moves towards it by at most ``mark_max_move_bps`` of the previous mark. Then every
    wallet the new mark puts at or below its liquidation level is liquidated."""

    symbol: SymbolName
    feeds: Feeds = ()


AnyCommand = (
    AddAsset
    | AddSymbol
    | SetFees
    | SetTier
    | Deposit
    | Expense
    | WithdrawHold
    | WithdrawRelease
    | WithdrawSettle
    | Transfer
    | Place
    | Amend
    | Cancel
    | CancelAll
    | Freeze
    | Unfreeze
    | Halt
    | Resume
    | Tick
    | MarginAsset
    | MarginSymbol
    | MarginCross
    | MarginTier
    | MarginTierClear
    | PoolFund
    | PoolDefund
    | InsuranceFund
    | InsuranceDefund
    | MarginTransfer
    | Borrow
    | Repay
    | Mark
)
