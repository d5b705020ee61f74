"""``GET /api/v1/account/security-events``: a user's own security activity.

What a user of a real exchange checks after a notice email: every sign-in (with the
address it came from), the new-device and new-address notices, 2FA, password and email
changes, API keys created and revoked, withdrawal requests and their steps. Read from
the hash-chained audit log (only the user's own entries of those kinds), newest first,
with a cursor; no other user's entry and no staff action is ever shown.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Query
from pydantic import BaseModel
from starlette.responses import Response

from tradewind.gateways.rest.auth import SessionUser
from tradewind.gateways.rest.errors import JSON, ApiError
from tradewind.services.accounts import AccountsService

Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1-200).")]
Cursor = Annotated[str | None, Query(max_length=20, description="next_cursor of a page.")]


class SecurityEventOut(BaseModel):
    seq: int
    time: int
    event: str
    """The audit action without its prefix, e.g. ``signed_in``, ``2fa_enabled``."""
    kind: str
    """``security`` or ``withdrawal``."""
    ip: str | None
    details: dict[str, str | int | bool | None]


class SecurityEventsPage(BaseModel):
    items: list[SecurityEventOut]
    next_cursor: str | None


def install_security_events(app: FastAPI, accounts: AccountsService) -> None:
    @app.get(
        "/api/v1/account/security-events",
        tags=["account"],
        response_model=SecurityEventsPage,
        summary="Own security activity",
    )
    async def security_events(
        principal: SessionUser, limit: Limit = 50, cursor: Cursor = None
    ) -> Response:
        """Sign-ins, security notices and withdrawal steps of the signed-in user,
        newest first (from the audit log)."""
        before: int | None = None
        if cursor is not None:
            if not cursor.isdigit() or int(cursor) < 1:
                raise ApiError(400, "invalid_cursor", "cursor must be a next_cursor of a page")
            before = int(cursor)
        items, more = await accounts.security_events(
            principal.user_id, limit=limit, before_seq=before
        )
        return JSON(
            {
                "items": [
                    {
                        "seq": e.seq,
                        "time": e.ts_ms,
                        "event": e.action.partition(".")[2],
                        "kind": e.action.partition(".")[0],
                        "ip": e.ip,
                        "details": e.details_dict(),
                    }
                    for e in items
                ],
                "next_cursor": None if more is None else str(more),
            }
        )
