"""KYC routes: a user's level and limits, document upload, provider callbacks, and the
compliance review queue under ``/api/v1/admin/kyc``.

Invariants:
- an upload is the raw file as the body (``Content-Type`` image/jpeg, image/png or
  application/pdf, at most 5 MiB; the body-limit middleware enforces both before the
  body is read) with a Bearer session; the service checks the bytes themselves;
- a provider callback is authenticated by its HMAC signature alone (``X-Signature``,
  hex HMAC-SHA256 of the exact body), never by a session; an unknown provider is 404;
- the review queue needs a staff session with the compliance or admin role.

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tradewind.gateways.rest.auth import Reader, SessionUser, client_ip
from tradewind.gateways.rest.errors import JSON, ApiError
from tradewind.gateways.rest.staff import staff_guards
from tradewind.gateways.rest.units import MAX_INT
from tradewind.services.admin import Actor, AdminService
from tradewind.services.kyc import DOCUMENT_KINDS, LEVELS, KycDocument, KycService

DocumentId = Annotated[int, Path(ge=1, le=MAX_INT)]


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    level: Annotated[int, Field(ge=1, le=2)]
    note: Annotated[str, Field(max_length=256)] = ""


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    note: Annotated[str, Field(min_length=1, max_length=256)]


def document_out(d: KycDocument, *, staff: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": d.id,
        "kind": d.kind,
        "content_type": d.content_type,
        "size": d.size,
        "sha256": d.sha256,
        "status": d.status,
        "uploaded_at": d.uploaded_at_ms,
        "reviewed_at": d.reviewed_at_ms,
        "note": d.note,
    }
    if staff:
        out.update(user_id=d.user_id, reviewed_by=d.reviewed_by, location=d.location)
    return out


_UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            media: {"schema": {"type": "string", "format": "binary"}}
            for media in ("image/jpeg", "image/png", "application/pdf")
        },
    }
}


def install_kyc(app: FastAPI, kyc: KycService, admin: AdminService) -> None:
    guards = staff_guards(admin)
    Staff = Annotated[Actor, Depends(guards.staff)]
    Confirmed = Annotated[Actor, Depends(guards.confirmed)]
    user = APIRouter(prefix="/api/v1/kyc", tags=["kyc"])

    @user.get("")
    async def my_kyc(principal: Reader) -> Response:
        profile = await kyc.profile(principal.user_id)
        limits = kyc.limits_of(profile.level)
        documents = await kyc.my_documents(principal.user_id)
        return JSON(
            {
                "level": profile.level,
                "verified_at": profile.updated_at_ms,
                "limits": {
                    "withdraw_per_day": {
                        asset: str(units) for asset, units in limits.withdraw_per_day_units.items()
                    },
                    "fiat": limits.fiat,
                },
                # every level's limits, so the page can say what verifying more unlocks
                "levels": [
                    {
                        "level": level,
                        "withdraw_per_day": {
                            asset: str(units)
                            for asset, units in kyc.limits_of(level).withdraw_per_day_units.items()
                        },
                        "fiat": kyc.limits_of(level).fiat,
                    }
                    for level in LEVELS
                ],
                "documents": [document_out(d) for d in documents],
            }
        )

    @user.post("/documents", status_code=201, openapi_extra=_UPLOAD_BODY)
    async def upload(
        request: Request,
        principal: SessionUser,
        kind: Annotated[str, Query(max_length=32, description=", ".join(DOCUMENT_KINDS))],
    ) -> Response:
        data = await request.body()
        document = await kyc.upload_document(
            principal.user_id,
            kind,
            request.headers.get("content-type", ""),
            data,
            ip=client_ip(request),
        )
        return JSON(document_out(document), status_code=201)

    @user.post("/callbacks/{provider}")
    async def callback(
        provider: Annotated[str, Path(max_length=32, pattern=r"^[a-z0-9_-]+$")],
        request: Request,
    ) -> Response:
        if provider not in kyc.providers():
            raise ApiError(404, "not_found", "no such endpoint")
        outcome = await kyc.provider_callback(
            provider, await request.body(), request.headers.get("x-signature")
        )
        return JSON({"status": outcome})

    review = APIRouter(prefix="/api/v1/admin/kyc", tags=["admin"])

    @review.get("/documents")
    async def queue(actor: Staff, limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> Response:
        return JSON([document_out(d, staff=True) for d in await kyc.queue(actor, limit=limit)])

    @review.post("/documents/{document_id}/approve")
    async def approve(document_id: DocumentId, body: ApproveIn, actor: Confirmed) -> Response:
        document = await kyc.review(
            actor, document_id, approve=True, level=body.level, note=body.note
        )
        return JSON(document_out(document, staff=True))

    @review.post("/documents/{document_id}/reject")
    async def reject(document_id: DocumentId, body: RejectIn, actor: Confirmed) -> Response:
        document = await kyc.review(actor, document_id, approve=False, level=None, note=body.note)
        return JSON(document_out(document, staff=True))

    app.include_router(user)
    app.include_router(review)
