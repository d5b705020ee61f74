"""Deposit history routes: a user's deposits (``GET /api/v1/deposits``, one by id) and
the back office's list (``GET /api/v1/admin/deposits``); docs/funding.md "Deposit
history".

Invariants:
- read-only: no route here changes a deposit;
- a user's routes need the ``read`` permission (a session or an API key) and only ever
  show the caller's deposits: another user's id answers ``404 unknown_deposit`` exactly
  like an id that does not exist;
- the staff list needs a staff session (support, compliance, admin; ``403
  role_required`` otherwise) and filters by user, asset, status and network;
- amounts leave as decimal strings in the asset's units (the bank's own text when the
  amount has no exact minor units here); bad filters are ``400`` with a precise code
  (``invalid_status``, ``unknown_network``, ``invalid_cursor``, ``invalid_request``);
- the id route matches only ids of the form ``chain:...``, ``bank:...``, ``card:...``
  (a path convertor), so ``/api/v1/deposits/address`` stays the address route whatever
  the order the routes are installed in.

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query
from starlette.convertors import Convertor, register_url_convertor
from starlette.responses import Response

from tradewind.gateways.rest.auth import Reader
from tradewind.gateways.rest.errors import JSON
from tradewind.gateways.rest.staff import staff_guards
from tradewind.gateways.rest.units import MAX_INT, format_minor
from tradewind.services.admin import Actor, AdminService
from tradewind.services.funding.deposit_history import (
    PUBLIC_STATUSES,
    DepositFilter,
    DepositHistory,
    DepositPage,
    DepositView,
)


class DepositIdConvertor(Convertor[str]):
    regex = r"(?:chain|bank|card):[A-Za-z0-9_:\-]{1,120}"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("deposit_id", DepositIdConvertor())

AssetFilter = Annotated[
    str | None, Query(min_length=1, max_length=16, pattern=r"^[A-Z0-9]+$", description="e.g. ETH")
]
NetworkFilter = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=16,
        pattern=r"^[a-z0-9-]+$",
        description="a chain network (e.g. ethereum), bank or card",
    ),
]
StatusFilter = Annotated[
    str | None,
    Query(max_length=100, description=f"statuses separated by , ({','.join(PUBLIC_STATUSES)})"),
]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=200, description="next_cursor of a page")]


def amount_out(v: DepositView) -> str | None:
    if v.amount is not None and v.decimals is not None:
        return format_minor(v.amount, v.decimals)
    return v.amount_text


def deposit_out(v: DepositView, *, staff: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": v.id,
        "kind": v.kind,
        "asset": v.asset,
        "network": v.network,
        "amount": amount_out(v),
        "status": v.status,
        "reason": v.reason,
        "txid": v.txid,
        "reference": v.reference,
        "block_number": v.block_number,
        "confirmations": v.confirmations,
        "confirmations_required": v.confirmations_required,
        "booking_date": v.booking_date,
        "created_at": v.created_at_ms,
        "updated_at": v.updated_at_ms,
    }
    if staff:
        out["user_id"] = v.user_id
        out["source_status"] = v.source_status
    return out


def _statuses(text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    return tuple(s for s in (p.strip() for p in text.split(",")) if s)


def page_out(page: DepositPage, *, staff: bool = False) -> dict[str, Any]:
    return {
        "items": [deposit_out(v, staff=staff) for v in page.items],
        "next_cursor": page.next_cursor,
    }


def install_deposit_history(app: FastAPI, history: DepositHistory, admin: AdminService) -> None:
    guards = staff_guards(admin)
    Staff = Annotated[Actor, Depends(guards.staff)]

    user = APIRouter(prefix="/api/v1/deposits", tags=["funding"])

    @user.get("")
    async def list_deposits(
        principal: Reader,
        asset: AssetFilter = None,
        status: StatusFilter = None,
        network: NetworkFilter = None,
        limit: Limit = 50,
        cursor: Cursor = None,
    ) -> Response:
        """The caller's deposits, newest first: chain, bank transfer and card."""
        f = DepositFilter(
            user_id=principal.user_id, asset=asset, network=network, statuses=_statuses(status)
        )
        return JSON(page_out(await history.page(f, limit=limit, cursor=cursor)))

    @user.get("/{deposit_id:deposit_id}")
    async def get_deposit(deposit_id: str, principal: Reader) -> Response:
        """One of the caller's deposits (``404 unknown_deposit`` for anyone else's)."""
        return JSON(deposit_out(await history.get(deposit_id, user_id=principal.user_id)))

    staff = APIRouter(prefix="/api/v1/admin/deposits", tags=["admin"])

    @staff.get("")
    async def admin_deposits(
        actor: Staff,
        user_id: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None,
        asset: AssetFilter = None,
        status: StatusFilter = None,
        network: NetworkFilter = None,
        limit: Limit = 100,
        cursor: Cursor = None,
    ) -> Response:
        """Every deposit (or one user's), newest first, with the source's own status."""
        f = DepositFilter(user_id=user_id, asset=asset, network=network, statuses=_statuses(status))
        page = await history.page(f, limit=limit, cursor=cursor, staff=True)
        return JSON(page_out(page, staff=True))

    @staff.get("/{deposit_id:deposit_id}")
    async def admin_deposit(deposit_id: str, actor: Staff) -> Response:
        return JSON(deposit_out(await history.get(deposit_id, user_id=None), staff=True))

    app.include_router(user)
    app.include_router(staff)
