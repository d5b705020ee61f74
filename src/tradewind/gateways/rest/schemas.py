"""Request and response bodies of the REST API (DESIGN §6), as pydantic models.

Invariants:
- request models are strict and closed: a field of the wrong JSON type (a number where
  a decimal string is expected, a string for a boolean) or a field the endpoint does not
  take is refused before any service runs;
- decimal amounts and prices are strings both ways; ids are integers; times are
  integer milliseconds since the Unix epoch;
- response models document what the endpoints return (OpenAPI); the hot endpoints
  build the same shapes directly (see ``app.py``) and tests check they agree.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Side = Literal["buy", "sell"]
OrderType = Literal[
    "limit", "market", "stop_market", "stop_limit", "take_profit", "take_profit_limit"
]
TimeInForce = Literal["GTC", "IOC", "FOK", "GTD"]
Stp = Literal["cancel_taker", "cancel_maker", "cancel_both", "none"]
Permission = Literal["read", "trade", "withdraw"]
DECIMAL_PATTERN = r"^([0-9]*[1-9][0-9]*(\.[0-9]+)?|[0-9]+\.[0-9]*[1-9][0-9]*)$"
DecimalStr = Annotated[
    str,
    Field(
        max_length=64,
        description='A positive plain decimal, e.g. "0.015"',
        # documented, checked by the gateway (units.py) for precise error codes
        json_schema_extra={"pattern": DECIMAL_PATTERN},
    ),
]
SymbolStr = Annotated[str, Field(max_length=65, description='BASE-QUOTE, e.g. "BTC-USDT"')]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ApiKeyIn(_Request):
    label: Annotated[str, Field(max_length=256)]
    permissions: Annotated[list[Permission], Field(min_length=1, max_length=3)]
    ip_allowlist: Annotated[
        list[Annotated[str, Field(max_length=64)]] | None, Field(max_length=64)
    ] = None
    totp: Annotated[str | None, Field(max_length=32)] = Field(
        default=None, description="2FA code or recovery code; needed when 2FA is enabled."
    )
    public_key: Annotated[str | None, Field(max_length=1024)] = Field(
        default=None,
        description="Ed25519 public key (PEM, or 32 bytes in base64 or hex): the key then "
        "signs with your private key (TW-SIGNATURE: hex or base64 Ed25519 signature of the "
        "same payload) and no secret is issued.",
    )
    expires_at: Annotated[int | None, Field(ge=0, le=2**53)] = Field(
        default=None, description="When the key stops working (ms since the epoch)."
    )


class OrderIn(_Request):
    symbol: SymbolStr
    side: Side
    type: OrderType = "limit"
    price: DecimalStr | None = None
    quantity: DecimalStr | None = None
    quote_quantity: DecimalStr | None = Field(
        default=None, description="Market buys only: spend this much quote."
    )
    time_in_force: TimeInForce = "GTC"
    expire_time: Annotated[int | None, Field(ge=0, le=2**53)] = Field(
        default=None, description="GTD only: expiry in ms since the epoch."
    )
    stop_price: DecimalStr | None = None
    post_only: bool = False
    client_order_id: Annotated[str | None, Field(min_length=1, max_length=64)] = None
    display_quantity: DecimalStr | None = Field(
        default=None, description="Iceberg: the quantity shown in the book."
    )
    self_trade_prevention: Stp = "cancel_taker"
    wallet: Literal["spot", "cross", "isolated"] = Field(
        default="spot",
        description="Margin: place from the cross wallet or the symbol's isolated wallet "
        "(docs/margin.md).",
    )
    auto_borrow: bool = Field(
        default=False, description="Margin: borrow what the order's hold lacks first."
    )
    auto_repay: bool = Field(
        default=False, description="Margin: repay the wallet's debts after matching."
    )


class AmendIn(_Request):
    price: DecimalStr | None = None
    quantity: DecimalStr | None = Field(
        default=None, description="The new open quantity (default: unchanged)."
    )


class FaucetIn(_Request):
    asset: Annotated[str, Field(max_length=32)]
    amount: DecimalStr


# -- responses ------------------------------------------------------------------------


class ErrorOut(BaseModel):
    code: str
    message: str
    filter: str | None = None


class ApiKeyOut(BaseModel):
    key_id: str
    label: str
    permissions: list[str]
    ip_allowlist: list[str] | None
    created_at: int
    key_type: Literal["hmac", "ed25519"] = "hmac"
    expires_at: int | None = None


class NewApiKeyOut(ApiKeyOut):
    secret: str | None = None
    """Shown once; absent for an Ed25519 key."""


class MarketOut(BaseModel):
    symbol: str
    base: str
    quote: str
    status: Literal["trading", "halted"]
    base_decimals: int
    quote_decimals: int
    tick_size: str
    lot_size: str
    min_quantity: str | None
    max_quantity: str | None
    min_notional: str | None
    price_band_bps: int | None
    market_band_bps: int
    last_price: str | None


Level = Annotated[
    list[str],
    Field(min_length=2, max_length=2, description="[price, quantity]"),
]
"""A book level. Not ``tuple[str, str]``: OpenAPI 3.1 spells a tuple ``prefixItems``,
which schemathesis rewrites into a draft-4 ``items`` list and then fails to load as
Draft 2020-12 (an InvalidSchema whenever a fuzz case got a 200 from the book)."""


class BookOut(BaseModel):
    symbol: str
    seq: int = Field(description="Update id of the book: WebSocket diffs continue from it.")
    ts: int
    bids: list[Level]
    asks: list[Level]


class TradeOut(BaseModel):
    id: str
    price: str
    quantity: str
    quote_quantity: str
    side: Side
    time: int


class TradesPage(BaseModel):
    items: list[TradeOut]
    next_cursor: str | None


class CandleOut(BaseModel):
    open_time: int
    open: str
    high: str
    low: str
    close: str
    volume: str
    quote_volume: str
    trades: int


class TickerOut(BaseModel):
    symbol: str
    time: int
    last: str | None
    open: str | None
    high: str | None
    low: str | None
    change: str | None
    volume: str
    quote_volume: str
    trades: int
    best_bid: str | None
    best_ask: str | None


class BalanceOut(BaseModel):
    asset: str
    available: str
    locked: str


class OrderOut(BaseModel):
    id: int
    client_order_id: str | None
    symbol: str
    side: Side
    type: OrderType
    time_in_force: TimeInForce
    price: str | None
    stop_price: str | None
    quantity: str | None
    quote_quantity: str | None
    display_quantity: str | None
    filled_quantity: str
    filled_quote_quantity: str
    fee: str
    fee_asset: str
    status: Literal["untriggered", "new", "partially_filled", "filled", "cancelled"]
    cancel_reason: str | None
    created_at: int
    updated_at: int
    wallet: Literal["margin"] | None = Field(
        default=None, description="Present on an order or fill of one of your margin wallets."
    )


class OrdersPage(BaseModel):
    items: list[OrderOut]
    next_cursor: str | None


class CancelAllOut(BaseModel):
    cancelled: list[int]


class FillOut(BaseModel):
    id: int
    order_id: int
    symbol: str
    side: Side
    role: Literal["maker", "taker"]
    price: str
    quantity: str
    quote_quantity: str
    fee: str
    fee_asset: str
    time: int
    seq: int
    wallet: Literal["margin"] | None = Field(
        default=None, description="Present on an order or fill of one of your margin wallets."
    )


class FillsPage(BaseModel):
    items: list[FillOut]
    next_cursor: str | None


class FaucetOut(BaseModel):
    asset: str
    amount: str
    available: str


class HealthOut(BaseModel):
    status: str


class ReadyOut(BaseModel):
    ready: bool
    checks: dict[str, bool]
    code: str | None = None
    message: str | None = None
