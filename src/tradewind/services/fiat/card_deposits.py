"""Card deposits through a card processor's payment intents (Stripe), credited once.

Invariants:
- a card deposit starts as an intent created at the processor for an exact amount and
  currency and stored with its user before the client gets the secret to pay it, so
  every payment that can succeed is known here with its user, amount and currency;
- the only thing that credits is a webhook event whose signature checks (the
  processor's secret, a timestamp within the tolerance); anything else is refused with
  ``400 invalid_signature`` and changes nothing;
- ``payment_intent.succeeded`` credits the stored intent's user through a core
  ``Deposit`` with ``ref = "stripe:<intent id>"``, which the core applies once, so the
  same event delivered twice (or two events of one intent) credits once;
- the event's amount received and currency must equal the stored intent's; otherwise
  the intent becomes ``mismatch`` (logged at critical level and audited), and nothing
  is credited;
- an intent closed as ``mismatch`` or ``failed`` (cancelled, or refused by the core) is
  never credited by a later event: a person looks at it;
- a core that does not answer makes the webhook fail (5xx), so the processor delivers
  it again later; nothing is marked before the core answered.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import structlog

from tradewind.services.audit import AuditLog
from tradewind.services.errors import ServiceError
from tradewind.services.fiat.bank_deposits import UnknownCurrency
from tradewind.services.fiat.config import FiatConfig
from tradewind.services.fiat.credit import credit_once
from tradewind.services.fiat.ports import CardIntent, CardProcessor, FiatStore
from tradewind.services.ports import Clock
from tradewind.services.trading import CommandBus

log = structlog.get_logger(__name__)

ZERO_DECIMAL = frozenset(
    [
        "BIF",
        "CLP",
        "DJF",
        "GNF",
        "JPY",
        "KMF",
        "KRW",
        "MGA",
        "PYG",
        "RWF",
        "UGX",
        "VND",
        "VUV",
        "XAF",
        "XOF",
        "XPF",
    ]
)
THREE_DECIMAL = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])


def processor_decimals(currency: str) -> int:
    """The decimals of Stripe's amounts in ``currency`` (its "zero-decimal" and
    three-decimal currencies; two for the rest)."""
    if currency in ZERO_DECIMAL:
        return 0
    return 3 if currency in THREE_DECIMAL else 2


class CardsUnavailable(ServiceError):
    code = "cards_unavailable"
    status_hint = 503
    default_message = "card deposits are not configured on this exchange"


class UnsupportedCardCurrency(UnknownCurrency):
    """``unknown_currency`` of the bank rails: one code, one meaning."""

    default_message = "card deposits are not possible in this currency"


class CardAmountTooLarge(ServiceError):
    code = "amount_too_large"
    status_hint = 400
    default_message = "the amount is above the card deposit limit"


@dataclass(frozen=True, slots=True)
class CardDeposit:
    intent: CardIntent
    client_secret: str
    decimals: int
    """Of ``intent.processor_amount`` (what the client shows)."""


@dataclass(frozen=True, slots=True)
class WebhookOutcome:
    status: Literal["credited", "already", "ignored", "unknown_intent", "mismatch", "failed"]
    intent_id: str | None = None


class CardDeposits:
    def __init__(
        self,
        *,
        config: FiatConfig,
        processor: CardProcessor,
        store: FiatStore,
        bus: CommandBus,
        audit: AuditLog,
        clock: Clock,
        decimals_of: Callable[[str], int | None],
    ) -> None:
        self.config = config
        self._processor = processor
        self._store = store
        self._bus = bus
        self._audit = audit
        self._clock = clock
        self._decimals_of = decimals_of

    def card_decimals(self, currency: str) -> int:
        """The decimals a card amount in ``currency`` may have here; refuses currencies
        that are not fiat here or that the core holds with fewer decimals than cards."""
        if self.config.stripe is None:
            raise CardsUnavailable()
        core = self._decimals_of(currency) if currency in self.config.currencies else None
        card = processor_decimals(currency)
        if core is None or core < card:
            raise UnsupportedCardCurrency(f"card deposits are not possible in {currency!r}")
        return card

    async def create(self, user_id: int, currency: str, processor_amount: int) -> CardDeposit:
        """Start a card deposit of ``processor_amount`` (minor units of the card amount,
        see :meth:`card_decimals`)."""
        card = self.card_decimals(currency)
        core = self._decimals_of(currency)
        assert core is not None and self.config.stripe is not None
        if processor_amount > self.config.stripe.max_amount_units * 10**card:
            raise CardAmountTooLarge(
                f"at most {self.config.stripe.max_amount_units} {currency} per card deposit"
            )
        created = await self._processor.create_intent(
            amount=processor_amount,
            currency=currency.lower(),
            user_id=user_id,
            idempotency_key=secrets.token_hex(16),
        )
        now = self._clock.now_ms()
        intent = CardIntent(
            id=created.id,
            user_id=user_id,
            currency=currency,
            amount=processor_amount * 10 ** (core - card),
            processor_amount=processor_amount,
            status="created",
            created_at_ms=now,
            updated_at_ms=now,
        )
        await self._store.add_intent(intent)
        log.info("card deposit created", intent=created.id, user=user_id, currency=currency)
        return CardDeposit(intent, created.client_secret, card)

    async def intent_of(self, user_id: int, intent_id: str) -> CardIntent | None:
        intent = await self._store.intent(intent_id)
        return intent if intent is not None and intent.user_id == user_id else None

    async def webhook(self, payload: bytes, signature: str | None) -> WebhookOutcome:
        if self.config.stripe is None:
            raise CardsUnavailable()
        event = self._processor.verify_event(payload, signature)  # WebhookRefused
        if event.intent_id is None or not event.type.startswith("payment_intent."):
            return WebhookOutcome("ignored")
        intent = await self._store.intent(event.intent_id)
        if intent is None:
            log.warning("webhook for an unknown payment intent", intent=event.intent_id)
            return WebhookOutcome("unknown_intent", event.intent_id)
        now = self._clock.now_ms()
        if event.type == "payment_intent.canceled":
            await self._store.settle_intent(intent.id, "failed", at_ms=now, note=event.type)
            return WebhookOutcome("failed", intent.id)
        if event.type != "payment_intent.succeeded":  # a failed attempt may be retried
            return WebhookOutcome("ignored", intent.id)
        if intent.status in ("mismatch", "failed"):  # closed: a person looks at it
            return WebhookOutcome(intent.status, intent.id)
        if (
            event.amount_received != intent.processor_amount
            or (event.currency or "").upper() != intent.currency
        ):
            note = f"received {event.amount_received} {event.currency}"
            log.critical("card payment does not match its intent", intent=intent.id, note=note)
            if await self._store.settle_intent(intent.id, "mismatch", at_ms=now, note=note):
                await self._audit.record(
                    "fiat.card_mismatch",
                    subject_id=intent.user_id,
                    details={
                        "intent": intent.id,
                        "expected": f"{intent.processor_amount} {intent.currency}",
                        "received": note,
                    },
                )
            return WebhookOutcome("mismatch", intent.id)
        outcome = await credit_once(
            self._bus,
            user=intent.user_id,
            asset=intent.currency,
            amount=intent.amount,
            ref=intent.ref,
        )
        if outcome.status == "refused":
            log.error("card deposit refused by the core", intent=intent.id, reason=outcome.reason)
            await self._store.settle_intent(intent.id, "failed", at_ms=now, note=outcome.reason)
            return WebhookOutcome("failed", intent.id)
        await self._store.settle_intent(
            intent.id,
            "credited",
            at_ms=now,
            seq=outcome.seq,
            note=None if outcome.status == "credited" else "credited_before",
        )
        if outcome.status == "credited":
            log.info("card deposit credited", intent=intent.id, seq=outcome.seq)
        return WebhookOutcome(outcome.status, intent.id)
