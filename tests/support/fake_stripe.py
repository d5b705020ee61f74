"""A loopback stand-in for the part of Stripe's API the card adapter uses (creating a
PaymentIntent), and the signing of webhooks as Stripe does it. No network: the official
``stripe`` package is pointed at this server through its configurable API base."""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class FakeStripe:
    url: str = ""
    requests: list[dict[str, Any]] = field(default_factory=list)
    intents: dict[str, dict[str, Any]] = field(default_factory=dict)


@contextmanager
def fake_stripe() -> Iterator[FakeStripe]:
    state = FakeStripe()
    ids = itertools.count(1)

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            form = dict(parse_qsl(body))
            state.requests.append(
                {
                    "path": self.path,
                    "form": form,
                    "authorization": self.headers.get("authorization"),
                    "idempotency_key": self.headers.get("idempotency-key"),
                }
            )
            if self.path != "/v1/payment_intents":
                self.send_response(404)
                self.end_headers()
                return
            pid = f"pi_test{next(ids)}"
            intent = {
                "id": pid,
                "object": "payment_intent",
                "amount": int(form["amount"]),
                "currency": form["currency"],
                "client_secret": f"{pid}_secret_abc",
                "status": "requires_payment_method",
                "metadata": {"tradewind_user": form.get("metadata[tradewind_user]")},
            }
            state.intents[pid] = intent
            out = json.dumps(intent).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(out)))
            self.end_headers()
            self.wfile.write(out)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def event(
    intent_id: str, amount: int, currency: str, kind: str = "payment_intent.succeeded"
) -> bytes:
    return json.dumps(
        {
            "id": f"evt_{intent_id}_{kind}",
            "object": "event",
            "type": kind,
            "created": int(time.time()),
            "data": {
                "object": {
                    "id": intent_id,
                    "object": "payment_intent",
                    "amount": amount,
                    "amount_received": amount if kind.endswith("succeeded") else 0,
                    "currency": currency,
                }
            },
        }
    ).encode()


def signature(payload: bytes, secret: str, at: int | None = None) -> str:
    """The ``Stripe-Signature`` header Stripe would send (``t=...,v1=...``)."""
    t = int(time.time()) if at is None else at
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"
