"""Wiring of margin for users (docs/margin.md "Using margin"): the margin service and
its routes, the margin projector, the WebSocket ``margin`` channel, the margin-call
mailer, the mark-price feeder, and the demo's margin set-up.

Where each part runs:
- embedded (``tradewind serve``/``demo``): everything in the one process;
- distributed: the feeder next to the core (:class:`~.bootstrap.CoreProcess`: one
  place, so marks are not doubled); the projector and the mailer in ``tradewind
  projector``; the routes in every API replica (history, transfers, borrows and repays
  through the bus and SQL; account figures and WS level updates from the inputs the
  core process publishes to Redis, ``services/margin_mirror.py``, ADR 0033).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from tradewind.adapters.pricefeed import build_feeds
from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.margin import SqlMarginStore
from tradewind.core.commands import (
    AnyCommand,
    Deposit,
    InsuranceFund,
    MarginAsset,
    MarginCross,
    MarginSymbol,
    Mark,
    PoolFund,
)
from tradewind.core.engine import Core
from tradewind.core.events import Event
from tradewind.runtime.config import Settings
from tradewind.services.admin import AdminService
from tradewind.services.audit import AuditLog
from tradewind.services.catalog import MarketCatalog
from tradewind.services.margin import (
    MarginService,
    MarginStateReader,
    NoMarginState,
    Watermark,
)
from tradewind.services.margin_feed import MarkFeeder, PriceFeed, parse_margin_config
from tradewind.services.margin_mirror import MirroredMarginState
from tradewind.services.margin_notices import MarginMailer
from tradewind.services.margin_state import CoreMarginState
from tradewind.services.ports import Clock, WriteMarks
from tradewind.services.projectors import ProjectorRunner
from tradewind.services.projectors.margin import MarginProjector
from tradewind.services.trading import AppliedCommand, CommandBus, TradingService

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tradewind.gateways.ws.format import Formatter
    from tradewind.gateways.ws.hub import Hub
    from tradewind.gateways.ws.margin import MarginChannel
    from tradewind.runtime.bootstrap import EmbeddedExchange

# The gateways (FastAPI, the REST app) are imported where MarginWiring uses them: the
# core process needs only core_feeder, and importing the REST app costs it start-up time.

log = structlog.get_logger(__name__)

WS_FLUSH_S = 1.0
"""Margin-level updates on the WebSocket are coalesced to one per user per this long."""


def feeder_for(
    settings: Settings,
    bus: CommandBus,
    state: CoreMarginState,
    catalog: MarketCatalog,
    clock: Clock,
    feeds: dict[str, Sequence[PriceFeed]] | None = None,
) -> MarkFeeder:
    """The mark feeder of ``settings``' ``[margin]`` table (``feeds`` replaces its feeds:
    tests pass fakes)."""
    config = parse_margin_config(settings.margin or {})
    if feeds is None:
        feeds = dict(build_feeds(config.feeds, clock.now_ms, config.feed_timeout_ms / 1000))

    def symbols() -> list[str]:
        if not state.available:
            return []
        return [s.symbol for s in state.config().symbols]

    return MarkFeeder(
        bus,
        symbols,
        catalog.market,
        feeds,
        interval_s=config.mark_interval_ms / 1000,
        timeout_s=config.feed_timeout_ms / 1000,
        now_ms=clock.now_ms,
        preview=state.mark_preview,
        current=state.mark_of,
        interest_due=state.interest_due,
    )


class _SubmitBus:
    """A :class:`CommandBus` over a process's own submit function (the core process)."""

    def __init__(self, submit: Callable[[AnyCommand], Awaitable[AppliedCommand]]) -> None:
        self._submit = submit

    @property
    def available(self) -> bool:
        return True

    async def submit(self, cmd: AnyCommand) -> AppliedCommand:
        return await self._submit(cmd)


def core_feeder(
    settings: Settings,
    submit: Callable[[AnyCommand], Awaitable[AppliedCommand]],
    core: Callable[[], Core],
    catalog: MarketCatalog,
    clock: Clock,
) -> MarkFeeder:
    """The feeder of ``tradewind core`` (distributed mode): marks straight into the
    process's own runner."""
    return feeder_for(settings, _SubmitBus(submit), CoreMarginState(core), catalog, clock)


MARGIN_LAZY_OFFSET = 1000
"""Commands without a margin event the stored margin offset may lag by (embedded)."""


class MarginWiring:
    """Margin's parts for one process; ``start``/``stop`` with the process."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        bus: CommandBus,
        trading: TradingService,
        catalog: MarketCatalog,
        clock: Clock,
        marks: WriteMarks,
        *,
        core: Callable[[], Core | None] | None,
        hub: Hub | None,
        formatter: Formatter | None,
        journal_dir: Path | None,
        run_projector: bool,
        run_feeder: bool,
        progress: Watermark | None = None,
        admin: AdminService | None = None,
        audit: AuditLog | None = None,
        mirror: MirroredMarginState | None = None,
    ) -> None:
        """``core``: the in-process core (``None`` in an API replica); ``run_projector``:
        this process projects the margin history (else ``progress`` tells how far the
        projector process got); ``run_feeder``: this process sends the marks;
        ``mirror``: figures from the core process's published inputs (a replica)."""
        self.settings = settings
        self.store = SqlMarginStore(db)
        local = CoreMarginState(core) if core is not None else None
        self.state: MarginStateReader = (
            local if local is not None else mirror if mirror is not None else NoMarginState()
        )
        # the only writer, and nobody reads its progress from SQL: commands without a
        # margin event do not each cost a transaction (MarginProjector's lazy_offset)
        lazy = MARGIN_LAZY_OFFSET if run_projector and progress is None else 0
        projector = MarginProjector(self.store, lazy_offset=lazy)
        self.projectors = ProjectorRunner([projector], journal_dir=journal_dir)
        watermark: Watermark = self.projectors if progress is None else progress
        self.service = MarginService(bus, self.state, self.store, watermark, marks)
        self.trading = trading
        self.catalog = catalog
        self.channel: MarginChannel | None = None
        if hub is not None and formatter is not None:
            from tradewind.gateways.ws.margin import MarginChannel

            owner = self.state.owner if core is not None or mirror is not None else None
            prefetch = None if mirror is None else mirror.prepare_many
            self.channel = MarginChannel(hub, self.state, formatter, owner, prefetch)
        # where this process stores every notice, the mailer polls only after new ones
        self.mailer = MarginMailer(
            self.store,
            SqlUserRepository(db),
            clock,
            self._amount,
            notices=(lambda: projector.notices_written) if lazy else None,
        )
        self.feeder = (
            feeder_for(settings, bus, local, catalog, clock)
            if run_feeder and local is not None
            else None
        )
        self.run_projector = run_projector
        self.admin = admin
        self.audit = audit
        self._tasks: list[asyncio.Task[None]] = []

    def _amount(self, asset: str, minor: int) -> str:
        from tradewind.gateways.rest.units import format_minor

        info = self.catalog.asset(asset)
        return format_minor(minor, 0 if info is None else info.decimals)

    def install(self, app: FastAPI) -> None:
        from tradewind.gateways.rest.margin import (
            install_margin_admin_routes,
            install_margin_routes,
        )

        install_margin_routes(app, self.service, self.trading, self.catalog)
        if self.admin is not None:
            install_margin_admin_routes(app, self.service, self.catalog, self.admin, self.audit)

    def publish(self, seq: int, ts: int, events: list[Event]) -> None:
        """The fan-out consumer: the projector (background) and the WS channel."""
        if self.run_projector:
            self.projectors.publish(seq, ts, events)
        if self.channel is not None:
            self.channel.apply(seq, ts, events)

    async def catch_up(self, data_dir: Path, until_seq: int) -> None:
        """Bring the projector to ``until_seq`` from the journal (before the runner
        publishes), then let it follow :meth:`publish`."""
        if self.run_projector:
            await self.projectors.catch_up(data_dir, until_seq=until_seq)
            self.projectors.start()

    def start_tasks(self) -> None:
        if self.channel is not None:
            self._tasks.append(asyncio.create_task(self.channel.run(WS_FLUSH_S), name="margin-ws"))
        # every process with the routes mails; a notice is claimed with its outbox row,
        # so several replicas never send one twice
        self._tasks.append(asyncio.create_task(self.mailer.run(), name="margin-mail"))
        if self.feeder is not None:
            self._tasks.append(asyncio.create_task(self.feeder.run(), name="mark-feeder"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.run_projector:
            await self.projectors.stop()


# -- demo ---------------------------------------------------------------------------------

TREASURY_EMAIL = "margin-treasury@demo.tradewind.invalid"
DEMO_RATES: dict[str, tuple[int, int, int]] = {
    # asset: (hourly rate ppb, borrow limit per wallet, pool) in minor units
    "USDT": (11_416, 1_000_000 * 10**6, 50_000_000 * 10**6),  # ~10 % a year
    "BTC": (5_708, 10 * 10**8, 500 * 10**8),  # ~5 % a year
    "ETH": (5_708, 200 * 10**8, 10_000 * 10**8),
}
DEMO_INSURANCE = ("USDT", 1_000_000 * 10**6)
DEMO_MARGIN_SYMBOLS: tuple[MarginSymbol, ...] = tuple(
    MarginSymbol(
        symbol=s,
        max_leverage=10,  # initial level 1.1112
        margin_call_level=10_800,
        liquidation_level=10_500,
        liquidation_fee_bps=50,
        liquidation_band_bps=500,
    )
    for s in ("BTC-USDT", "ETH-USDT")
)
DEMO_CROSS = MarginCross(
    max_leverage=5, margin_call_level=11_500, liquidation_level=11_000, liquidation_fee_bps=50
)


def missing_margin_setup(core: Core, treasury: int, now_ms: int) -> list[AnyCommand]:
    """The demo's margin commands ``core`` lacks: terms, pools and insurance funded from
    the treasury account (deposited first), a first mark at the reference prices."""
    from tradewind.runtime.demo import REFERENCE_PRICES

    m = core.margin
    out: list[AnyCommand] = []
    for asset, (rate, limit, _) in DEMO_RATES.items():
        if m.assets.get(asset) != (rate, limit):
            out.append(MarginAsset(asset=asset, hourly_rate=rate, borrow_limit=limit))
    for s in DEMO_MARGIN_SYMBOLS:
        if s.symbol not in m.symbols:
            out.append(s)
    if m.cross is None:
        out.append(DEMO_CROSS)
    if not m.funded:
        for asset, (_, _, pool) in DEMO_RATES.items():
            out.append(Deposit(user=treasury, asset=asset, amount=pool))
            out.append(PoolFund(user=treasury, asset=asset, amount=pool))
        asset, amount = DEMO_INSURANCE
        out.append(Deposit(user=treasury, asset=asset, amount=amount))
        out.append(InsuranceFund(user=treasury, asset=asset, amount=amount))
    for s in DEMO_MARGIN_SYMBOLS:
        if s.symbol not in m.marks:
            price = REFERENCE_PRICES[s.symbol]
            out.append(Mark(symbol=s.symbol, feeds=((price, now_ms),)))
    return out


async def seed_margin_demo(exchange: EmbeddedExchange) -> int:
    """Submit what the demo's margin set-up lacks; returns how many commands it took."""
    from tradewind.runtime.demo import _user_id

    treasury = await _user_id(exchange, TREASURY_EMAIL)
    assert exchange.jcore is not None
    commands = missing_margin_setup(exchange.jcore.core, treasury, exchange.clock.now_ms())
    for cmd in commands:
        await exchange.bus.submit(cmd)
    return len(commands)
