"""The back office's fee routes (services/fees.py):

- ``GET /api/v1/admin/fees``: every configured tier's maker/taker bps and the users on it;
- ``PUT /api/v1/admin/fees/tiers/{tier}`` ``{"maker_bps": 8, "taker_bps": 12}``: a tier's
  rates (core ``SetFees``; tier 0 is the base rate ``GET /api/v1/fees`` shows);
- ``PUT /api/v1/admin/users/{user_id}/tier`` ``{"tier": 1}``: a user's tier (core ``SetTier``).

Invariants: admin role only (``403 role_required``, an ordinary user's token before any
lookup); changes need the ``Confirmed`` guard (2FA code when on); bad rates are ``400
invalid_fee_rate`` and bad tiers ``400 invalid_tier`` (checked here, not as a generic
validation error, so the client can name the field), an unconfigured tier ``404
unknown_tier``; nothing reaches the core then. Without the core in this process (an API
replica) the tiers cannot be read: ``503 fees_unavailable``, as ``GET /api/v1/fees``.

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from tradewind.gateways.rest.errors import JSON, ApiError
from tradewind.gateways.rest.staff import staff_guards
from tradewind.gateways.rest.units import MAX_INT
from tradewind.services.admin import Actor, AdminService
from tradewind.services.fees import FeeAdmin, Tier

UserId = Annotated[int, Path(ge=1, le=MAX_INT)]
TierId = Annotated[int, Path(description="0..100; checked by the service: 400 invalid_tier")]


class RatesIn(BaseModel):
    """Any JSON values: the service checks them and answers with precise codes."""

    model_config = ConfigDict(extra="forbid")
    maker_bps: Any
    taker_bps: Any


class TierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    tier: Any


def tier_out(t: Tier) -> dict[str, Any]:
    return {"tier": t.tier, "maker_bps": t.maker_bps, "taker_bps": t.taker_bps, "users": t.users}


def install_admin_fees(app: FastAPI, admin: AdminService, fees: FeeAdmin | None) -> None:
    guards = staff_guards(admin)
    Staff = Annotated[Actor, Depends(guards.staff)]
    Confirmed = Annotated[Actor, Depends(guards.confirmed)]
    router = APIRouter(prefix="/api/v1/admin", tags=["admin"])

    def service() -> FeeAdmin:
        if fees is None:
            raise ApiError(503, "fees_unavailable", "fee tiers are read from the core's process")
        return fees

    @router.get("/fees")
    async def list_fees(actor: Staff) -> Response:
        tiers = await service().tiers(actor)
        return JSON({"tiers": [tier_out(t) for t in tiers]})

    @router.put("/fees/tiers/{tier}")
    async def set_rates(tier: TierId, body: RatesIn, actor: Confirmed) -> Response:
        done = await service().set_rates(actor, tier, body.maker_bps, body.taker_bps)
        return JSON(tier_out(done))

    @router.put("/users/{user_id}/tier")
    async def set_user_tier(user_id: UserId, body: TierIn, actor: Confirmed) -> Response:
        previous = await service().set_user_tier(actor, user_id, body.tier)
        return JSON({"user_id": user_id, "tier": body.tier, "previous": previous})

    app.include_router(router)
