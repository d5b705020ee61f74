"""Margin-call and liquidation emails.

Invariants:
- every margin call and every finished liquidation the margin projector recorded is
  mailed to the wallet's owner exactly once: the store claims the notice and puts the
  mail in the outbox in one transaction (:meth:`NoticeStore.mail_notice`), so mailers in
  several processes, or a restart, never send one twice;
- the mail shows the user's anti-phishing code (services/mail.py) and only figures the
  core reported; it asks for no action by link.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

import structlog

from tradewind.services.identity_ports import IdentityRepository
from tradewind.services.mail import Mail, margin_mail
from tradewind.services.margin import MarginRecord
from tradewind.services.ports import Clock

log = structlog.get_logger(__name__)


class NoticeStore(Protocol):
    async def pending_notices(self, limit: int = 100) -> list[MarginRecord]: ...

    async def mail_notice(self, record_id: int, mail: Mail | None, at_ms: int) -> bool: ...

    async def user_of(self, record_id: int) -> int | None: ...


def _level(value: object) -> str:
    n = int(value)  # type: ignore[call-overload]
    return f"{n // 10_000}.{n % 10_000:04d}"


def notice_text(r: MarginRecord, amount: Callable[[str, int], str]) -> tuple[str, str]:
    """``(subject, text)`` of a notice record; ``amount(asset, minor)`` formats amounts."""
    where = f"isolated margin wallet {r.symbol}" if r.symbol else "cross margin wallet"
    d = r.data
    if r.kind == "margin_call":
        return (
            "margin call",
            f"Your {where} has reached a margin level of {_level(d['level'])}, at or below "
            f"the margin-call level {_level(d['margin_call_level'])}. At "
            f"{_level(d['liquidation_level'])} it will be liquidated. Add funds to the "
            "wallet or repay debt to raise its level.",
        )
    parts = []
    for key, label in (
        ("left", "left in the wallet"),
        ("taken_over", "taken over by the insurance fund"),
        ("insurance_paid", "debt paid by the insurance fund"),
        ("pool_loss", "debt written off"),
    ):
        part = d.get(key)
        if isinstance(part, dict) and part:
            shown = ", ".join(f"{amount(a, int(v))} {a}" for a, v in sorted(part.items()))
            parts.append(f"{label}: {shown}")
    return (
        "liquidation",
        f"Your {where} was liquidated: its margin level fell to the liquidation level. "
        "Its orders were cancelled, its positions closed and its debts repaid. "
        + ("; ".join(parts) + "." if parts else "")
        + " The margin history (GET /api/v1/margin/liquidations) lists every step.",
    )


NOTICE_PAGE = 100
"""Notices one pass reads (``pending_notices``' default limit)."""


class MarginMailer:
    """Polls the notices not mailed yet and puts their mail in the outbox."""

    def __init__(
        self,
        store: NoticeStore,
        identity: IdentityRepository,
        clock: Clock,
        amount: Callable[[str, int], str],
        poll_s: float = 1.0,
        notices: Callable[[], int] | None = None,
    ) -> None:
        """``notices``: how many notices have been stored so far, when every notice is
        stored by this process (the embedded exchange's projector): a poll reads the
        store only when that changed (or the previous one left more to mail)."""
        self._store = store
        self._identity = identity
        self._clock = clock
        self._amount = amount
        self.poll_s = poll_s
        self._notices = notices
        self.mailed = 0
        self._more = True  # the last pass may have left notices (a full page)

    async def run_once(self) -> int:
        sent = 0
        pending = await self._store.pending_notices()
        self._more = len(pending) >= NOTICE_PAGE
        for r in pending:
            user = await self._store.user_of(r.id)
            identity = None if user is None else await self._identity.get_identity(user)
            mail = None
            if identity is not None and user is not None:
                subject, text = notice_text(r, self._amount)
                mail = margin_mail(identity.email, subject, text, identity.anti_phishing_code, user)
            if await self._store.mail_notice(r.id, mail, self._clock.now_ms()) and mail:
                sent += 1
        self.mailed += sent
        return sent

    async def run(self) -> None:
        seen: int | None = None
        while True:
            count = None if self._notices is None else self._notices()
            if count is None or count != seen or self._more:
                try:
                    await self.run_once()
                    seen = count
                except Exception:
                    log.exception("margin mailer failed")
            await asyncio.sleep(self.poll_s)
