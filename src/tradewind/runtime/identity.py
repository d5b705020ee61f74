"""Wiring of the identity features: the accounts service with its SQL stores, the mail
outbox, and (when ``smtp_url`` is set) the deliverer that sends it.

One function for both modes so embedded and distributed wire accounts alike; the
caller chooses the replay cache and the API-key store (in memory and cached in
embedded mode, Redis and uncached in distributed mode).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import structlog
from fastapi import FastAPI

from tradewind.adapters.mail.smtp import OutboxDeliverer, SmtpSender, SmtpSettings, SmtpUrlError
from tradewind.adapters.sql import Database, SqlSessionRepository, SqlUserRepository
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.email_tokens import SqlTokenRepository
from tradewind.adapters.sql.login_throttle import SqlLoginThrottleRepository
from tradewind.adapters.sql.outbox import SqlOutbox
from tradewind.gateways.rest.devmail import install_dev_mail
from tradewind.runtime.config import ConfigError, Settings
from tradewind.services.accounts import AccountsService
from tradewind.services.audit import AuditLog
from tradewind.services.ports import ApiKeyRepository, Clock, ReplayCache, SecretBox

log = structlog.get_logger(__name__)


@dataclass
class IdentityWiring:
    accounts: AccountsService
    outbox: SqlOutbox
    deliverer: OutboxDeliverer | None
    dev_mail: bool
    """Serve ``/dev/mail``: demo mode without SMTP only (it shows every email)."""
    audit: AuditLog | None = None
    """The accounts' audit log: its off-the-request-path entries (failed sign-ins, ADR
    0017) are drained at shutdown, before the database goes."""
    drain_timeout_s: float = 10.0

    def install(self, app: FastAPI) -> None:
        if self.dev_mail:
            install_dev_mail(app, self.outbox)

    def start(self) -> None:
        if self.deliverer is not None:
            self.deliverer.start()

    async def stop(self) -> None:
        if self.audit is not None:
            try:
                await asyncio.wait_for(self.audit.drain(), self.drain_timeout_s)
            except TimeoutError:
                log.error("audit entries unwritten at shutdown", timeout_s=self.drain_timeout_s)
        if self.deliverer is not None:
            await self.deliverer.stop()


def build_identity(
    settings: Settings,
    db: Database,
    *,
    api_keys: ApiKeyRepository,
    replay_cache: ReplayCache,
    secret_box: SecretBox,
    clock: Clock,
) -> IdentityWiring:
    users = SqlUserRepository(db)
    outbox = SqlOutbox(db)
    audit = AuditLog(SqlAuditStore(db), clock)
    accounts = AccountsService(
        users=users,
        sessions=SqlSessionRepository(db),
        api_keys=api_keys,
        replay_cache=replay_cache,
        secret_box=secret_box,
        clock=clock,
        identity=users,
        tokens=SqlTokenRepository(db),
        throttle=SqlLoginThrottleRepository(db),
        outbox=outbox,
        # security events (sign-ins, notices, key revocations) into the audit log
        audit=audit,
    )
    deliverer = None
    if settings.smtp_url:
        try:
            smtp = SmtpSettings.from_url(settings.smtp_url)
        except SmtpUrlError as exc:
            raise ConfigError(f"{exc} (TRADEWIND_SMTP_URL)") from exc
        deliverer = OutboxDeliverer(outbox, SmtpSender(smtp), clock.now_ms)
    return IdentityWiring(
        accounts, outbox, deliverer, dev_mail=settings.demo and deliverer is None, audit=audit
    )
