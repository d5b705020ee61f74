"""Wiring of the fiat rails for the API processes (embedded and distributed alike):
the bank-deposit service over the SQL store and the camt.053 reader, card deposits
through Stripe when ``[fiat.stripe]`` is set, their routes, and a background pass that
credits matched statement lines.

Invariants:
- without ``[fiat]`` (and outside demo mode) nothing is built and the routes answer
  ``503 fiat_unavailable``;
- the crediting pass runs in every API process; that is safe because a line is credited
  only through ``Deposit(ref)``, which the core applies once (two processes crediting
  the same line end with one credit and both mark it credited); it also picks up lines
  stored by ``tradewind fiat import-camt`` (which has no core to talk to);
- fiat currencies missing from the core are added (``AddAsset`` with the configured
  decimals) by that pass once the core answers; a currency the core holds with other
  decimals is logged as an error and credits use the core's decimals.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import structlog
from fastapi import FastAPI

from tradewind.adapters.banks.camt053 import Camt053Reader
from tradewind.adapters.sql import Database
from tradewind.adapters.sql.admin import SqlAdminStore
from tradewind.adapters.sql.fiat import SqlFiatStore
from tradewind.core.commands import AddAsset
from tradewind.core.events import Rejected
from tradewind.gateways.rest.fiat import install_fiat
from tradewind.runtime.config import Settings
from tradewind.runtime.protection import Protection
from tradewind.services.catalog import MarketCatalog
from tradewind.services.fiat.bank_deposits import BankDeposits
from tradewind.services.fiat.card_deposits import CardDeposits
from tradewind.services.fiat.config import FiatConfig, demo_fiat, parse_fiat
from tradewind.services.fiat.withdrawals import FiatPayouts
from tradewind.services.funding.withdrawals import WithdrawalService
from tradewind.services.ports import Clock
from tradewind.services.trading import CommandBus, CoreFailure

log = structlog.get_logger(__name__)

CREDIT_POLL_S = 5.0


def fiat_config(settings: Settings) -> FiatConfig | None:
    if settings.fiat is not None:
        return parse_fiat(settings.fiat)
    return demo_fiat() if settings.demo else None


@dataclass
class FiatWiring:
    bank: BankDeposits | None
    cards: CardDeposits | None
    protection: Protection
    bus: CommandBus
    catalog: MarketCatalog
    poll_s: float = CREDIT_POLL_S
    payouts: FiatPayouts | None = None
    """Fiat withdrawals (services/fiat/withdrawals.py): each pass settles those the bank
    paid and releases those it returned; set by the composition root."""
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _assets_ready: bool = False

    def use_withdrawals(self, service: WithdrawalService) -> None:
        """Settle and release fiat withdrawals in each pass, and mark paid those a
        statement shows as booked debits (uploads and the command line alike)."""
        self.payouts = FiatPayouts(service)
        if self.bank is not None:
            self.bank.on_debits = self.payouts.paid_by_statement

    def install(self, app: FastAPI) -> None:
        install_fiat(app, self.bank, self.cards, self.protection.admin, self.protection.kyc)

    def start(self) -> None:
        if self.bank is not None and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="fiat-credit")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None

    async def ensure_assets(self) -> bool:
        """Add the configured fiat currencies the core does not have yet."""
        if self.bank is None:
            return True
        for currency, decimals in sorted(self.bank.config.currencies.items()):
            try:
                known = self.catalog.asset(currency)
            except CoreFailure:
                return False
            if known is None:
                applied = await self.bus.submit(AddAsset(asset=currency, decimals=decimals))
                refused = next((e for e in applied.events if type(e) is Rejected), None)
                if refused is None:
                    log.info("fiat currency added to the core", asset=currency, seq=applied.seq)
                elif refused.reason != "asset_exists":  # another process added it first
                    log.error("fiat currency refused by the core", asset=currency)
                    return False
            elif known.decimals != decimals:
                log.error(
                    "fiat currency has other decimals in the core; the core's are used",
                    asset=currency,
                    configured=decimals,
                    core=known.decimals,
                )
        return True

    async def run_once(self) -> int:
        assert self.bank is not None
        if not self._assets_ready:
            self._assets_ready = await self.ensure_assets()
        credited = await self.bank.credit_pending()
        if self.payouts is not None:
            await self.payouts.finish()
        return credited

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except CoreFailure as exc:
                log.warning("fiat crediting waits for the core", error=exc.code)
            except Exception:
                log.exception("fiat crediting pass failed")
            await asyncio.sleep(self.poll_s)


def build_fiat(
    settings: Settings,
    db: Database,
    bus: CommandBus,
    clock: Clock,
    catalog: MarketCatalog,
    protection: Protection,
) -> FiatWiring:
    config = fiat_config(settings)
    if config is None:
        return FiatWiring(None, None, protection, bus, catalog)
    store = SqlFiatStore(db)
    admin_store = SqlAdminStore(db)

    def decimals_of(currency: str) -> int | None:
        try:
            asset = catalog.asset(currency)
        except CoreFailure:
            return None
        return None if asset is None else asset.decimals

    async def user_exists(user_id: int) -> bool:
        return await admin_store.get_user(user_id) is not None

    bank = BankDeposits(
        config=config,
        store=store,
        reader=Camt053Reader(),
        bus=bus,
        audit=protection.audit,
        clock=clock,
        decimals_of=decimals_of,
        user_exists=user_exists,
    )
    cards = None
    if config.stripe is not None:
        from tradewind.adapters.cards.stripe_processor import StripeProcessor

        cards = CardDeposits(
            config=config,
            processor=StripeProcessor(config.stripe),
            store=store,
            bus=bus,
            audit=protection.audit,
            clock=clock,
            decimals_of=decimals_of,
        )
    return FiatWiring(bank, cards, protection, bus, catalog)
