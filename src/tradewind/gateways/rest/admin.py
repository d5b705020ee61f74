"""The admin API, ``/api/v1/admin/...`` (issue 5 item 7): users, roles, freezes,
two-person approvals (balance adjustments, 2FA resets), market halt/resume and the
audit log.

Invariants:
- every route needs a Bearer session (an API key never reaches the back office, even
  an admin's) and a staff role looked up server-side; an ordinary user's token gets
  ``403 role_required`` from every route, before any lookup (tests walk every route);
- amounts are decimal strings here, converted with the asset's decimals; a debit is a
  negative amount (``"-1.5"``);
- every action, and every refused attempt, is in the audit log (services/admin.py);
- a staff member with 2FA enabled confirms every action that changes something with a
  current code in the ``TW-TOTP`` header (``401 totp_required`` / ``invalid_totp``), so
  a stolen staff session alone cannot freeze, grant, adjust or approve.

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tradewind.core.commands import Halt, Resume
from tradewind.core.events import Rejected
from tradewind.gateways.rest.errors import JSON, ApiError
from tradewind.gateways.rest.staff import staff_guards
from tradewind.gateways.rest.units import MAX_INT, format_minor, to_minor
from tradewind.services.admin import (
    Actor,
    AdminService,
    Approval,
    InvalidReason,
    RoleRequired,
    UserSummary,
)
from tradewind.services.audit import AuditEntry
from tradewind.services.catalog import MarketCatalog
from tradewind.services.trading import CommandBus

PREFIX = "/api/v1/admin"
UserId = Annotated[int, Path(ge=1, le=MAX_INT)]
ApprovalId = Annotated[int, Path(ge=1, le=MAX_INT)]
Symbol = Annotated[str, Path(max_length=32)]
MARKET_ROLES = frozenset({"admin"})
"""Who halts and resumes a market: it stops trading for everyone, so admins only."""


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ReasonIn(_Body):
    reason: Annotated[str, Field(max_length=1024)]


class RoleIn(_Body):
    role: Literal["user", "support", "compliance", "admin"]


class AdjustmentIn(_Body):
    user_id: Annotated[int, Field(ge=1, le=MAX_INT)]
    asset: Annotated[str, Field(max_length=32)]
    amount: Annotated[str, Field(max_length=66, description='Signed decimal: "-1.5" debits')]
    reason: Annotated[str, Field(max_length=1024)]


def user_out(u: UserSummary) -> dict[str, Any]:
    return {
        "id": u.id,
        "email": u.email,
        "status": u.status,
        "created_at": u.created_at_ms,
        "role": u.role,
        "frozen": u.frozen,
        "frozen_reason": u.frozen_reason,
    }


def approval_out(a: Approval) -> dict[str, Any]:
    return {
        "id": a.id,
        "kind": a.kind,
        "user_id": a.subject_id,
        "details": a.payload_dict(),
        "requested_by": a.requested_by,
        "requested_at": a.requested_at_ms,
        "status": a.status,
        "decided_by": a.decided_by,
        "decided_at": a.decided_at_ms,
        "result": a.result,
    }


def audit_out(e: AuditEntry) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "time": e.ts_ms,
        "actor_id": e.actor_id,
        "actor_role": e.actor_role,
        "action": e.action,
        "user_id": e.subject_id,
        "details": e.details_dict(),
        "ip": e.ip,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


def install_admin(
    app: FastAPI, admin: AdminService, catalog: MarketCatalog, bus: CommandBus | None = None
) -> None:
    """Add the admin routes to ``app``; the market halt/resume routes need ``bus`` (the
    core's command bus) and answer ``503 markets_unavailable`` without it."""

    guards = staff_guards(admin)
    Staff = Annotated[Actor, Depends(guards.staff)]
    Confirmed = Annotated[Actor, Depends(guards.confirmed)]
    router = APIRouter(prefix=PREFIX, tags=["admin"])

    @router.get("/me")
    async def me(actor: Staff) -> Response:
        return JSON({"user_id": actor.user_id, "role": actor.role})

    @router.get("/users")
    async def list_users(
        actor: Staff,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
        email: Annotated[str | None, Query(max_length=254)] = None,
    ) -> Response:
        users = await admin.list_users(actor, limit=limit, after_id=after, email_contains=email)
        items = [user_out(u) for u in users]
        next_after = users[-1].id if len(users) == limit else None
        return JSON({"items": items, "next_after": next_after})

    @router.get("/users/{user_id}")
    async def get_user(user_id: UserId, actor: Staff) -> Response:
        return JSON(user_out(await admin.get_user(actor, user_id)))

    @router.put("/users/{user_id}/role")
    async def set_role(user_id: UserId, body: RoleIn, actor: Confirmed) -> Response:
        return JSON(user_out(await admin.set_role(actor, user_id, body.role)))

    @router.post("/users/{user_id}/freeze")
    async def freeze(user_id: UserId, body: ReasonIn, actor: Confirmed) -> Response:
        cancelled = await admin.freeze(actor, user_id, body.reason)
        return JSON({"user_id": user_id, "frozen": True, "cancelled_orders": cancelled})

    @router.post("/users/{user_id}/unfreeze")
    async def unfreeze(user_id: UserId, body: ReasonIn, actor: Confirmed) -> Response:
        await admin.unfreeze(actor, user_id, body.reason)
        return JSON({"user_id": user_id, "frozen": False})

    @router.post("/users/{user_id}/two-factor-reset", status_code=202)
    async def two_factor_reset(user_id: UserId, body: ReasonIn, actor: Confirmed) -> Response:
        approval = await admin.request_two_factor_reset(actor, user_id, body.reason)
        return JSON(approval_out(approval), status_code=202)

    @router.post("/adjustments", status_code=202)
    async def request_adjustment(body: AdjustmentIn, actor: Confirmed) -> Response:
        asset = catalog.asset(body.asset)
        if asset is None:
            raise ApiError(400, "unknown_asset", f"unknown asset {body.asset!r}")
        negative = body.amount.startswith("-")
        minor = to_minor(body.amount[1:] if negative else body.amount, asset.decimals, "amount")
        approval = await admin.request_adjustment(
            actor, body.user_id, asset.name, -minor if negative else minor, body.reason
        )
        out = approval_out(approval)
        out["amount"] = ("-" if negative else "") + format_minor(minor, asset.decimals)
        return JSON(out, status_code=202)

    @router.get("/approvals")
    async def list_approvals(
        actor: Staff,
        status: Annotated[
            Literal["pending", "approved", "rejected", "executed", "failed", "all"], Query()
        ] = "pending",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> Response:
        chosen = None if status == "all" else status
        approvals = await admin.list_approvals(actor, status=chosen, limit=limit)
        return JSON([approval_out(a) for a in approvals])

    @router.post("/approvals/{approval_id}/approve")
    async def approve(approval_id: ApprovalId, actor: Confirmed) -> Response:
        return JSON(approval_out(await admin.approve(actor, approval_id)))

    @router.post("/approvals/{approval_id}/reject")
    async def reject(approval_id: ApprovalId, actor: Confirmed) -> Response:
        return JSON(approval_out(await admin.reject(actor, approval_id)))

    async def set_halted(actor: Actor, symbol: str, reason: str, halt: bool) -> Response:
        """Halt or resume ``symbol`` in the core (the same Halt/Resume commands the core's
        tests use), audited like every admin action, refused attempts included."""
        action = "markets.halt" if halt else "markets.resume"
        if actor.role not in MARKET_ROLES:
            await admin.audit.record(
                "admin.denied",
                actor_id=actor.user_id,
                actor_role=actor.role,
                details={"attempted": action, "symbol": symbol[:32]},
                ip=actor.ip,
            )
            raise RoleRequired(f"{action} needs the role admin")
        text = reason.strip()
        if not 3 <= len(text) <= 256 or not text.isprintable():
            raise InvalidReason()  # the rule of every other admin reason
        market = catalog.market(symbol)
        if market is None:
            raise ApiError(404, "unknown_symbol", f"unknown symbol {symbol!r}")
        if bus is None:
            raise ApiError(503, "markets_unavailable", "market halts are not wired here")
        applied = await bus.submit(Halt(symbol=symbol) if halt else Resume(symbol=symbol))
        rejected = next((e for e in applied.events if type(e) is Rejected), None)
        if rejected is not None:  # cannot happen for a known symbol; never hide it
            raise ApiError(409, rejected.reason, f"the core refused it: {rejected.reason}")
        await admin.audit.record(
            "admin.market_halt" if halt else "admin.market_resume",
            actor_id=actor.user_id,
            actor_role=actor.role,
            details={
                "symbol": symbol,
                "reason": text,
                "previous": market.status,
                "seq": applied.seq,
            },
            ip=actor.ip,
        )
        status = "halted" if halt else "trading"
        return JSON({"symbol": symbol, "status": status, "previous": market.status})

    @router.post("/markets/{symbol}/halt")
    async def halt(symbol: Symbol, body: ReasonIn, actor: Confirmed) -> Response:
        return await set_halted(actor, symbol, body.reason, halt=True)

    @router.post("/markets/{symbol}/resume")
    async def resume(symbol: Symbol, body: ReasonIn, actor: Confirmed) -> Response:
        return await set_halted(actor, symbol, body.reason, halt=False)

    @router.get("/audit")
    async def audit(
        actor: Staff,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        before: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
        user_id: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
    ) -> Response:
        entries = await admin.audit_entries(
            actor, limit=limit, before_seq=before, subject_id=user_id
        )
        return JSON([audit_out(e) for e in entries])

    @router.get("/audit/verify")
    async def audit_verify(actor: Staff) -> Response:
        await admin.audit_entries(actor, limit=1, before_seq=None, subject_id=None)  # role check
        result = await admin.audit.verify()
        return JSON(
            {
                "ok": result.ok,
                "entries": result.entries,
                "head_seq": result.head_seq,
                "head_hash": result.head_hash,
                "first_bad_seq": result.first_bad_seq,
                "reason": result.reason,
            }
        )

    app.include_router(router)
