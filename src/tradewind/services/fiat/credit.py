"""One external credit through the core, exactly once (ADR 0019, ADR 0024).

The Deposit carries the external payment's ref (``camt:...``, ``stripe:...``); the core
applies a ref once and answers ``duplicate_deposit`` ever after. So a credit retried
after a crash, delivered twice by a webhook, or raced by two processes ends with one
credit, and the caller learns which case it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tradewind.core.commands import MAX_INT, Deposit
from tradewind.core.events import Deposited, Rejected
from tradewind.services.trading import CommandBus


@dataclass(frozen=True, slots=True)
class CreditOutcome:
    status: Literal["credited", "already", "refused"]
    seq: int | None = None
    reason: str | None = None


async def credit_once(
    bus: CommandBus, *, user: int, asset: str, amount: int, ref: str
) -> CreditOutcome:
    """Submit the Deposit. ``credited``: applied now (with its seq); ``already``: the core
    had applied this ref before; ``refused``: the core rejected it (reason kept). Core
    failures (unavailable, timeout) propagate: the outcome is unknown, retry later."""
    if not 0 < amount <= MAX_INT:
        return CreditOutcome("refused", reason="invalid_amount")
    applied = await bus.submit(Deposit(user=user, asset=asset, amount=amount, ref=ref))
    rejected = next((e for e in applied.events if type(e) is Rejected), None)
    if rejected is None and any(type(e) is Deposited for e in applied.events):
        return CreditOutcome("credited", seq=applied.seq)
    if rejected is not None and rejected.reason == "duplicate_deposit":
        return CreditOutcome("already")
    return CreditOutcome("refused", reason=rejected.reason if rejected else "no_event")
