"""``GET /api/v1/fees``: the exchange's base fee rates, public.

Why: the order form shows the fee before an order is sent, and the core's rates (set
by a ``fees`` command, journaled) are not in any other answer. Rates are what every
account pays unless it is put on another tier; they are public on any exchange.

``GET /api/v1/fees/mine`` (``read``): the caller's own tier and its rates (an admin
may put a user on another tier), so the form previews what this user will pay.

Invariants: rates are integer basis points, read from the live source the runtime
gives (the core in embedded mode); without one the routes answer ``503
fees_unavailable`` rather than guess.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel
from starlette.responses import Response

from tradewind.gateways.rest.auth import Principal, require
from tradewind.gateways.rest.errors import JSON, ApiError

FeeRates = Callable[[], tuple[int, int]]
"""Returns ``(maker_bps, taker_bps)`` of the base tier."""

UserFeeTier = Callable[[int], tuple[int, int, int]]
"""Returns ``(tier, maker_bps, taker_bps)`` a user's orders pay (margin wallets too)."""


class FeesOut(BaseModel):
    maker_bps: int
    taker_bps: int


class MyFeesOut(FeesOut):
    tier: int


def install_fee_routes(
    app: FastAPI, rates: FeeRates | None, user_tier: UserFeeTier | None = None
) -> None:
    async def fees() -> Response:
        if rates is None:
            raise ApiError(503, "fees_unavailable", "fee rates are not available here")
        maker, taker = rates()
        return JSON({"maker_bps": maker, "taker_bps": taker})

    app.add_api_route(
        "/api/v1/fees",
        fees,
        methods=["GET"],
        response_model=FeesOut,
        tags=["market data"],
        summary="Base maker and taker fee rates (basis points)",
    )

    async def my_fees(principal: Annotated[Principal, Depends(require("read"))]) -> Response:
        if user_tier is None:
            raise ApiError(503, "fees_unavailable", "fee rates are not available here")
        tier, maker, taker = user_tier(principal.user_id)
        return JSON({"tier": tier, "maker_bps": maker, "taker_bps": taker})

    app.add_api_route(
        "/api/v1/fees/mine",
        my_fees,
        methods=["GET"],
        response_model=MyFeesOut,
        tags=["account"],
        summary="The caller's fee tier and its maker and taker rates (basis points)",
    )
