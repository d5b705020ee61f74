"""SMTP delivery of the outbox (aiosmtplib), configured by ``TRADEWIND_SMTP_URL``.

URL forms: ``smtp://[user:password@]host[:port]`` (plain, port 25; STARTTLS is used if
the server offers it), ``smtp+starttls://...`` (STARTTLS required, port 587),
``smtps://...`` (TLS from the first byte, port 465). ``?from=address`` sets the sender
(default ``no-reply@<host>``).

Invariants:
- a mail is sent at least once and, barring a crash between the server's acceptance and
  ``mark_sent``, exactly once: rows are claimed with a lease, so replicas never send the
  same row at the same time, and a failed send is retried later with backoff;
- the password in the URL never appears in ``repr`` or in logs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from urllib.parse import parse_qs, unquote, urlsplit

import structlog

from tradewind.adapters.sql.outbox import OutboxMail, SqlOutbox

log = structlog.get_logger(__name__)

_SCHEMES = {"smtp": (25, None), "smtp+starttls": (587, "starttls"), "smtps": (465, "tls")}


class SmtpUrlError(ValueError):
    """``TRADEWIND_SMTP_URL`` is malformed (the message never contains the password)."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int
    security: str | None
    """``None`` (opportunistic STARTTLS), ``starttls`` (required) or ``tls``."""
    sender: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        try:
            parts = urlsplit(url)
            port_given = parts.port
        except ValueError as exc:
            raise SmtpUrlError("smtp_url: not a valid URL") from exc
        if parts.scheme not in _SCHEMES:
            raise SmtpUrlError("smtp_url: scheme must be smtp, smtp+starttls or smtps")
        if not parts.hostname:
            raise SmtpUrlError("smtp_url: a host is required")
        default_port, security = _SCHEMES[parts.scheme]
        query = parse_qs(parts.query)
        sender = query.get("from", [f"no-reply@{parts.hostname}"])[0]
        return cls(
            host=parts.hostname,
            port=port_given or default_port,
            security=security,
            sender=sender,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
        )


def to_message(mail: OutboxMail, sender: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = f"Tradewind <{sender}>"
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message["Date"] = formatdate(mail.created_at_ms / 1000, usegmt=True)
    message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
    message.set_content(mail.body)
    return message


class SmtpSender:
    def __init__(self, settings: SmtpSettings, *, timeout_s: float = 20.0) -> None:
        self._settings = settings
        self._timeout = timeout_s

    async def send(self, mail: OutboxMail) -> None:
        import aiosmtplib  # here: only a process with SMTP configured needs it

        s = self._settings
        await aiosmtplib.send(
            to_message(mail, s.sender),
            hostname=s.host,
            port=s.port,
            username=s.username,
            password=s.password,
            use_tls=s.security == "tls",
            start_tls=True if s.security == "starttls" else None,
            timeout=self._timeout,
        )


DAY_MS = 86_400_000


class OutboxDeliverer:
    """Drains the outbox into SMTP: ``start()`` a task, ``stop()`` it; or call
    :meth:`deliver_once` (tests).

    The same task deletes sent rows older than ``retention_ms`` (30 days by default)
    every ``sweep_interval_s``: only delivery marks rows sent, so where there is no
    deliverer there is nothing to sweep. Their bodies are already gone; the rest
    (recipient, subject, time) is kept that long for support questions ("did you send
    me a reset link?"), then deleted as personal data no longer needed."""

    def __init__(
        self,
        outbox: SqlOutbox,
        sender: SmtpSender,
        now_ms: Callable[[], int],
        *,
        interval_s: float = 1.0,
        lease_ms: int = 60_000,
        batch: int = 50,
        max_attempts: int = 10,
        retention_ms: int = 30 * DAY_MS,
        sweep_interval_s: float = 3600.0,
    ) -> None:
        if retention_ms <= 0:
            raise ValueError("retention_ms must be positive")
        self._retention_ms = retention_ms
        self._sweep_interval = sweep_interval_s
        self._outbox = outbox
        self._sender = sender
        self._now_ms = now_ms
        self._interval = interval_s
        self._lease_ms = lease_ms
        self._batch = batch
        self._max_attempts = max_attempts
        self._task: asyncio.Task[None] | None = None

    async def deliver_once(self) -> int:
        """Send what is pending now; returns how many were sent."""
        import aiosmtplib

        sent = 0
        now = self._now_ms()
        for mail in await self._outbox.claim(now, self._lease_ms, self._batch):
            if mail.attempts > self._max_attempts:
                await self._outbox.mark_failed(mail.id, "gave up", now + 10 * 365 * 86_400_000)
                log.error("mail given up", mail_id=mail.id, kind=mail.kind)
                continue
            try:
                await self._sender.send(mail)
            except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
                backoff = min(3_600_000, 5_000 * 2 ** min(mail.attempts, 10))
                await self._outbox.mark_failed(mail.id, type(exc).__name__, now + backoff)
                log.warning("mail not sent", mail_id=mail.id, error=type(exc).__name__)
                continue
            await self._outbox.mark_sent(mail.id, self._now_ms())
            sent += 1
        return sent

    async def sweep_once(self) -> int:
        """Delete the mails sent more than the retention ago; returns how many."""
        before = self._now_ms() - self._retention_ms
        deleted = 0
        while True:
            n = await self._outbox.delete_sent(before, limit=1000)
            deleted += n
            if n < 1000:
                return deleted

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        next_sweep = loop.time()
        while True:
            try:
                await self.deliver_once()
                if loop.time() >= next_sweep:
                    next_sweep = loop.time() + self._sweep_interval
                    if deleted := await self.sweep_once():
                        log.info("sent mails deleted", count=deleted)
            except Exception as exc:  # keep delivering after a database hiccup
                log.error("outbox delivery failed", error=repr(exc))
            await asyncio.sleep(self._interval)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="mail-outbox")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
