"""Back-office route switching deposits and withdrawals of an asset on a network while
the exchange runs (ADR 0032): ``PUT /api/v1/admin/funding/networks/{network}/assets/{asset}``
with ``deposit_enabled`` and/or ``withdrawal_enabled``.

Invariants: a Bearer staff session confirmed with 2FA when the staff member has it
(``Confirmed``, as every back-office change); admins only (``403 role_required``,
audited as ``admin.denied``); every switch is audited with the flags before and after
(services/funding/switches.py).

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path
from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from tradewind.gateways.rest.errors import JSON
from tradewind.gateways.rest.funding import asset_rules_out
from tradewind.gateways.rest.staff import staff_guards
from tradewind.services.admin import Actor, AdminService
from tradewind.services.funding.switches import FundingSwitches

NetworkName = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[a-z0-9-]+$")]
AssetName = Annotated[str, Path(min_length=1, max_length=16, pattern=r"^[A-Z0-9]+$")]


class SwitchIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    deposit_enabled: bool | None = None
    withdrawal_enabled: bool | None = None


def install_funding_switches(app: FastAPI, switches: FundingSwitches, admin: AdminService) -> None:
    guards = staff_guards(admin)
    Confirmed = Annotated[Actor, Depends(guards.confirmed)]
    router = APIRouter(prefix="/api/v1/admin/funding", tags=["admin"])

    @router.put("/networks/{network}/assets/{asset}")
    async def switch(
        network: NetworkName, asset: AssetName, body: SwitchIn, actor: Confirmed
    ) -> Response:
        rules = await switches.set(
            actor,
            network,
            asset,
            deposit_enabled=body.deposit_enabled,
            withdrawal_enabled=body.withdrawal_enabled,
        )
        return JSON(asset_rules_out(rules))

    app.include_router(router)
