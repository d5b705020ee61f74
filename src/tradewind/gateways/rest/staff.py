"""The staff guards shared by the back-office routes (``admin.py`` and ``kyc.py``).

One place decides who is staff and when a staff member must confirm with 2FA, so the
admin API and the KYC review queue cannot drift apart:

- ``Staff``: a Bearer session whose role, looked up server-side, is not ``user``
  (``403 role_required`` otherwise, before any lookup of the route's subject);
- ``Confirmed``: a staff member who, with 2FA enabled, sends a current code in the
  ``TW-TOTP`` header (``401 totp_required`` / ``invalid_totp``), so a stolen staff
  session alone cannot change anything.

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, NamedTuple

from fastapi import Depends, Header, Request

from tradewind.gateways.rest.auth import SessionUser, client_ip
from tradewind.gateways.rest.errors import ApiError
from tradewind.services.admin import Actor, AdminService


class StaffGuards(NamedTuple):
    """The two dependencies; routes declare ``Annotated[Actor, Depends(guards.staff)]``
    (a local alias: type checkers refuse an ``Annotated`` built by a function)."""

    staff: Callable[..., Awaitable[Actor]]
    confirmed: Callable[..., Awaitable[Actor]]


def staff_guards(admin: AdminService) -> StaffGuards:
    """The ``Staff`` and ``Confirmed`` dependencies bound to ``admin``."""

    async def staff(principal: SessionUser, request: Request) -> Actor:
        actor = await admin.actor(principal.user_id, client_ip(request))
        if actor.role == "user":
            raise ApiError(403, "role_required", "the admin API is for staff accounts")
        return actor

    async def confirmed(
        actor: Annotated[Actor, Depends(staff)],
        request: Request,
        totp: Annotated[
            str | None,
            Header(alias="TW-TOTP", max_length=32, description="2FA code, if 2FA is on"),
        ] = None,
    ) -> Actor:
        accounts = getattr(getattr(request.app.state, "auth", None), "accounts", None)
        if accounts is None:  # a wiring bug: refuse rather than skip the factor
            raise RuntimeError("install_auth(app, ...) was not called")
        assert actor.user_id is not None
        await accounts.require_second_factor(actor.user_id, totp)
        return actor

    return StaffGuards(staff, confirmed)
