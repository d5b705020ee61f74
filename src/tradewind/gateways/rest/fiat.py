"""Fiat routes: deposit instructions with the user's reference, card deposits and the
card processor's webhook, and the back office's statement import and review queue
under ``/api/v1/admin/fiat`` (docs/fiat.md).

Invariants:
- deposit instructions need the ``read`` permission; starting a card deposit needs a
  session (the card is entered in a browser); with ``require_kyc`` both need the KYC
  level that opens fiat rails (``403 kyc_required``);
- the webhook is authenticated by its ``Stripe-Signature`` alone, over the exact bytes
  received; a refused one is ``400 invalid_signature`` and changes nothing; a core that
  does not answer makes it ``503``/``504`` so the processor delivers it again;
- a statement is uploaded as the raw XML body (``application/xml`` or ``text/xml``, at
  most 20 MiB: the body-limit middleware's upload route) by compliance or admin,
  confirmed with 2FA like every back-office change; support may read the lines;
- amounts leave as decimal strings; without ``[fiat]`` every route answers ``503
  fiat_unavailable``; the card routes exist only with ``[fiat.stripe]`` (an endpoint
  nobody configured is not there to be probed).

(No ``from __future__ import annotations``: FastAPI reads the signatures at runtime.)
"""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, FastAPI, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import Response

from tradewind.gateways.rest.auth import Reader, SessionUser
from tradewind.gateways.rest.errors import JSON, ApiError
from tradewind.gateways.rest.staff import staff_guards
from tradewind.gateways.rest.units import MAX_INT, format_minor, to_minor
from tradewind.services.admin import Actor, AdminService
from tradewind.services.fiat import references
from tradewind.services.fiat.bank_deposits import BankDeposits, ImportReport
from tradewind.services.fiat.card_deposits import CardDeposits
from tradewind.services.fiat.ports import CardIntent, FiatLine
from tradewind.services.kyc import KycService

STATEMENT_PATH = "/api/v1/admin/fiat/statements"
STATEMENT_MAX_BYTES = 20 * 1024 * 1024
STATEMENT_TYPES = frozenset({b"application/xml", b"text/xml"})
WEBHOOK_PATH = "/api/v1/fiat/stripe/webhook"

Currency = Annotated[
    str, Query(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", description="e.g. EUR")
]
LineId = Annotated[int, Path(ge=1, le=MAX_INT)]


class CardDepositIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")]
    amount: Annotated[str, Field(max_length=40, description='Decimal string, e.g. "25.00"')]


class AssignIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    user_id: Annotated[int, Field(ge=1, le=MAX_INT)]
    note: Annotated[str, Field(min_length=3, max_length=256)]


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    note: Annotated[str, Field(min_length=3, max_length=256)]


def line_out(line: FiatLine) -> dict[str, Any]:
    return {
        "id": line.id,
        "ref": line.ref,
        "account_iban": line.account_iban,
        "entry_ref": line.entry_ref,
        "currency": line.currency,
        "amount": line.amount_text,
        "user_id": line.user_id,
        "status": line.status,
        "reason": line.reason,
        "remittance": line.remittance,
        "debtor_name": line.debtor_name,
        "debtor_iban": line.debtor_iban,
        "booking_date": line.booking_date,
        "line": line.line_no,
        "imported_at": line.imported_at_ms,
        "credited_seq": line.credited_seq,
        "resolved_by": line.resolved_by,
        "resolved_at": line.resolved_at_ms,
        "note": line.note,
    }


def report_out(r: ImportReport) -> dict[str, Any]:
    return {
        "version": r.version,
        "message_id": r.message_id,
        "lines": r.lines,
        "new": r.new,
        "already_imported": r.already_imported,
        "matched": r.matched,
        "review": r.review,
        "credited": r.credited,
        "skipped": r.skipped,
    }


def intent_out(intent: CardIntent, decimals: int) -> dict[str, Any]:
    return {
        "id": intent.id,
        "currency": intent.currency,
        "amount": format_minor(intent.processor_amount, decimals),
        "status": intent.status,
        "created_at": intent.created_at_ms,
        "updated_at": intent.updated_at_ms,
    }


def install_fiat(
    app: FastAPI,
    bank: BankDeposits | None,
    cards: CardDeposits | None,
    admin: AdminService | None,
    kyc: KycService | None,
) -> None:
    def service() -> BankDeposits:
        if bank is None:
            raise ApiError(503, "fiat_unavailable", "no fiat rails are configured")
        return bank

    async def fiat_allowed(user_id: int) -> None:
        if kyc is not None and service().config.require_kyc:
            await kyc.check_fiat(user_id)

    user = APIRouter(prefix="/api/v1/fiat", tags=["fiat"])

    @user.get("/deposit-instructions", summary="Where to send a bank transfer, and its reference")
    async def deposit_instructions(principal: Reader, currency: Currency) -> Response:
        await fiat_allowed(principal.user_id)
        i = await service().instructions(principal.user_id, currency)
        return JSON(
            {
                "currency": i.currency,
                "iban": i.iban,
                "bic": i.bic,
                "beneficiary": i.beneficiary,
                "reference": i.reference,
                "reference_display": references.display(i.reference),
                "note": "put the reference in the transfer's reference or remittance field",
            }
        )

    if cards is not None:  # without [fiat.stripe] the card routes do not exist
        _card_routes(user, cards, fiat_allowed)

    app.include_router(user)
    if admin is None:
        return
    guards = staff_guards(admin)
    Staff = Annotated[Actor, Depends(guards.staff)]
    Confirmed = Annotated[Actor, Depends(guards.confirmed)]
    back = APIRouter(prefix="/api/v1/admin/fiat", tags=["admin"])

    @back.post(
        "/statements",
        summary="Import a camt.053 statement (raw XML body)",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {
                    media: {"schema": {"type": "string", "format": "binary"}}
                    for media in ("application/xml", "text/xml")
                },
            }
        },
    )
    async def import_statement(request: Request, actor: Confirmed) -> Response:
        data = await request.body()
        if not data:
            raise ApiError(400, "invalid_statement", "send the statement file as the body")
        return JSON(report_out(await service().import_statement(data, actor)))

    @back.get("/lines", summary="Imported statement lines (the review queue by default)")
    async def lines(
        actor: Staff,
        status: Annotated[
            Literal["review", "matched", "credited", "returned", "return_sent", "all"], Query()
        ] = "review",
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        after: Annotated[int, Query(ge=0, le=MAX_INT)] = 0,
    ) -> Response:
        chosen = None if status == "all" else status
        found = await service().list_lines(actor, status=chosen, limit=limit, after_id=after)
        items = [line_out(line) for line in found]
        return JSON({"items": items, "next_after": found[-1].id if len(found) == limit else None})

    @back.post("/lines/{line_id}/assign", summary="Credit a review line to a user")
    async def assign(line_id: LineId, body: AssignIn, actor: Confirmed) -> Response:
        return JSON(line_out(await service().assign(actor, line_id, body.user_id, body.note)))

    @back.post("/lines/{line_id}/return", summary="Mark a review line to be sent back")
    async def return_line(line_id: LineId, body: NoteIn, actor: Confirmed) -> Response:
        return JSON(line_out(await service().return_line(actor, line_id, body.note)))

    app.include_router(back)


def _card_routes(
    user: APIRouter, cards: CardDeposits, fiat_allowed: Callable[[int], Awaitable[None]]
) -> None:
    @user.post("/card-deposits", status_code=201, summary="Start a card deposit (Stripe)")
    async def card_deposit(principal: SessionUser, body: CardDepositIn) -> Response:
        decimals = cards.card_decimals(body.currency)
        await fiat_allowed(principal.user_id)
        amount = to_minor(body.amount, decimals, "amount")
        created = await cards.create(principal.user_id, body.currency, amount)
        out = intent_out(created.intent, decimals)
        out["client_secret"] = created.client_secret
        return JSON(out, status_code=201)

    @user.get("/card-deposits/{intent_id}", summary="A card deposit's status")
    async def card_deposit_status(
        principal: Reader,
        intent_id: Annotated[str, Path(max_length=80, pattern=r"^[A-Za-z0-9_]+$")],
    ) -> Response:
        intent = await cards.intent_of(principal.user_id, intent_id)
        if intent is None:
            raise ApiError(404, "unknown_card_deposit", "no such card deposit")
        return JSON(intent_out(intent, cards.card_decimals(intent.currency)))

    @user.post("/stripe/webhook", summary="Stripe's webhook (signed; not for clients)")
    async def stripe_webhook(request: Request) -> Response:
        outcome = await cards.webhook(await request.body(), request.headers.get("stripe-signature"))
        return JSON({"status": outcome.status, "intent": outcome.intent_id})
