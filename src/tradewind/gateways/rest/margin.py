"""``/api/v1/margin/...``: margin accounts for users (docs/margin.md, "Using margin").

Invariants:
- private routes authenticate first and check ``read`` (views, history) or ``trade``
  (transfer, borrow, repay, cancel) before anything else;
- decimals become minor units with the asset's decimals here (:mod:`.units`: no
  rounding, a value off the asset's precision is refused) before the one command a
  route submits; a refused request changes nothing; the core's rejection reason is the
  error ``code`` (status from ``trading.REJECTION_STATUS``);
- figures are the core's, formatted back: amounts with the asset's decimals, levels
  (1/10000) with four decimals, prices with the symbol's tick decimals.

(No ``from __future__ import annotations``: FastAPI reads the route signatures.)
"""

import contextlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tradewind.core.commands import (
    MarginAsset,
    MarginCross,
    MarginSymbol,
    MarginTier,
    MarginTierClear,
)
from tradewind.core.margin import MAX_LEVERAGE
from tradewind.gateways.rest.app import fill_out, order_out
from tradewind.gateways.rest.auth import Reader, Trader
from tradewind.gateways.rest.errors import JSON, ApiError
from tradewind.gateways.rest.schemas import DecimalStr, SymbolStr
from tradewind.gateways.rest.staff import staff_guards
from tradewind.gateways.rest.units import MAX_INT, format_minor, format_price, format_qty, to_minor
from tradewind.services.admin import Actor, AdminService
from tradewind.services.audit import AuditLog
from tradewind.services.catalog import MarketCatalog, MarketInfo
from tradewind.services.history import OPEN_STATUSES, OrderView
from tradewind.services.margin import (
    MarginConfig,
    MarginRecord,
    MarginService,
    MarginUnavailable,
    SymbolTermsView,
    WalletState,
)
from tradewind.services.trading import CoreRejected, TradingService

LEVEL_DECIMALS = 4
RATE_DECIMALS = 9

WalletKind = Literal["cross", "isolated"]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class TransferIn(_Request):
    asset: Annotated[str, Field(max_length=32)]
    amount: DecimalStr
    direction: Literal["in", "out"] = Field(description="in: spot to margin; out: back")
    wallet: WalletKind = "cross"
    symbol: SymbolStr | None = Field(default=None, description="The isolated wallet's symbol")


class LoanIn(_Request):
    asset: Annotated[str, Field(max_length=32)]
    amount: DecimalStr
    wallet: WalletKind = "cross"
    symbol: SymbolStr | None = Field(default=None, description="The isolated wallet's symbol")


def _level(value: int | None) -> str | None:
    return None if value is None else format_minor(value, LEVEL_DECIMALS)


def install_margin_routes(
    app: FastAPI,
    margin: MarginService,
    trading: TradingService,
    catalog: MarketCatalog,
) -> None:
    """Adds the margin routes to ``app``."""

    def decimals(asset: str) -> int:
        info = catalog.asset(asset)
        return 0 if info is None else info.decimals

    def amount(asset: str, value: int) -> str:
        return format_minor(value, decimals(asset))

    def asset_or_400(name: str) -> int:
        info = catalog.asset(name)
        if info is None:
            raise ApiError(400, "unknown_asset", f"unknown asset {name!r}")
        return info.decimals

    def market(symbol: str) -> MarketInfo | None:
        return catalog.market(symbol)

    def wallet_args(wallet: str, symbol: str | None) -> tuple[WalletKind, str | None]:
        if wallet == "isolated":
            if symbol is None:
                raise ApiError(400, "invalid_wallet", "an isolated wallet is named by its symbol")
            if market(symbol) is None:
                raise ApiError(400, "unknown_symbol", f"unknown symbol {symbol!r}")
            return "isolated", symbol
        if symbol is not None:
            raise ApiError(400, "invalid_wallet", "the cross wallet takes no symbol")
        return "cross", None

    def price_out(symbol: str, ticks: int | None) -> str | None:
        m = market(symbol)
        if ticks is None or m is None:
            return None
        return format_price(ticks, m)

    def terms_out(t: SymbolTermsView) -> dict[str, Any]:
        out: dict[str, Any] = {
            "max_leverage": t.max_leverage,
            "initial_level": _level(t.initial_level),
            "margin_call_level": _level(t.margin_call_level),
            "liquidation_level": _level(t.liquidation_level),
            "liquidation_fee_bps": t.liquidation_fee_bps,
        }
        if t.symbol:
            out = {"symbol": t.symbol, **out, "mark_price": price_out(t.symbol, t.mark)}
        return out

    def config_out(c: MarginConfig) -> dict[str, Any]:
        return {
            "valuation_asset": c.valuation_asset,
            "symbols": [terms_out(t) for t in c.symbols],
            "cross": None if c.cross is None else terms_out(c.cross),
            "assets": [
                {
                    "asset": a.asset,
                    "hourly_rate": format_minor(a.hourly_rate, RATE_DECIMALS),
                    "borrow_limit": amount(a.asset, a.borrow_limit),
                    "pool_available": amount(a.asset, a.pool_available),
                }
                for a in c.assets
            ],
            "tier_caps": [{"tier": t, "max_leverage": lev} for t, lev in c.tier_caps.items()],
        }

    def wallet_out(w: WalletState, valuation: str | None) -> dict[str, Any]:
        liq = None
        if w.liquidation is not None:
            sym, direction, price = w.liquidation
            liq = {
                "symbol": sym,
                "when_mark": "at_or_below" if direction > 0 else "at_or_above",
                "price": price_out(sym, price),
            }
        val = valuation or ""
        return {
            "wallet": w.kind,
            "symbol": w.symbol,
            "balances": [
                {"asset": a, "available": amount(a, av), "locked": amount(a, lk)}
                for a, (av, lk) in sorted(w.balances.items())
            ],
            "liabilities": [
                {
                    "asset": loan.asset,
                    "principal": amount(loan.asset, loan.principal),
                    "interest": amount(loan.asset, loan.interest),
                    "total": amount(loan.asset, loan.principal + loan.interest),
                }
                for loan in w.loans
            ],
            "valuation_asset": valuation,
            "assets_value": amount(val, w.assets_value),
            "liabilities_value": amount(val, w.liabilities_value),
            "margin_level": _level(w.level),
            "max_leverage": w.max_leverage,
            "initial_level": _level(w.initial_level),
            "margin_call_level": _level(w.margin_call_level),
            "liquidation_level": _level(w.liquidation_level),
            "margin_call": w.called,
            "liquidation_price": liq,
        }

    def account_out(user: int) -> dict[str, Any]:
        config = margin.config()
        wallets = margin.account(user)
        marks = {t.symbol: price_out(t.symbol, t.mark) for t in config.symbols}
        return {
            "valuation_asset": config.valuation_asset,
            "wallets": [wallet_out(w, config.valuation_asset) for w in wallets],
            "mark_prices": [{"symbol": s, "mark_price": p} for s, p in sorted(marks.items())],
        }

    def one_wallet(user: int, kind: str, symbol: str | None) -> dict[str, Any] | None:
        config = margin.config()
        for w in margin.account(user):
            if w.kind == kind and w.symbol == symbol:
                return wallet_out(w, config.valuation_asset)
        return None

    async def wallet_after(user: int, kind: str, symbol: str | None) -> dict[str, Any] | None:
        """The wallet after a command (``None`` where no figures can be had: the
        command was applied all the same)."""
        try:
            await margin.ready(user)
            return one_wallet(user, kind, symbol)
        except MarginUnavailable:
            return None

    def record_out(r: MarginRecord) -> dict[str, Any]:
        d = dict(r.data)
        out: dict[str, Any] = {
            "id": r.id,
            "type": r.kind,
            "wallet": r.wallet_kind,
            "symbol": r.symbol,
            "time": r.ts,
            "seq": r.seq,
        }
        if r.asset is not None:
            out["asset"] = r.asset
            out["amount"] = None if r.amount is None else amount(r.asset, r.amount)
            for key in ("principal", "interest", "interest_paid", "principal_paid"):
                if key in d:
                    d[key] = amount(r.asset, int(d[key]))  # type: ignore[call-overload]
        if r.kind in ("margin_call", "liquidation_started"):
            # the same names as the account view and the WebSocket notices
            if "level" in d:
                d["margin_level"] = _level(int(d.pop("level")))  # type: ignore[call-overload]
            for key in ("margin_call_level", "liquidation_level"):
                if key in d:
                    d[key] = _level(int(d[key]))  # type: ignore[call-overload]
            if "valuation_asset" in d:
                val = str(d["valuation_asset"])
                for key in ("assets", "liabilities"):
                    d[f"{key}_value"] = amount(val, int(d.pop(key)))  # type: ignore[call-overload]
        elif r.kind == "liquidation_fill":
            m = market(str(d.get("symbol")))
            if m is not None:
                d["limit"] = format_price(int(d["limit"]), m)  # type: ignore[call-overload]
                d["qty"] = format_qty(int(d["qty"]), m)  # type: ignore[call-overload]
                d["filled"] = format_qty(int(d["filled"]), m)  # type: ignore[call-overload]
        elif r.kind == "liquidation_finished":
            config = None
            with contextlib.suppress(MarginUnavailable):
                config = margin.config()
            fee_asset = config.valuation_asset if config is not None else None
            if fee_asset is not None:
                d["fee"] = amount(fee_asset, int(d["fee"]))  # type: ignore[call-overload]
                d["fee_asset"] = fee_asset
            for key in ("taken_over", "insurance_paid", "pool_loss", "left"):
                part = d.get(key)
                if isinstance(part, dict):
                    d[key] = {a: amount(a, int(v)) for a, v in sorted(part.items())}
        out.update(d)
        return out

    def cursor_of(text: str | None) -> int | None:
        if text is None:
            return None
        if not text.isdigit() or len(text) > 19 or int(text) == 0:
            raise ApiError(400, "invalid_cursor", "cursor must be a next_cursor of an earlier page")
        return int(text)

    router = APIRouter(prefix="/api/v1/margin", tags=["margin"])
    Limit = Annotated[int, Query(ge=1, le=1000, description="Page size (1-1000).")]
    Cursor = Annotated[str | None, Query(max_length=40, description="next_cursor of a page.")]
    AssetQ = Annotated[str, Query(max_length=32)]
    WalletQ = Annotated[WalletKind, Query(description="cross or isolated")]
    SymbolQ = Annotated[str | None, Query(max_length=65, description="isolated wallet")]

    @router.get("/config")
    async def get_config() -> Response:
        """Margin symbols (leverage, levels, mark price), cross terms, borrowable assets
        (hourly rate as a fraction, borrow limit per wallet, pool cash). Public."""
        await margin.ready(None)
        return JSON(config_out(margin.config()))

    @router.get("/account")
    async def get_account(principal: Reader) -> Response:
        """Every margin wallet of the caller: balances, liabilities with interest,
        values, margin level, thresholds, liquidation price where defined."""
        await margin.ready(principal.user_id)
        return JSON(account_out(principal.user_id))

    @router.post("/transfer")
    async def transfer(body: TransferIn, principal: Trader) -> Response:
        units = to_minor(body.amount, asset_or_400(body.asset), "amount")
        kind, symbol = wallet_args(body.wallet, body.symbol)
        seq = await margin.transfer(
            principal.user_id, body.asset, units, body.direction, kind, symbol
        )
        return JSON({"seq": seq, "wallet": await wallet_after(principal.user_id, kind, symbol)})

    @router.post("/borrow")
    async def borrow(body: LoanIn, principal: Trader) -> Response:
        units = to_minor(body.amount, asset_or_400(body.asset), "amount")
        kind, symbol = wallet_args(body.wallet, body.symbol)
        seq = await margin.borrow(principal.user_id, body.asset, units, kind, symbol)
        return JSON({"seq": seq, "wallet": await wallet_after(principal.user_id, kind, symbol)})

    @router.post("/repay")
    async def repay(body: LoanIn, principal: Trader) -> Response:
        units = to_minor(body.amount, asset_or_400(body.asset), "amount")
        kind, symbol = wallet_args(body.wallet, body.symbol)
        seq = await margin.repay(principal.user_id, body.asset, units, kind, symbol)
        return JSON({"seq": seq, "wallet": await wallet_after(principal.user_id, kind, symbol)})

    @router.get("/max-borrowable")
    async def max_borrowable(
        principal: Reader, asset: AssetQ, wallet: WalletQ = "cross", symbol: SymbolQ = None
    ) -> Response:
        asset_or_400(asset)
        kind, sym = wallet_args(wallet, symbol)
        await margin.ready(principal.user_id)
        value = margin.max_borrowable(principal.user_id, kind, sym, asset)
        return JSON({"asset": asset, "wallet": kind, "symbol": sym, "amount": amount(asset, value)})

    @router.get("/max-transferable")
    async def max_transferable(
        principal: Reader, asset: AssetQ, wallet: WalletQ = "cross", symbol: SymbolQ = None
    ) -> Response:
        """The most of ``asset`` a transfer out of the wallet accepts now."""
        asset_or_400(asset)
        kind, sym = wallet_args(wallet, symbol)
        await margin.ready(principal.user_id)
        value = margin.max_transferable(principal.user_id, kind, sym, asset)
        return JSON({"asset": asset, "wallet": kind, "symbol": sym, "amount": amount(asset, value)})

    def history_route(what: str, doc: str) -> None:
        async def handler(
            principal: Reader,
            asset: Annotated[str | None, Query(max_length=32)] = None,
            limit: Limit = 100,
            cursor: Cursor = None,
        ) -> Response:
            page = await margin.history(
                principal.user_id, what, asset=asset, limit=limit, before=cursor_of(cursor)
            )
            if any(r.kind == "liquidation_finished" for r in page.items):
                with contextlib.suppress(MarginUnavailable):
                    await margin.ready(None)  # the fee's asset
            next_cursor = None if page.next_cursor is None else str(page.next_cursor)
            return JSON({"items": [record_out(r) for r in page.items], "next_cursor": next_cursor})

        handler.__doc__ = doc
        router.add_api_route(f"/{what}", handler, methods=["GET"], name=f"margin_{what}")

    history_route("interest", "Hourly interest charged, newest first.")
    history_route("loans", "Borrows and repays (by you, auto-repay, liquidation, insurance).")
    history_route("liquidations", "Margin calls and every step of each liquidation.")
    history_route("transfers", "Transfers between spot and margin wallets.")

    # -- a wallet's orders and fills ------------------------------------------------

    async def wallet_id(user: int, wallet: str, symbol: str | None) -> int | None:
        kind, sym = wallet_args(wallet, symbol)
        for wid, k, s in await margin.wallet_ids(user):
            if k == kind and s == sym:
                return wid
        return None

    @router.get("/orders")
    async def list_orders(
        principal: Reader,
        wallet: WalletQ = "cross",
        symbol: SymbolQ = None,
        open_only: Annotated[bool, Query(alias="open")] = False,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response:
        """Orders of one margin wallet (``symbol`` names the isolated one), newest first."""
        wid = await wallet_id(principal.user_id, wallet, symbol)
        if wid is None:
            return JSON({"items": [], "next_cursor": None})
        await trading.caught_up(principal.user_id)  # the owner's own last command
        page = await trading.history.list_orders(
            wid,
            statuses=OPEN_STATUSES if open_only else None,
            limit=limit,
            before=cursor_of(cursor),
        )
        kind = {"margin_wallet": wallet}  # as the user's own lists mark it (app.py)
        items = [order_out(o, m) | kind for o in page.items if (m := market(o.symbol)) is not None]
        next_cursor = None if page.next_cursor is None else str(page.next_cursor)
        return JSON({"items": items, "next_cursor": next_cursor})

    @router.get("/fills")
    async def list_fills(
        principal: Reader,
        wallet: WalletQ = "cross",
        symbol: SymbolQ = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response:
        wid = await wallet_id(principal.user_id, wallet, symbol)
        if wid is None:
            return JSON({"items": [], "next_cursor": None})
        await trading.caught_up(principal.user_id)  # the owner's own last command
        page = await trading.history.list_fills(wid, limit=limit, before=cursor_of(cursor))
        kind = {"margin_wallet": wallet}
        items = [fill_out(f, m) | kind for f in page.items if (m := market(f.symbol)) is not None]
        next_cursor = None if page.next_cursor is None else str(page.next_cursor)
        return JSON({"items": items, "next_cursor": next_cursor})

    @router.delete("/orders/{order_id}")
    async def cancel_order(
        order_id: Annotated[int, Path(ge=1, le=MAX_INT)], principal: Trader
    ) -> Response:
        """Cancel an open order of one of your margin wallets."""
        user = principal.user_id
        found: tuple[int, OrderView] | None = None
        for wid, _, _ in await margin.wallet_ids(user):
            order = await trading.get_order(wid, order_id)
            if order is not None:
                found = (wid, order)
                break
        if found is None:
            raise ApiError(404, "unknown_order", f"no margin order {order_id}")
        wid, order = found
        if order.status not in OPEN_STATUSES:
            raise ApiError(409, "order_not_open", f"order {order_id} is {order.status}")
        seq = await margin.cancel(user, order_id, order.symbol)
        await trading.history.wait_for(seq, 2.0)
        after = await trading.get_order(wid, order_id) or order
        m = market(after.symbol)
        if m is None:
            raise ApiError(404, "unknown_symbol", f"unknown symbol {after.symbol!r}")
        return JSON(order_out(after, m))

    app.include_router(router)


# -- back office: margin terms (admin role, 2FA-confirmed, audited) ----------------------


class SymbolTermsIn(_Request):
    symbol: SymbolStr
    max_leverage: Annotated[int, Field(ge=1, le=1000)]
    margin_call_level: DecimalStr
    liquidation_level: DecimalStr
    liquidation_fee_bps: Annotated[int, Field(ge=0, le=10_000)] = 0
    liquidation_band_bps: Annotated[int, Field(ge=0, le=10_000)] = 500
    mark_max_age_ms: Annotated[int, Field(ge=1, le=86_400_000)] = 60_000
    mark_max_move_bps: Annotated[int, Field(ge=1, le=10_000)] = 1_000


class CrossTermsIn(_Request):
    max_leverage: Annotated[int, Field(ge=1, le=1000)]
    margin_call_level: DecimalStr
    liquidation_level: DecimalStr
    liquidation_fee_bps: Annotated[int, Field(ge=0, le=10_000)] = 0


class TierCapIn(_Request):
    max_leverage: Annotated[int, Field(ge=1, le=1000)]


class AssetTermsIn(_Request):
    asset: Annotated[str, Field(max_length=32)]
    hourly_rate: Annotated[str, Field(max_length=32, description="fraction per hour")]
    borrow_limit: DecimalStr


def install_margin_admin_routes(
    app: FastAPI,
    margin: MarginService,
    catalog: MarketCatalog,
    admin: AdminService,
    audit: AuditLog | None,
) -> None:
    """``/api/v1/admin/margin/...``: set a margin symbol's, the cross wallets' or a
    borrowable asset's terms. Leverage above 10x is refused ``422 leverage_too_high``
    (the core's own code, checked here first as well); levels are decimals with at most
    four places."""
    guards = staff_guards(admin)
    Confirmed = Annotated[Actor, Depends(guards.confirmed)]

    def require_admin(actor: Actor) -> None:
        if actor.role != "admin":
            raise ApiError(403, "role_required", "margin terms are set by the admin role")

    def level(text: str, field: str) -> int:
        return to_minor(text, LEVEL_DECIMALS, field)

    def leverage(value: int) -> int:
        if value > MAX_LEVERAGE:
            raise ApiError(
                422, "leverage_too_high", f"max_leverage {value} is above {MAX_LEVERAGE}x"
            )
        return value

    async def done(actor: Actor, what: str, seq: int, details: dict[str, Any]) -> Response:
        if audit is not None:
            await audit.record(
                f"margin.{what}",
                actor_id=actor.user_id,
                actor_role=actor.role,
                details={k: str(v) for k, v in details.items()},
                ip=actor.ip,
            )
        return JSON({"seq": seq, **details})

    router = APIRouter(prefix="/api/v1/admin/margin", tags=["admin"])

    @router.post("/symbols")
    async def set_symbol(body: SymbolTermsIn, actor: Confirmed) -> Response:
        require_admin(actor)
        if catalog.market(body.symbol) is None:
            raise ApiError(400, "unknown_symbol", f"unknown symbol {body.symbol!r}")
        cmd = MarginSymbol(
            symbol=body.symbol,
            max_leverage=leverage(body.max_leverage),
            margin_call_level=level(body.margin_call_level, "margin_call_level"),
            liquidation_level=level(body.liquidation_level, "liquidation_level"),
            liquidation_fee_bps=body.liquidation_fee_bps,
            liquidation_band_bps=body.liquidation_band_bps,
            mark_max_age_ms=body.mark_max_age_ms,
            mark_max_move_bps=body.mark_max_move_bps,
        )
        seq = await margin.configure(actor.user_id or 0, cmd)
        return await done(actor, "symbol", seq, body.model_dump())

    @router.post("/cross")
    async def set_cross(body: CrossTermsIn, actor: Confirmed) -> Response:
        require_admin(actor)
        cmd = MarginCross(
            max_leverage=leverage(body.max_leverage),
            margin_call_level=level(body.margin_call_level, "margin_call_level"),
            liquidation_level=level(body.liquidation_level, "liquidation_level"),
            liquidation_fee_bps=body.liquidation_fee_bps,
        )
        seq = await margin.configure(actor.user_id or 0, cmd)
        return await done(actor, "cross", seq, body.model_dump())

    @router.post("/assets")
    async def set_asset(body: AssetTermsIn, actor: Confirmed) -> Response:
        require_admin(actor)
        info = catalog.asset(body.asset)
        if info is None:
            raise ApiError(400, "unknown_asset", f"unknown asset {body.asset!r}")
        rate = (
            0
            if body.hourly_rate.strip("0.") == ""
            else to_minor(body.hourly_rate, RATE_DECIMALS, "hourly_rate")
        )
        cmd = MarginAsset(
            asset=body.asset,
            hourly_rate=rate,
            borrow_limit=to_minor(body.borrow_limit, info.decimals, "borrow_limit"),
        )
        seq = await margin.configure(actor.user_id or 0, cmd)
        return await done(actor, "asset", seq, body.model_dump())

    TierPath = Annotated[int, Path(ge=0, le=MAX_INT, description="fee tier")]

    async def configure_tier(actor: Actor, cmd: MarginTier | MarginTierClear) -> int:
        try:
            return await margin.configure(actor.user_id or 0, cmd)
        except CoreRejected as e:
            if e.reason == "unknown_tier":
                raise ApiError(404, "unknown_tier", f"fee tier {cmd.tier} is not configured") from e
            raise

    @router.put("/tiers/{tier}")
    async def set_tier_cap(tier: TierPath, body: TierCapIn, actor: Confirmed) -> Response:
        """Cap the leverage of fee tier ``tier``'s users' margin wallets (2..10)."""
        require_admin(actor)
        cmd = MarginTier(tier=tier, max_leverage=leverage(body.max_leverage))
        seq = await configure_tier(actor, cmd)
        return await done(actor, "tier", seq, {"tier": tier, **body.model_dump()})

    @router.delete("/tiers/{tier}")
    async def clear_tier_cap(tier: TierPath, actor: Confirmed) -> Response:
        """Remove fee tier ``tier``'s leverage cap: its wallets get their symbol's."""
        require_admin(actor)
        seq = await configure_tier(actor, MarginTierClear(tier=tier))
        return await done(actor, "tier_clear", seq, {"tier": tier})

    app.include_router(router)
