"""The composition root: the one place where adapters meet the ports they fill.

Embedded wiring (DESIGN §7): one process holding

- the journaled core in the data directory and its :class:`CoreRunner` (the only
  writer; answers after fsync);
- SQLite in the data directory (migrations applied on start) for accounts and the
  projectors' tables (ledger, orders and fills, trades);
- the accounts service (argon2id, sessions, API keys sealed under the master key);
- the in-process event fan-out: after every group commit the runner's events go, in
  seq order, to the market-data service, the projectors and the WebSocket hub;
- the REST app over all of it.

Invariants:
- nothing but this module constructs an adapter; services and gateways receive them;
- consumers see every durable command exactly once and in seq order: on start, before
  the runner accepts anything, the in-memory market data is rebuilt by replaying the
  journal from seq 1 and the SQL projectors catch up from their stored offsets; then
  they follow the runner's publisher;
- the core's set-up (assets, symbols, fees) is made of core commands submitted through
  the runner, so it is journaled and comes back from the journal on restart; only demo
  mode seeds anything, and only what is missing;
- a failing consumer is logged and never stops the runner or the other consumers.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from fastapi import FastAPI

from tradewind.adapters.local import InMemoryReplayCache, SystemClock
from tradewind.adapters.secretbox import ENV_VAR as SECRET_KEY_VAR
from tradewind.adapters.secretbox import AesGcmSecretBox, load_master_keys
from tradewind.adapters.sql import (
    Database,
    SqlApiKeyRepository,
    SqlSessionRepository,
    SqlUserRepository,
    upgrade_async,
)
from tradewind.adapters.sql.projections import SqlProjectionStore
from tradewind.core.commands import AnyCommand
from tradewind.core.engine import Core
from tradewind.core.events import Event
from tradewind.gateways.metrics import Metrics
from tradewind.gateways.rest.app import RestContext, create_app
from tradewind.gateways.rest.ws import DecimalFormatter, install_ws
from tradewind.gateways.ws.hub import Hub
from tradewind.journal.recovery import JournaledCore
from tradewind.runtime import sequencer
from tradewind.runtime.config import Settings
from tradewind.services.accounts import AccountsService
from tradewind.services.catalog import CoreCatalog
from tradewind.services.history import ProjectedHistory
from tradewind.services.marketdata import MarketData
from tradewind.services.marketmaker import MarketMaker
from tradewind.services.ports import Clock
from tradewind.services.projectors import (
    LedgerProjector,
    OrdersProjector,
    ProjectorRunner,
    TradesProjector,
    journal_batches,
)
from tradewind.services.trading import CoreTimeout, CoreUnavailable, InvalidCommand, TradingService

log = structlog.get_logger(__name__)

Consumer = Callable[[int, int, list[Event]], None]
REPLAY_CHUNK = 2000
MARKET_CLOCK_S = 5.0


class EventFanout:
    """The runner's publisher: hands each durable command's events to every consumer."""

    def __init__(self) -> None:
        self._consumers: list[tuple[str, Consumer]] = []
        self.failures = 0

    def add(self, name: str, consumer: Consumer) -> None:
        self._consumers.append((name, consumer))

    def publish(self, seq: int, ts: int, events: list[Event]) -> None:
        for name, consumer in self._consumers:
            try:
                consumer(seq, ts, events)
            except Exception:
                self.failures += 1
                log.exception("event consumer failed", consumer=name, seq=seq)


class RunnerBus:
    """The :class:`~tradewind.services.trading.CommandBus` of embedded mode: the core
    runner of this process, with a deadline and metrics."""

    def __init__(
        self,
        runner: Callable[[], sequencer.CoreRunner | None],
        metrics: Metrics,
        timeout_s: float,
    ) -> None:
        self._runner = runner
        self._metrics = metrics
        self._timeout_s = timeout_s

    @property
    def available(self) -> bool:
        runner = self._runner()
        return runner is not None and runner.running

    async def submit(self, cmd: AnyCommand) -> sequencer.Applied:
        runner = self._runner()
        op: str = cmd.__struct_config__.tag  # type: ignore[assignment]
        commands = self._metrics.commands
        if runner is None or not runner.running:
            commands.labels(op=op, outcome="unavailable").inc()
            raise CoreUnavailable()
        start = time.perf_counter()
        try:
            applied = await asyncio.wait_for(asyncio.shield(runner.submit(cmd)), self._timeout_s)
        except sequencer.CoreUnavailable:
            commands.labels(op=op, outcome="unavailable").inc()
            raise CoreUnavailable() from None
        except TimeoutError:
            commands.labels(op=op, outcome="timeout").inc()
            raise CoreTimeout() from None
        except ValueError as e:
            commands.labels(op=op, outcome="invalid").inc()
            raise InvalidCommand(str(e)) from None
        self._metrics.command_latency.labels(op=op).observe(time.perf_counter() - start)
        commands.labels(op=op, outcome="applied").inc()
        return applied


class EmbeddedExchange:
    """The whole exchange in one process. ``await start()`` / ``await stop()``, or use
    :attr:`app` with its lifespan (``manage_lifecycle=True``)."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        manage_lifecycle: bool = True,
    ) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.data_dir = settings.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.db = Database.from_url(settings.resolved_database_url)

        environ = {SECRET_KEY_VAR: settings.secret_key} if settings.secret_key else {}
        self.accounts = AccountsService(
            users=SqlUserRepository(self.db),
            sessions=SqlSessionRepository(self.db),
            api_keys=SqlApiKeyRepository(self.db),
            replay_cache=InMemoryReplayCache(),
            secret_box=AesGcmSecretBox(load_master_keys(self.data_dir, environ)),
            clock=self.clock,
        )
        self.store = SqlProjectionStore(self.db)
        self.projectors = ProjectorRunner(
            [LedgerProjector(self.store), OrdersProjector(self.store), TradesProjector(self.store)],
            journal_dir=self.data_dir,
        )
        self.history = ProjectedHistory(self.store, self.projectors)
        self.market_data = MarketData()
        self.jcore: JournaledCore | None = None
        self.runner: sequencer.CoreRunner | None = None
        self.bus = RunnerBus(lambda: self.runner, self.metrics, settings.core_timeout_ms / 1000)
        self.trading = TradingService(self.bus, self.history)
        self.catalog = CoreCatalog(self._core)
        self.hub = Hub(
            formatter=DecimalFormatter(self.catalog),
            is_symbol=self._is_symbol,
            book_snapshot=self.market_data.book,
            balances=self._balance_of,
            assets_of=self._assets_of,
        )
        self.market_data.subscribe(self.hub.publish_market)
        self.fanout = EventFanout()
        self.fanout.add("marketdata", self._market_data_apply)
        self.fanout.add("projectors", self.projectors.publish)
        self.fanout.add("ws", self.hub.publish_events)
        self.market_maker: MarketMaker | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

        self.metrics.track_queue("core", lambda: self.runner.queue_depth if self.runner else 0)
        self.metrics.track_queue("projectors", lambda: self.projectors.queue_depth)
        self.metrics.track_ws_clients(lambda: self.hub.client_count)

        self.context = RestContext(
            accounts=self.accounts,
            trading=self.trading,
            catalog=self.catalog,
            balances=self.catalog,
            market_data=self.market_data,
            metrics=self.metrics,
            now_ms=self.clock.now_ms,
            readiness=self.readiness,
            demo=settings.demo,
            faucet_max_units=settings.faucet_max,
            max_body_bytes=settings.max_body_bytes,
            extra_routes=[self._install_ws],
        )
        self.app: FastAPI = create_app(
            self.context, lifespan=self.lifespan if manage_lifecycle else None
        )

    # -- wiring helpers -------------------------------------------------------------

    def _core(self) -> Core:
        if self.jcore is None:
            raise CoreUnavailable("the trading core is starting")
        return self.jcore.core

    def _market_data_apply(self, seq: int, ts: int, events: list[Event]) -> None:
        self.market_data.apply(seq, ts, events)

    def _install_ws(self, app: FastAPI) -> None:
        install_ws(app, self.hub, self.accounts, self.clock.now_ms)

    def _is_symbol(self, symbol: str) -> bool:
        return self.jcore is not None and symbol in self.jcore.core.markets

    def _assets_of(self, symbol: str) -> tuple[str, str] | None:
        m = self.jcore.core.markets.get(symbol) if self.jcore is not None else None
        return None if m is None else (m.base, m.quote)

    def _balance_of(self, user: int, asset: str) -> tuple[int, int] | None:
        if self.jcore is None:
            return None
        b = self.jcore.core.accounts.get(user, {}).get(asset)
        return None if b is None else (b.available, b.locked)

    # -- life cycle -----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        """Migrate, recover, rebuild the read models, start the runner (and the demo)."""
        if self._started:
            return
        self._started = True
        settings = self.settings
        await upgrade_async(settings.resolved_database_url)
        self.jcore = await asyncio.to_thread(
            JournaledCore, self.data_dir, snapshot_every=settings.snapshot_every
        )
        last = self.jcore.last_seq
        recovery = self.jcore.recovery
        log.info(
            "core recovered",
            data_dir=str(self.data_dir),
            last_seq=last,
            snapshot_seq=recovery.snapshot_seq,
            replayed=recovery.replayed,
            truncated_bytes=recovery.truncated_bytes,
        )
        await self._rebuild_market_data(last)
        low = await self.projectors.catch_up(self.data_dir, until_seq=last)
        log.info("projectors caught up", seq=low)
        self.projectors.start()
        self.runner = sequencer.CoreRunner(
            self.jcore, clock_ms=self.clock.now_ms, publish=self.fanout.publish
        )
        self.runner.start()
        self.context.not_before_ms = self.clock.now_ms()
        self._tasks.append(asyncio.create_task(self._market_clock(), name="market-clock"))
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="ws-heartbeats"))
        if settings.demo:
            from tradewind.runtime.demo import seed_demo

            await seed_demo(self)
            if settings.demo_bot:
                self.market_maker = await self._start_market_maker()
        log.info("exchange started", url=settings.url, demo=settings.demo)

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self.market_maker is not None:
            await self.market_maker.stop()
            self.market_maker = None
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.runner is not None:
            await self.runner.stop()  # commits what is pending and releases the journal
            self.runner = None
        elif self.jcore is not None:
            await asyncio.to_thread(self.jcore.close)
        await self.projectors.stop()
        self.hub.close_all()
        await self.db.dispose()
        log.info("exchange stopped")

    async def _rebuild_market_data(self, last: int) -> None:
        """Replays the journal into the in-memory consumers (market data, WS order
        tracking), before the runner publishes anything."""
        if last == 0:
            return
        batches = journal_batches(self.data_dir, after=0, until=last)

        def take() -> list[Any]:
            chunk = []
            for batch in batches:
                chunk.append(batch)
                if len(chunk) >= REPLAY_CHUNK:
                    break
            return chunk

        while chunk := await asyncio.to_thread(take):
            for batch in chunk:
                self.market_data.apply(batch.seq, batch.ts, batch.events)
                self.hub.publish_events(batch.seq, batch.ts, batch.events)  # tracks orders
        self.market_data.advance(self.clock.now_ms())

    async def _market_clock(self) -> None:
        """Lets the 24 h windows roll while nothing trades."""
        while True:
            await asyncio.sleep(MARKET_CLOCK_S)
            try:
                self.market_data.advance(self.clock.now_ms())
            except Exception:
                log.exception("market-data clock failed")

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.hub.heartbeat.interval_s)
            try:
                self.hub.heartbeat_round()
            except Exception:
                log.exception("websocket heartbeat failed")

    async def _start_market_maker(self) -> MarketMaker:
        from tradewind.runtime.demo import BOT_FUNDING, REFERENCE_PRICES, bot_users

        maker, taker = await bot_users(self)
        bot = MarketMaker(
            self.bus,
            self.catalog,
            self.market_data,
            self.catalog,
            maker_user=maker,
            taker_user=taker,
            reference_prices=REFERENCE_PRICES,
            funding=BOT_FUNDING,
            seed=self.settings.bot_seed,
        )
        await bot.start()
        return bot

    async def readiness(self) -> Mapping[str, bool]:
        database = False
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0), self.db.read() as session:
                await session.execute(sa.text("SELECT 1"))
                database = True
        return {
            "core": self.bus.available,
            "database": database,
            "projectors": self.projectors.failed is None,
        }


def build_embedded(
    settings: Settings, *, clock: Clock | None = None, manage_lifecycle: bool = True
) -> EmbeddedExchange:
    """The embedded exchange for ``settings`` (nothing runs until it is started)."""
    return EmbeddedExchange(settings, clock=clock, manage_lifecycle=manage_lifecycle)


def data_dir_of(settings: Settings) -> Path:
    return settings.data_dir.resolve()
