"""The REST gateway (DESIGN §6): a FastAPI app over the services it is given.

Invariants:
- stateless: everything it knows comes from the :class:`RestContext` (services and
  readers built by the runtime's composition root); it never imports the runtime or an
  adapter, so the same app serves embedded and distributed mode;
- decimals are converted to the core's integers here and nowhere else
  (:mod:`~tradewind.gateways.rest.units`), with the symbol's tick and lot and the
  asset's decimals, and back to strings on the way out;
- every private route authenticates first (``Authorization: Bearer`` or the
  ``TW-KEY``/``TW-TIMESTAMP``/``TW-SIGNATURE`` signature over exactly the bytes
  received) and checks the permission it needs (read or trade) before doing anything;
- a refused request changes nothing: conversions and checks run before the one command
  a route may submit; errors are ``{"code", "message"}`` (:mod:`.errors`);
- lists are pages, newest first, with an opaque ``next_cursor`` to pass back as
  ``?cursor=``.

(No ``from __future__ import annotations`` here: FastAPI reads the route signatures,
which use aliases local to :func:`create_app`, at definition time.)
"""

import re
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from starlette.responses import Response

from tradewind.gateways.metrics import Metrics
from tradewind.gateways.rest import schemas as S
from tradewind.gateways.rest.account import install_account_routes
from tradewind.gateways.rest.auth import (
    AuthSettings,
    Principal,
    Reader,
    SessionUser,
    Trader,
    install_auth,
)
from tradewind.gateways.rest.errors import JSON, ApiError, install_error_handlers
from tradewind.gateways.rest.fastlane import FastLane, OrderFastLane
from tradewind.gateways.rest.fees import install_fee_routes
from tradewind.gateways.rest.funding import install_funding_routes
from tradewind.gateways.rest.middleware import BodyLimitMiddleware
from tradewind.gateways.rest.params import refuse_unknown_query
from tradewind.gateways.rest.security_events import install_security_events
from tradewind.gateways.rest.units import (
    MAX_INT,
    format_minor,
    format_price,
    format_qty,
    to_lots,
    to_minor,
    to_ticks,
)
from tradewind.gateways.web import install_web
from tradewind.services.accounts import AccountsService
from tradewind.services.catalog import BalanceReader, MarketCatalog, MarketInfo
from tradewind.services.funding.deposit_addresses import DepositAddressService
from tradewind.services.history import OPEN_STATUSES, ORDER_STATUSES, FillView, OrderView
from tradewind.services.marketdata.ports import MarketDataReader
from tradewind.services.marketdata.types import INTERVALS
from tradewind.services.trading import CoreRejected, TradingService

TRADES_WINDOW = 1000
_TRADE_CURSOR = re.compile(r"([0-9]{1,19})-([0-9]{1,9})")

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@dataclass
class RestContext:
    """What the REST gateway needs; built by the composition root."""

    accounts: AccountsService
    trading: TradingService
    catalog: MarketCatalog
    balances: BalanceReader
    market_data: MarketDataReader | None
    metrics: Metrics
    now_ms: Callable[[], int]
    readiness: Callable[[], Awaitable[Mapping[str, bool]]]
    demo: bool = False
    faucet_max_units: int = 100_000
    """Largest faucet amount per request, in whole units."""
    faucet_balance_cap_units: int = 10_000_000
    """The faucet refuses to take an available balance above this many whole units."""
    max_body_bytes: int = 65_536
    not_before_ms: int = 0
    """Signed requests stamped earlier are refused: set to the start time, it keeps a
    signature used before a restart (when the replay cache was in memory) from being
    replayed after it."""
    title: str = "Tradewind"
    extra_routes: list[Callable[[FastAPI], None]] = field(default_factory=list)
    fee_rates: Callable[[], tuple[int, int]] | None = None
    """The base tier's ``(maker_bps, taker_bps)`` for ``GET /api/v1/fees``; ``None``:
    that route answers 503."""
    user_fee_tier: Callable[[int], tuple[int, int, int]] | None = None
    """A user's ``(tier, maker_bps, taker_bps)`` for ``GET /api/v1/fees/mine``; ``None``:
    503."""
    margin_wallet_kind: Callable[[int], str | None] | None = None
    """``cross`` or ``isolated`` for a margin wallet's account id (< 0), where known: the
    user's order and fill lists add it as ``margin_wallet`` to ``"wallet": "margin"``."""
    web_ui: bool = True
    """Serve the built web UI (``web/dist``) when there is one (:mod:`..web`)."""
    funding: DepositAddressService | None = None
    """Deposit addresses and network rules (docs/funding.md); ``None``: those routes
    answer 503 ``funding_unavailable``."""


# -- output shapes ----------------------------------------------------------------------


def _opt_price(ticks: int | None, m: MarketInfo) -> str | None:
    return None if ticks is None else format_price(ticks, m)


def _opt_qty(lots: int | None, m: MarketInfo) -> str | None:
    return None if lots is None else format_qty(lots, m)


def market_out(m: MarketInfo) -> dict[str, Any]:
    return {
        "symbol": m.symbol,
        "base": m.base,
        "quote": m.quote,
        "status": m.status,
        "base_decimals": m.base_decimals,
        "quote_decimals": m.quote_decimals,
        "tick_size": format_price(1, m),
        "lot_size": format_qty(1, m),
        "min_quantity": _opt_qty(m.min_qty, m),
        "max_quantity": _opt_qty(m.max_qty, m),
        "min_notional": (
            None if m.min_notional is None else format_minor(m.min_notional, m.quote_decimals)
        ),
        "price_band_bps": m.price_band_bps,
        "market_band_bps": m.market_band_bps,
        "last_price": _opt_price(m.last_price, m),
    }


_MARGIN: dict[str, Any] = {"wallet": "margin"}
"""Added to an order or fill of one of the user's margin wallets (an account < 0,
docs/margin.md); spot ones are shaped as before."""


def order_out(o: OrderView, m: MarketInfo) -> dict[str, Any]:
    buy = o.side == "buy"
    out = {
        "id": o.id,
        "client_order_id": o.client_id,
        "symbol": o.symbol,
        "side": o.side,
        "type": o.type,
        "time_in_force": o.tif,
        "price": _opt_price(o.price, m),
        "stop_price": _opt_price(o.stop_price, m),
        "quantity": _opt_qty(o.qty, m),
        "quote_quantity": (
            None if o.quote_qty is None else format_minor(o.quote_qty, m.quote_decimals)
        ),
        "display_quantity": _opt_qty(o.display_qty, m),
        "filled_quantity": format_qty(o.filled_qty, m),
        "filled_quote_quantity": format_minor(o.filled_quote, m.quote_decimals),
        "fee": format_minor(o.fee, m.base_decimals if buy else m.quote_decimals),
        "fee_asset": m.base if buy else m.quote,
        "status": o.status,
        "cancel_reason": o.cancel_reason,
        "created_at": o.created_ts,
        "updated_at": o.updated_ts,
    }
    return out | _MARGIN if o.user < 0 else out


def fill_out(f: FillView, m: MarketInfo) -> dict[str, Any]:
    fee_decimals = m.base_decimals if f.fee_asset == m.base else m.quote_decimals
    out = {
        "id": f.id,
        "order_id": f.order_id,
        "symbol": f.symbol,
        "side": f.side,
        "role": f.role,
        "price": format_price(f.price, m),
        "quantity": format_qty(f.qty, m),
        "quote_quantity": format_minor(f.quote_amount, m.quote_decimals),
        "fee": format_minor(f.fee, fee_decimals),
        "fee_asset": f.fee_asset,
        "time": f.ts,
        "seq": f.seq,
    }
    return out | _MARGIN if f.user < 0 else out


def _cursor(text: str | None) -> int | None:
    if text is None:
        return None
    if not text.isdigit() or len(text) > 19 or int(text) == 0:
        raise ApiError(400, "invalid_cursor", "cursor must be a next_cursor of an earlier page")
    return int(text)


def _next(cursor: int | None) -> str | None:
    return None if cursor is None else str(cursor)


Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (1-1000).")]
Cursor = Annotated[
    str | None, Query(max_length=40, description="next_cursor of the previous page.")
]
SymbolPath = Annotated[str, Path(max_length=65, description="BASE-QUOTE")]
OrderId = Annotated[int, Path(ge=1, le=MAX_INT)]

_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": S.ErrorOut} for code in (400, 401, 403, 404, 409, 413, 422, 429, 503, 504)
}


def create_app(ctx: RestContext, *, lifespan: Lifespan | None = None) -> FastAPI:
    """The REST app; ``lifespan`` starts and stops what the context depends on."""
    app = FastAPI(
        title=ctx.title,
        version="1",
        description=(
            "Tradewind REST API. Amounts and prices are decimal strings; errors are "
            '`{"code", "message"}`. Authenticate with `Authorization: Bearer <token>` '
            "(from /api/v1/auth/login) or an API key: `TW-KEY`, `TW-TIMESTAMP` (ms) and "
            "`TW-SIGNATURE` = hex HMAC-SHA256 of `timestamp + METHOD + path_with_query + "
            "body` with the key's secret."
        ),
        lifespan=lifespan,
        responses=_ERRORS,
        dependencies=[Depends(refuse_unknown_query)],
        # Tradewind configures no OpenTelemetry; left on, FastAPI asks OTel for its three
        # global providers on every request (~16 us, docs/performance.md).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    # signed order placements and cancels skip the router (inside every middleware)
    fast_lane = FastLane()
    app.add_middleware(OrderFastLane, lane=fast_lane)
    app.add_middleware(BodyLimitMiddleware, max_bytes=ctx.max_body_bytes)

    install_auth(app, AuthSettings(ctx.accounts, ctx.now_ms, ctx.not_before_ms))
    install_account_routes(app, ctx.accounts)
    install_security_events(app, ctx.accounts)
    accounts = ctx.accounts
    trading = ctx.trading
    catalog = ctx.catalog
    metrics = ctx.metrics

    def market_or_404(symbol: str) -> MarketInfo:
        m = catalog.market(symbol)
        if m is None:
            raise ApiError(404, "unknown_symbol", f"unknown symbol {symbol!r}")
        return m

    def market_of_body(symbol: str) -> MarketInfo:
        m = catalog.market(symbol)
        if m is None:
            raise ApiError(400, "unknown_symbol", f"unknown symbol {symbol!r}")
        return m

    def markets_by_symbol() -> dict[str, MarketInfo]:
        return {m.symbol: m for m in catalog.markets()}

    # -- auth and API keys ------------------------------------------------------------

    auth = APIRouter(prefix="/api/v1", tags=["account"])

    def key_out(info: Any, secret: str | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "key_id": info.key_id,
            "label": info.label,
            "permissions": sorted(info.permissions),
            "ip_allowlist": None if info.ip_allowlist is None else list(info.ip_allowlist),
            "created_at": info.created_at_ms,
            "key_type": info.key_type,
            "expires_at": info.expires_at_ms,
        }
        if secret is not None:
            out["secret"] = secret
        return out

    @auth.post("/api-keys", status_code=201, response_model=S.NewApiKeyOut)
    async def create_api_key(body: S.ApiKeyIn, principal: SessionUser) -> Response:
        new = await accounts.create_api_key(
            principal.user_id,
            body.label,
            body.permissions,
            body.ip_allowlist,
            totp=body.totp,
            public_key=body.public_key,
            expires_at_ms=body.expires_at,
        )
        return JSON(key_out(new.info, new.secret), status_code=201)

    @auth.get("/api-keys", response_model=list[S.ApiKeyOut])
    async def list_api_keys(principal: SessionUser) -> Response:
        keys = await accounts.list_api_keys(principal.user_id)
        return JSON([key_out(k) for k in keys])

    @auth.delete("/api-keys/{key_id}", status_code=204)
    async def revoke_api_key(
        key_id: Annotated[str, Path(max_length=64)], principal: SessionUser
    ) -> Response:
        await accounts.revoke_api_key(principal.user_id, key_id)
        return Response(status_code=204)

    # -- markets (public) -------------------------------------------------------------

    public = APIRouter(prefix="/api/v1/markets", tags=["market data"])

    @public.get("", response_model=list[S.MarketOut])
    async def list_markets(
        symbol: Annotated[str | None, Query(max_length=65)] = None,
        base: Annotated[str | None, Query(max_length=32)] = None,
        quote: Annotated[str | None, Query(max_length=32)] = None,
        status: Annotated[Literal["trading", "halted"] | None, Query()] = None,
    ) -> Response:
        found = [
            market_out(m)
            for m in catalog.markets()
            if (symbol is None or m.symbol == symbol)
            and (base is None or m.base == base)
            and (quote is None or m.quote == quote)
            and (status is None or m.status == status)
        ]
        return JSON(found)

    @public.get("/{symbol}", response_model=S.MarketOut)
    async def get_market(symbol: SymbolPath) -> Response:
        return JSON(market_out(market_or_404(symbol)))

    def market_data() -> MarketDataReader:
        if ctx.market_data is None:
            raise ApiError(503, "market_data_unavailable", "market data is not available")
        return ctx.market_data

    @public.get("/{symbol}/book", response_model=S.BookOut)
    async def get_book(
        symbol: SymbolPath,
        depth: Annotated[int, Query(ge=1, le=1000, description="Levels per side.")] = 100,
    ) -> Response:
        m = market_or_404(symbol)
        book = await market_data().get_book(symbol, depth)
        if book is None:
            return JSON({"symbol": symbol, "seq": 0, "ts": 0, "bids": [], "asks": []})
        return JSON(
            {
                "symbol": symbol,
                "seq": book.update_id,
                "ts": book.ts,
                "bids": [[format_price(p, m), format_qty(q, m)] for p, q in book.bids],
                "asks": [[format_price(p, m), format_qty(q, m)] for p, q in book.asks],
            }
        )

    @public.get("/{symbol}/trades", response_model=S.TradesPage)
    async def get_trades(symbol: SymbolPath, limit: Limit = 100, cursor: Cursor = None) -> Response:
        m = market_or_404(symbol)
        before: tuple[int, int] | None = None
        if cursor is not None:
            match = _TRADE_CURSOR.fullmatch(cursor)
            if match is None:
                raise ApiError(400, "invalid_cursor", "cursor must be a next_cursor of a page")
            before = (int(match.group(1)), int(match.group(2)))
        trades = await market_data().get_trades(symbol, TRADES_WINDOW)
        newest_first = [t for t in reversed(trades) if before is None or (t.seq, t.idx) < before]
        page = newest_first[:limit]
        more = len(newest_first) > limit
        items = [
            {
                "id": f"{t.seq}-{t.idx}",
                "price": format_price(t.price, m),
                "quantity": format_qty(t.qty, m),
                "quote_quantity": format_minor(t.quote, m.quote_decimals),
                "side": t.side,
                "time": t.ts,
            }
            for t in page
        ]
        next_cursor = f"{page[-1].seq}-{page[-1].idx}" if more and page else None
        return JSON({"items": items, "next_cursor": next_cursor})

    @public.get("/{symbol}/candles", response_model=list[S.CandleOut])
    async def get_candles(
        symbol: SymbolPath,
        interval: Annotated[str, Query(max_length=8, description="1m 5m 15m 1h 4h 1d")] = "1m",
        limit: Annotated[int, Query(ge=1, le=1000)] = 500,
        start: Annotated[int | None, Query(ge=0, le=2**53)] = None,
        end: Annotated[int | None, Query(ge=0, le=2**53)] = None,
    ) -> Response:
        m = market_or_404(symbol)
        if interval not in INTERVALS:
            raise ApiError(
                400, "invalid_interval", f"interval must be one of {', '.join(INTERVALS)}"
            )
        candles = await market_data().get_candles(symbol, interval, limit, start, end)
        return JSON(
            [
                {
                    "open_time": c.open_ts,
                    "open": format_price(c.open, m),
                    "high": format_price(c.high, m),
                    "low": format_price(c.low, m),
                    "close": format_price(c.close, m),
                    "volume": format_qty(c.volume, m),
                    "quote_volume": format_minor(c.quote_volume, m.quote_decimals),
                    "trades": c.count,
                }
                for c in candles
            ]
        )

    @public.get("/{symbol}/ticker", response_model=S.TickerOut)
    async def get_ticker(symbol: SymbolPath) -> Response:
        m = market_or_404(symbol)
        reader = market_data()
        ticker = await reader.get_ticker(symbol)
        book = await reader.get_book(symbol, 1)
        best_bid = book.bids[0][0] if book is not None and book.bids else None
        best_ask = book.asks[0][0] if book is not None and book.asks else None
        out: dict[str, Any] = {
            "symbol": symbol,
            "time": 0,
            "last": _opt_price(m.last_price, m),
            "open": None,
            "high": None,
            "low": None,
            "change": None,
            "volume": format_qty(0, m),
            "quote_volume": format_minor(0, m.quote_decimals),
            "trades": 0,
            "best_bid": _opt_price(best_bid, m),
            "best_ask": _opt_price(best_ask, m),
        }
        if ticker is not None:
            change = ticker.change
            out.update(
                time=ticker.ts,
                last=_opt_price(ticker.last, m),
                open=_opt_price(ticker.open, m),
                high=_opt_price(ticker.high, m),
                low=_opt_price(ticker.low, m),
                change=None
                if change is None
                else ("-" if change < 0 else "") + format_price(abs(change), m),
                volume=format_qty(ticker.volume, m),
                quote_volume=format_minor(ticker.quote_volume, m.quote_decimals),
                trades=ticker.count,
            )
        return JSON(out)

    # -- balances, orders, fills (private) ---------------------------------------------

    private = APIRouter(prefix="/api/v1", tags=["trading"])

    @private.get("/balances", response_model=list[S.BalanceOut])
    async def balances(principal: Reader) -> Response:
        out = []
        for b in await ctx.balances.balances(principal.user_id):
            asset = catalog.asset(b.asset)
            decimals = asset.decimals if asset is not None else 0
            out.append(
                {
                    "asset": b.asset,
                    "available": format_minor(b.available, decimals),
                    "locked": format_minor(b.locked, decimals),
                }
            )
        return JSON(out)

    @private.post("/orders", status_code=201, response_model=S.OrderOut)
    async def place_order(body: S.OrderIn, principal: Trader) -> Response:
        m = market_of_body(body.symbol)
        price = None if body.price is None else to_ticks(body.price, m, "price")
        stop = None if body.stop_price is None else to_ticks(body.stop_price, m, "stop_price")
        qty = None if body.quantity is None else to_lots(body.quantity, m, "quantity")
        display = (
            None
            if body.display_quantity is None
            else to_lots(body.display_quantity, m, "display_quantity")
        )
        quote_qty = (
            None
            if body.quote_quantity is None
            else to_minor(body.quote_quantity, m.quote_decimals, "quote_quantity")
        )
        try:
            order = await trading.place(
                principal.user_id,
                m.symbol,
                body.side,
                body.type,
                price=price,
                qty=qty,
                quote_qty=quote_qty,
                tif=body.time_in_force,
                expire_ts=body.expire_time,
                stop_price=stop,
                post_only=body.post_only,
                display_qty=display,
                stp=body.self_trade_prevention,
                client_id=body.client_order_id,
                wallet=body.wallet,
                auto_borrow=body.auto_borrow,
                auto_repay=body.auto_repay,
            )
        except CoreRejected:
            metrics.orders.labels(result="rejected").inc()
            raise
        metrics.orders.labels(result="accepted").inc()
        return JSON(order_out(order, m), status_code=201)

    def parse_statuses(status: str | None) -> frozenset[str] | None:
        if status is None:
            return None
        chosen: set[str] = set()
        for part in status.split(","):
            name = part.strip()
            if name == "open":
                chosen |= OPEN_STATUSES
            elif name in ORDER_STATUSES:
                chosen.add(name)
            else:
                raise ApiError(
                    400,
                    "invalid_status",
                    f"status must be open or one of {', '.join(ORDER_STATUSES)}",
                )
        return frozenset(chosen)

    @private.get("/orders", response_model=S.OrdersPage)
    async def list_orders(
        principal: Reader,
        symbol: Annotated[str | None, Query(max_length=65)] = None,
        status: Annotated[
            str | None, Query(max_length=80, description="open, or statuses separated by ,")
        ] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response:
        statuses = parse_statuses(status)
        page = await trading.list_orders(
            principal.user_id, symbol=symbol, statuses=statuses, limit=limit, before=_cursor(cursor)
        )
        markets = markets_by_symbol()
        items = [
            with_kind(order_out(o, markets[o.symbol]), o.user)
            for o in page.items
            if o.symbol in markets
        ]
        return JSON({"items": items, "next_cursor": _next(page.next_cursor)})

    def with_kind(out: dict[str, Any], account: int) -> dict[str, Any]:
        """A margin wallet's order or fill also says which wallet (docs/margin.md)."""
        kind = ctx.margin_wallet_kind(account) if account < 0 and ctx.margin_wallet_kind else None
        return out if kind is None else out | {"margin_wallet": kind}

    async def own_order(principal: Principal, order_id: int) -> OrderView:
        order = await trading.get_order(principal.user_id, order_id)
        if order is None:
            raise ApiError(404, "unknown_order", f"no order {order_id}")
        return order

    @private.get("/orders/{order_id}", response_model=S.OrderOut)
    async def get_order(order_id: OrderId, principal: Reader) -> Response:
        order = await own_order(principal, order_id)
        return JSON(with_kind(order_out(order, market_of_body(order.symbol)), order.user))

    @private.delete("/orders/{order_id}", response_model=S.OrderOut)
    async def cancel_order(order_id: OrderId, principal: Trader) -> Response:
        order = await trading.cancel(principal.user_id, order_id)
        return JSON(order_out(order, market_of_body(order.symbol)))

    # the same two functions answer signed requests in the fast lane (fastlane.py)
    fast_lane.bind(place=place_order, cancel=cancel_order, routers=(private, app.router))

    @private.delete("/orders", response_model=S.CancelAllOut)
    async def cancel_all(
        principal: Trader, symbol: Annotated[str | None, Query(max_length=65)] = None
    ) -> Response:
        if symbol is not None:
            market_of_body(symbol)
        cancelled = await trading.cancel_all(principal.user_id, symbol)
        return JSON({"cancelled": cancelled})

    @private.patch("/orders/{order_id}", response_model=S.OrderOut)
    async def amend_order(order_id: OrderId, body: S.AmendIn, principal: Trader) -> Response:
        if body.price is None and body.quantity is None:
            raise ApiError(400, "invalid_order", "give a new price, a new quantity or both")
        order = await own_order(principal, order_id)
        m = market_of_body(order.symbol)
        price = None if body.price is None else to_ticks(body.price, m, "price")
        qty = None if body.quantity is None else to_lots(body.quantity, m, "quantity")
        after = await trading.amend(principal.user_id, order_id, price=price, qty=qty)
        return JSON(order_out(after, m))

    @private.get("/fills", response_model=S.FillsPage)
    async def list_fills(
        principal: Reader,
        symbol: Annotated[str | None, Query(max_length=65)] = None,
        order_id: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response:
        page = await trading.list_fills(
            principal.user_id,
            symbol=symbol,
            order_id=order_id,
            limit=limit,
            before=_cursor(cursor),
        )
        markets = markets_by_symbol()
        items = [
            with_kind(fill_out(f, markets[f.symbol]), f.user)
            for f in page.items
            if f.symbol in markets
        ]
        return JSON({"items": items, "next_cursor": _next(page.next_cursor)})

    # -- demo faucet --------------------------------------------------------------------

    demo = APIRouter(prefix="/api/v1/demo", tags=["demo"])

    @demo.post("/faucet", response_model=S.FaucetOut)
    async def faucet(body: S.FaucetIn, principal: Trader) -> Response:
        asset = catalog.asset(body.asset)
        if asset is None:
            raise ApiError(400, "unknown_asset", f"unknown asset {body.asset!r}")
        amount = to_minor(body.amount, asset.decimals, "amount")
        unit = 10**asset.decimals
        if amount > ctx.faucet_max_units * unit:
            raise ApiError(
                400,
                "faucet_limit",
                f"the faucet gives at most {ctx.faucet_max_units} {asset.name} per request",
            )
        held = {b.asset: b.available for b in await ctx.balances.balances(principal.user_id)}
        if held.get(asset.name, 0) + amount > ctx.faucet_balance_cap_units * unit:
            raise ApiError(
                400,
                "faucet_limit",
                f"the faucet tops up to at most {ctx.faucet_balance_cap_units} {asset.name}",
            )
        await trading.deposit(principal.user_id, asset.name, amount)
        after = {b.asset: b.available for b in await ctx.balances.balances(principal.user_id)}
        return JSON(
            {
                "asset": asset.name,
                "amount": format_minor(amount, asset.decimals),
                "available": format_minor(after.get(asset.name, 0), asset.decimals),
            }
        )

    # -- operations ---------------------------------------------------------------------

    ops = APIRouter(tags=["operations"])

    @ops.get("/healthz", response_model=S.HealthOut)
    async def healthz() -> Response:
        return JSON({"status": "ok"})

    @ops.get("/readyz", response_model=S.ReadyOut)
    async def readyz() -> Response:
        checks = dict(await ctx.readiness())
        if all(checks.values()):
            return JSON({"ready": True, "checks": checks})
        failing = ", ".join(name for name, ok in checks.items() if not ok)
        return JSON(
            {
                "code": "not_ready",
                "message": f"not ready: {failing}",
                "ready": False,
                "checks": checks,
            },
            status_code=503,
        )

    @ops.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    app.include_router(auth)
    app.include_router(public)
    app.include_router(private)
    if ctx.demo:
        app.include_router(demo)
    app.include_router(ops)
    for add in ctx.extra_routes:
        add(app)
    install_fee_routes(app, ctx.fee_rates, ctx.user_fee_tier)
    install_funding_routes(app, ctx.funding)
    if ctx.web_ui:
        install_web(app, demo=ctx.demo)
    return app
