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

Side = Literal["buy", "sell"]
OrderType = Literal[
    "limit", "market", "stop_market", "stop_limit", "take_profit", "take_profit_limit"
]
TimeInForce = Literal["GTC", "IOC", "FOK", "GTD"]
Stp = Literal["cancel_taker", "cancel_maker", "cancel_both", "none"]


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


class Halt(Command, frozen=True, tag="halt"):
    symbol: SymbolName


class Resume(Command, frozen=True, tag="resume"):
    symbol: SymbolName


class Tick(Command, frozen=True, tag="tick"):
    """Advances time only: lets GTD orders expire when nothing else happens."""


AnyCommand = (
    AddAsset
    | AddSymbol
    | SetFees
    | SetTier
    | Deposit
    | WithdrawHold
    | WithdrawRelease
    | WithdrawSettle
    | Transfer
    | Place
    | Amend
    | Cancel
    | CancelAll
    | Halt
    | Resume
    | Tick
)
