"""Wiring of the protections (rate limits, audit log, admin API, HTTP hardening) for
both the embedded exchange and the API replicas, so bootstrap.py only calls
:func:`build_protection` and hands over what it returns.

Invariants:
- the buckets are in this process's memory in embedded mode and in Redis when a Redis
  client is given (distributed mode: shared by every replica);
- the same :class:`AdminService` is the trading path's frozen-account guard and the
  admin API's service, so a freeze is seen by both at once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import FastAPI

from tradewind.adapters.kyc_files import FileDocumentStore
from tradewind.adapters.sql.admin import SqlAdminStore
from tradewind.adapters.sql.alerts import SqlAlertStore
from tradewind.adapters.sql.audit import SqlAuditStore
from tradewind.adapters.sql.engine import Database
from tradewind.adapters.sql.kyc import SqlKycStore
from tradewind.adapters.sql.users import SqlUserRepository
from tradewind.gateways.rest.admin import install_admin
from tradewind.gateways.rest.admin_alerts import install_admin_alerts
from tradewind.gateways.rest.admin_fees import install_admin_fees
from tradewind.gateways.rest.kyc import install_kyc
from tradewind.gateways.rest.security import SecurityOptions, install_security
from tradewind.runtime.config import Settings
from tradewind.services.admin import AdminService, ListenedFrozen
from tradewind.services.alerts import AlertService
from tradewind.services.audit import AuditLog
from tradewind.services.catalog import MarketCatalog
from tradewind.services.fees import FeeAdmin, FeeTable
from tradewind.services.kyc import KycService
from tradewind.services.ports import Clock
from tradewind.services.ratelimit import (
    BucketStore,
    MemoryBuckets,
    OrderRateGuard,
    RateLimiter,
    parse_rules,
)
from tradewind.services.trading import CommandBus, OrderGuard

if TYPE_CHECKING:
    from redis.asyncio import Redis


@dataclass
class Protection:
    limiter: RateLimiter
    audit: AuditLog
    admin: AdminService
    security: SecurityOptions
    kyc: KycService
    bus: CommandBus | None = None
    """The core's command bus, for the admin API's market halt/resume."""
    alerts: AlertService | None = None
    """Operator alerts (services/alerts.py): raise through it; the back office lists them."""
    fee_table: FeeTable | None = None
    """The core's fee tiers, where the core runs in this process (the embedded
    exchange sets it); without it the admin fee routes answer 503 fees_unavailable."""

    @property
    def guards(self) -> list[OrderGuard]:
        """For :class:`~tradewind.services.trading.TradingService`: frozen accounts
        first (a frozen account's orders must not even spend its order budget)."""
        return [self.admin, OrderRateGuard(self.limiter)]

    def install(self, app: FastAPI, catalog: MarketCatalog) -> None:
        install_admin(app, self.admin, catalog, self.bus)
        install_kyc(app, self.kyc, self.admin)
        if self.alerts is not None:
            install_admin_alerts(app, self.alerts, self.admin)
        fees = None
        if self.fee_table is not None and self.bus is not None:
            fees = FeeAdmin(bus=self.bus, admin=self.admin, audit=self.audit, table=self.fee_table)
        install_admin_fees(app, self.admin, fees)
        install_security(app, self.security)


def build_protection(
    settings: Settings,
    db: Database,
    bus: CommandBus,
    clock: Clock,
    *,
    redis: Redis | None = None,
    reset_second_factor: Callable[[int], Awaitable[object]] | None = None,
    sole_writer: bool = False,
    listened_frozen: ListenedFrozen | None = None,
) -> Protection:
    """``sole_writer``: this process is the only one that freezes accounts (embedded
    mode), so the order guard keeps the frozen set exact in memory. ``listened_frozen``:
    frozen flags kept exact by ``NOTIFY`` (an API replica on PostgreSQL, ADR 0045)."""
    store: BucketStore
    if redis is not None:
        from tradewind.adapters.redis.ratelimit import RedisBuckets

        store = RedisBuckets(redis, prefix=settings.redis_prefix)
    else:
        store = MemoryBuckets()
    limiter = RateLimiter(store, clock, parse_rules(settings.rate_limits))
    audit = AuditLog(SqlAuditStore(db), clock)
    admin = AdminService(
        store=SqlAdminStore(db),
        bus=bus,
        audit=audit,
        clock=clock,
        # approved 2FA resets clear the TOTP secret and the recovery codes
        reset_second_factor=reset_second_factor or SqlUserRepository(db).disable_totp,
        sole_writer=sole_writer,
        listened_frozen=listened_frozen,
    )
    origins = tuple(o.strip() for o in settings.cors_origins.split(",") if o.strip())
    security = SecurityOptions(limiter=limiter, cors_origins=origins, hsts=settings.hsts)
    kyc = KycService(
        store=SqlKycStore(db),
        # the data dir is never served; distributed replicas need it on a shared volume
        documents=FileDocumentStore(settings.data_dir.resolve() / "kyc-documents"),
        audit=audit,
        clock=clock,
        webhook_secrets=parse_webhook_secrets(settings.kyc_webhook_secrets),
    )
    alerts = AlertService(SqlAlertStore(db), audit, clock)
    return Protection(limiter, audit, admin, security, kyc, bus, alerts)


def parse_webhook_secrets(text: str | None) -> dict[str, bytes]:
    """``provider=secret,...`` (the ``kyc_webhook_secrets`` setting)."""
    out: dict[str, bytes] = {}
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        name, _, secret = part.partition("=")
        out[name.strip()] = secret.strip().encode()
    return out
