"""Stripe PaymentIntents and webhook signatures, with the official ``stripe`` package.

Invariants:
- an intent is created with automatic payment methods, the user id in its metadata and
  an idempotency key, so a retried request never creates a second charge;
- a webhook counts only when ``stripe.Webhook.construct_event`` verifies its
  ``Stripe-Signature`` (HMAC-SHA256 of ``timestamp.payload`` with the endpoint's secret)
  and its timestamp is within the tolerance; any other body (forged, re-signed with
  another secret, replayed late, or not JSON) is :class:`WebhookRefused`;
- the secret key and webhook secret never reach a log line or an error message.
"""

from __future__ import annotations

import json
from typing import Any

import stripe

from tradewind.services.fiat.config import StripeSettings
from tradewind.services.fiat.ports import CardEvent, CreatedIntent, WebhookRefused


class StripeProcessor:
    def __init__(self, settings: StripeSettings) -> None:
        self._settings = settings
        base = {"api": settings.api_base} if settings.api_base else None
        self._client = stripe.StripeClient(
            settings.secret_key,
            base_addresses=base,  # type: ignore[arg-type]
            http_client=stripe.HTTPXClient(),
            max_network_retries=2,
        )

    async def create_intent(
        self, *, amount: int, currency: str, user_id: int, idempotency_key: str
    ) -> CreatedIntent:
        intent = await self._client.v1.payment_intents.create_async(
            params={
                "amount": amount,
                "currency": currency,
                "automatic_payment_methods": {"enabled": True},
                "metadata": {"tradewind_user": str(user_id)},
            },
            options={"idempotency_key": idempotency_key},
        )
        secret = intent.client_secret
        if not intent.id or secret is None:
            raise RuntimeError("Stripe answered a payment intent without id or secret")
        return CreatedIntent(intent.id, secret, int(intent.amount), str(intent.currency))

    def verify_event(self, payload: bytes, signature: str | None) -> CardEvent:
        if not signature:
            raise WebhookRefused("the Stripe-Signature header is missing")
        try:
            text = payload.decode("utf-8")
            stripe.Webhook.construct_event(
                text, signature, self._settings.webhook_secret, tolerance=self._settings.tolerance_s
            )
            # verified over exactly these bytes: read them as plain JSON
            event: Any = json.loads(text)
        except stripe.SignatureVerificationError:
            raise WebhookRefused() from None
        except (ValueError, UnicodeDecodeError):
            raise WebhookRefused("the webhook body is not a JSON event") from None
        if not isinstance(event, dict):
            raise WebhookRefused("the webhook body is not a JSON event")
        data = event.get("data")
        obj = data.get("object") if isinstance(data, dict) else None
        if not isinstance(obj, dict):
            obj = {}
        is_intent = obj.get("object") == "payment_intent"
        received = obj.get("amount_received") if is_intent else None
        return CardEvent(
            id=str(event.get("id", "")),
            type=str(event.get("type", "")),
            intent_id=str(obj["id"]) if is_intent and "id" in obj else None,
            amount_received=received if isinstance(received, int) else None,
            currency=str(obj["currency"]).lower() if is_intent and "currency" in obj else None,
        )
