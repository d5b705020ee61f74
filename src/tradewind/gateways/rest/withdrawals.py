"""Withdrawal routes: requests, their status timelines, cancel, the withdrawal address
book, and the compliance queue under ``/api/v1/admin/withdrawals`` (docs/funding.md).

Invariants:
- who may withdraw: a Bearer session of a verified account, or an API key holding the
  ``withdraw`` permission (``403 permission_denied`` otherwise); the address book is
  managed with a session only (a leaked API key must not add addresses);
- the 2FA code travels in the ``TW-TOTP`` header (as on the staff routes); the
  ``Idempotency-Key`` header is required on ``POST /api/v1/withdrawals``;
- amounts leave as decimal strings in the asset's units; refusals are the service's
  precise codes (services/funding/withdrawals.py) and a refused request stores nothing;
- approve and reject need a staff session with the compliance or admin role and, with
  2FA on, a current code (``Confirmed``).

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Header, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tradewind.gateways.rest.admin_funding import install_funding_switches
from tradewind.gateways.rest.auth import Authenticated, Principal, SessionUser, client_ip
from tradewind.gateways.rest.errors import JSON, ApiError
from tradewind.gateways.rest.staff import staff_guards
from tradewind.gateways.rest.units import MAX_INT, format_minor
from tradewind.services.admin import Actor, AdminService
from tradewind.services.funding.withdrawal_ports import (
    WhitelistedAddress,
    Withdrawal,
    WithdrawalEvent,
)
from tradewind.services.funding.withdrawals import (
    FIAT_NETWORK,
    WithdrawalRequest,
    WithdrawalService,
)

WithdrawalId = Annotated[int, Path(ge=1, le=MAX_INT)]
Totp = Annotated[
    str | None, Header(alias="TW-TOTP", max_length=32, description="2FA code, if 2FA is on")
]
STATUSES = (
    "holding,refused,pending_approval,approved,signing,signed,broadcast,settling,"
    "confirmed,releasing,failed,cancelled,rejected"
)


class WithdrawalIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    asset: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[A-Z0-9]+$")]
    network: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[a-z0-9-]+$")]
    address: Annotated[str, Field(min_length=1, max_length=120)]
    amount: Annotated[str, Field(min_length=1, max_length=64, description="e.g. 0.25")]
    memo: Annotated[str | None, Field(max_length=128)] = None


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    network: Annotated[str, Field(min_length=1, max_length=16, pattern=r"^[a-z0-9-]+$")]
    address: Annotated[str, Field(min_length=1, max_length=120)]
    label: Annotated[str, Field(max_length=64)] = ""


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    reason: Annotated[str, Field(min_length=3, max_length=256)]


async def withdrawer(principal: Authenticated) -> Principal:
    """A verified session, or an API key with the ``withdraw`` permission."""
    if principal.via == "session":
        if not principal.email_verified:
            raise ApiError(403, "email_not_verified", "verify your email address first")
        return principal
    if "withdraw" not in principal.permissions:
        raise ApiError(403, "permission_denied", "the API key lacks the 'withdraw' permission")
    return principal


Withdrawer = Annotated[Principal, Depends(withdrawer)]


def install_withdrawals(app: FastAPI, service: WithdrawalService, admin: AdminService) -> None:
    guards = staff_guards(admin)
    Staff = Annotated[Actor, Depends(guards.staff)]
    Confirmed = Annotated[Actor, Depends(guards.confirmed)]

    def decimals(asset: str, network: str) -> int:
        rules = service.catalog.asset_on(asset, network)
        return 0 if rules is None else rules.decimals

    def withdrawal_out(w: Withdrawal, *, staff: bool = False) -> dict[str, Any]:
        d = decimals(w.asset, w.network)
        out: dict[str, Any] = {
            "id": w.id,
            "asset": w.asset,
            "network": w.network,
            "address": w.address,
            "amount": format_minor(w.amount, d),
            "fee": format_minor(w.fee, d),
            "net_amount": format_minor(w.net_amount, d),
            "status": w.status,
            "required_approvals": w.required_approvals,
            "txid": w.txid,
            "block_number": w.block_number,
            "reason": w.reason,
            "created_at": w.created_at_ms,
            "updated_at": w.updated_at_ms,
        }
        if staff:
            out["user_id"] = w.user_id
        return out

    async def staff_out(w: Withdrawal) -> dict[str, Any]:
        out = withdrawal_out(w, staff=True)
        out["approved_by"] = list(await service.store.approvers(w.id))
        return out

    def event_out(e: WithdrawalEvent) -> dict[str, Any]:
        return {"status": e.status, "at": e.at_ms, "actor_id": e.actor_id, "note": e.note}

    def address_out(a: WhitelistedAddress) -> dict[str, Any]:
        return {
            "id": a.id,
            "network": a.network,
            "address": a.address,
            "label": a.label,
            "created_at": a.created_at_ms,
            "usable_from": a.usable_from_ms,
            "usable": service.now_ms() >= a.usable_from_ms,
        }

    user = APIRouter(prefix="/api/v1/withdrawals", tags=["funding"])

    @user.get("/rules")
    async def rules() -> Response:
        """Public: what a withdrawal form needs to check before asking."""
        policy = service.policy
        catalog = await service.live_catalog()  # runtime switches applied
        networks = [(n.name, n.assets) for n in catalog.networks]
        if service.fiat:  # bank transfers to an IBAN (docs/fiat.md)
            networks.append((FIAT_NETWORK, tuple(service.fiat.values())))
        return JSON(
            {
                "require_2fa": policy.require_2fa,
                "cooling_off_hours": policy.cooling_off_ms / 3_600_000,
                "networks": [
                    {
                        "network": name,
                        "payouts": name in service.payout_networks,
                        "assets": [
                            {
                                "asset": a.asset,
                                "decimals": a.decimals,
                                "withdrawal_enabled": a.withdrawal_enabled
                                and name in service.payout_networks,
                                "fee": format_minor(a.withdrawal_fee, a.decimals),
                                "minimum": format_minor(service.minimum(a), a.decimals),
                                "auto_approve_below": format_minor(
                                    a.auto_approve_below, a.decimals
                                ),
                                "two_person_above": None
                                if a.two_person_above is None
                                else format_minor(a.two_person_above, a.decimals),
                            }
                            for a in assets
                        ],
                    }
                    for name, assets in networks
                ],
            }
        )

    # the address book first: "/addresses" must not be read as a withdrawal id
    @user.get("/addresses")
    async def list_addresses(principal: Withdrawer) -> Response:
        return JSON([address_out(a) for a in await service.addresses(principal.user_id)])

    @user.post("/addresses", status_code=201)
    async def add_address(
        body: AddressIn, principal: SessionUser, request: Request, totp: Totp = None
    ) -> Response:
        if not principal.email_verified:
            raise ApiError(403, "email_not_verified", "verify your email address first")
        entry = await service.add_address(
            principal.user_id,
            body.network,
            body.address,
            body.label,
            totp,
            ip=client_ip(request),
        )
        return JSON(address_out(entry), status_code=201)

    @user.delete("/addresses/{address_id}")
    async def remove_address(
        address_id: Annotated[int, Path(ge=1, le=MAX_INT)], principal: SessionUser
    ) -> Response:
        await service.remove_address(principal.user_id, address_id)
        return Response(status_code=204)

    @user.post("", status_code=201)
    async def request_withdrawal(
        body: WithdrawalIn,
        principal: Withdrawer,
        request: Request,
        idempotency_key: Annotated[
            str | None,
            Header(alias="Idempotency-Key", max_length=64, description="8-64 of [A-Za-z0-9_-]"),
        ] = None,
        totp: Totp = None,
    ) -> Response:
        w = await service.request(
            principal.user_id,
            WithdrawalRequest(body.asset, body.network, body.address, body.amount, body.memo),
            idempotency_key,
            totp,
            ip=client_ip(request),
        )
        return JSON(withdrawal_out(w), status_code=201)

    @user.get("")
    async def list_withdrawals(
        principal: Withdrawer,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        cursor: Annotated[str | None, Query(max_length=20)] = None,
    ) -> Response:
        before: int | None = None
        if cursor is not None:
            if not cursor.isdigit() or int(cursor) == 0:
                raise ApiError(400, "invalid_cursor", "cursor must be a next_cursor of a page")
            before = int(cursor)
        page = await service.list(principal.user_id, limit=limit + 1, before_id=before)
        items = list(page[:limit])
        more = len(page) > limit
        return JSON(
            {
                "items": [withdrawal_out(w) for w in items],
                "next_cursor": str(items[-1].id) if more and items else None,
            }
        )

    @user.get("/{withdrawal_id}")
    async def get_withdrawal(withdrawal_id: WithdrawalId, principal: Withdrawer) -> Response:
        w = await service.get(principal.user_id, withdrawal_id)
        out = withdrawal_out(w)
        out["timeline"] = [event_out(e) for e in await service.timeline(w.id)]
        return JSON(out)

    @user.post("/{withdrawal_id}/cancel")
    async def cancel_withdrawal(withdrawal_id: WithdrawalId, principal: Withdrawer) -> Response:
        return JSON(withdrawal_out(await service.cancel(principal.user_id, withdrawal_id)))

    review = APIRouter(prefix="/api/v1/admin/withdrawals", tags=["admin"])

    @review.get("")
    async def queue(
        actor: Staff,
        status: Annotated[
            str, Query(max_length=200, description=f"statuses separated by , ({STATUSES})")
        ] = "pending_approval",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        statuses = [s for s in (p.strip() for p in status.split(",")) if s]
        if not statuses or any(s not in STATUSES.split(",") for s in statuses):
            raise ApiError(400, "invalid_status", f"status is one or more of {STATUSES}")
        found = await service.review_queue(actor, statuses=statuses, limit=limit)
        return JSON([await staff_out(w) for w in found])

    @review.post("/{withdrawal_id}/approve")
    async def approve(withdrawal_id: WithdrawalId, actor: Confirmed) -> Response:
        return JSON(await staff_out(await service.approve(actor, withdrawal_id)))

    @review.post("/{withdrawal_id}/reject")
    async def reject(withdrawal_id: WithdrawalId, body: RejectIn, actor: Confirmed) -> Response:
        return JSON(await staff_out(await service.reject(actor, withdrawal_id, body.reason)))

    app.include_router(user)
    app.include_router(review)
    if service.switches is not None:  # runtime switches (ADR 0032)
        install_funding_switches(app, service.switches, admin)
