"""The composition root: the one place where adapters meet the ports they fill.

Two wirings of the same services (DESIGN §7): embedded (:class:`EmbeddedExchange`,
``tradewind serve``/``demo``) and distributed (:class:`CoreProcess`,
:class:`ApiReplica`, :class:`ProjectorProcess`: ``tradewind core``/``api``/
``projector`` on PostgreSQL, Redis and RabbitMQ; see the section at the end and
docs/distributed.md).

Embedded wiring: one process holding

- the journaled core in the data directory and its :class:`CoreRunner` (the only
  writer; answers after fsync);
- SQLite in the data directory (migrations applied on start) for accounts and the
  projectors' tables (ledger, orders and fills, trades);
- the accounts service (argon2id, sessions, API keys sealed under the master key; a key
  read once stays in memory, :mod:`tradewind.runtime.keycache`);
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
- a failing consumer is logged and never stops the runner or the other consumers;
- distributed: the core process is the only writer of the journal and of the market
  data and catalog in Redis, the projector the only writer of the projections, the API
  replicas hold no state of their own (everything they know comes from PostgreSQL,
  Redis and the bus), so any number of them may run; a replica answers a command only
  with what the core replied after fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
import structlog

from tradewind.adapters.local import InMemoryReplayCache, SystemClock
from tradewind.adapters.secretbox import ENV_VAR as SECRET_KEY_VAR
from tradewind.adapters.secretbox import AesGcmSecretBox, load_master_keys
from tradewind.adapters.sql import (
    Database,
    SqlApiKeyRepository,
    upgrade_async,
)
from tradewind.adapters.sql.engine import is_sqlite
from tradewind.adapters.sql.margin import SqlMarginStore
from tradewind.adapters.sql.projection_writer import ThreadProjectionStore
from tradewind.adapters.sql.projections import SqlProjectionStore
from tradewind.core.commands import AnyCommand
from tradewind.core.engine import Core
from tradewind.core.events import Event, Trade
from tradewind.journal.recovery import JournaledCore
from tradewind.runtime import sequencer
from tradewind.runtime.authcache import AuthInvalidations, ListenedApiKeyRepository
from tradewind.runtime.config import ConfigError, Settings
from tradewind.runtime.funding import build_funding
from tradewind.runtime.keycache import CachedApiKeyRepository
from tradewind.runtime.margin import MarginWiring, core_feeder
from tradewind.runtime.watcher import embedded_watchers
from tradewind.runtime.withdrawals import PayoutLoop, build_processor, build_withdrawals
from tradewind.services.catalog import CoreCatalog, ProjectedBalances
from tradewind.services.history import ProjectedHistory
from tradewind.services.marketdata import MarketData
from tradewind.services.marketmaker import MarketMaker
from tradewind.services.open_orders import FollowedOrderIndex, OpenOrderIndex
from tradewind.services.ports import ApiKeyRepository, Clock
from tradewind.services.projectors import (
    LedgerProjector,
    OrdersProjector,
    ProjectorRunner,
    TradesProjector,
    journal_batches,
)
from tradewind.services.projectors.margin import MarginProjector
from tradewind.services.projectors.ports import Batch
from tradewind.services.projectors.writer_thread import WriterThread
from tradewind.services.trading import CoreTimeout, CoreUnavailable, InvalidCommand, TradingService

if TYPE_CHECKING:
    from fastapi import FastAPI

    from tradewind.gateways.metrics import Metrics

# The HTTP side (FastAPI, the REST and WebSocket gateways, the modules that install
# their routes) is imported by the classes that serve HTTP (EmbeddedExchange,
# ApiReplica), not here: the core and projector processes never import it, which
# shortens their start by the REST app's import (docs/performance.md#start-up).

log = structlog.get_logger(__name__)

Consumer = Callable[[int, int, list[Event]], None]
REPLAY_CHUNK = 2000
MARKET_CLOCK_S = 5.0


class EventFanout:
    """The runner's publisher: hands each durable command's events to every consumer."""

    def __init__(self) -> None:
        self._consumers: list[tuple[str, Consumer]] = []
        self._groups: list[tuple[str, Callable[[], None], Callable[[], None]]] = []
        self._in_group = False
        self.failures = 0

    def add(self, name: str, consumer: Consumer) -> None:
        self._consumers.append((name, consumer))

    def add_group(self, name: str, begin: Callable[[], None], end: Callable[[], None]) -> None:
        """``begin()`` before the first command of a group commit is published, ``end()``
        after its last (:meth:`group_published`, the runner's ``group_published``)."""
        self._groups.append((name, begin, end))

    def publish(self, seq: int, ts: int, events: list[Event]) -> None:
        if not self._in_group and self._groups:
            self._in_group = True
            for name, begin, _ in self._groups:
                self._call(name, begin, seq)
        for name, consumer in self._consumers:
            try:
                consumer(seq, ts, events)
            except Exception:
                self.failures += 1
                log.exception("event consumer failed", consumer=name, seq=seq)

    def group_published(self) -> None:
        if self._in_group:
            self._in_group = False
            for name, _, end in self._groups:
                self._call(name, end, None)

    def _call(self, name: str, hook: Callable[[], None], seq: int | None) -> None:
        try:
            hook()
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
        self._counters: dict[tuple[str, str], Any] = {}
        self._latency: dict[str, Any] = {}

    def _count(self, op: str, outcome: str) -> None:
        # labelled children looked up once: labels() takes a lock and builds a key
        child = self._counters.get((op, outcome))
        if child is None:
            child = self._metrics.commands.labels(op=op, outcome=outcome)
            self._counters[(op, outcome)] = child
        child.inc()

    @property
    def available(self) -> bool:
        runner = self._runner()
        return runner is not None and runner.running

    async def submit(self, cmd: AnyCommand) -> sequencer.Applied:
        runner = self._runner()
        op: str = cmd.__struct_config__.tag  # type: ignore[assignment]
        if runner is None or not runner.running:
            self._count(op, "unavailable")
            raise CoreUnavailable()
        start = time.perf_counter()
        # the runner's own future with a timer, rather than wait_for(shield(...)) and the
        # task it makes per command; a timed-out or abandoned command is still applied,
        # only its outcome is not reported (504 says so)
        timer: asyncio.TimerHandle | None = None
        try:
            fut = runner.submit_future(cmd)
            timer = asyncio.get_running_loop().call_later(self._timeout_s, _expire, fut)
            applied = await fut
        except sequencer.CoreUnavailable:
            self._count(op, "unavailable")
            raise CoreUnavailable() from None
        except TimeoutError:
            self._count(op, "timeout")
            raise CoreTimeout() from None
        except ValueError as e:
            self._count(op, "invalid")
            raise InvalidCommand(str(e)) from None
        finally:
            if timer is not None:
                timer.cancel()
        latency = self._latency.get(op)
        if latency is None:
            latency = self._latency[op] = self._metrics.command_latency.labels(op=op)
        latency.observe(time.perf_counter() - start)
        self._count(op, "applied")
        return applied


async def _dispose(store: ThreadProjectionStore) -> None:
    store.dispose()


def _expire(fut: asyncio.Future[sequencer.Applied]) -> None:
    if not fut.done():
        fut.set_exception(TimeoutError())


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
        from tradewind.gateways.metrics import Metrics
        from tradewind.gateways.rest.app import RestContext, create_app
        from tradewind.gateways.rest.ws import DecimalFormatter
        from tradewind.gateways.ws.hub import Hub
        from tradewind.runtime.deposit_history import deposit_history_routes
        from tradewind.runtime.fiat import build_fiat
        from tradewind.runtime.identity import build_identity
        from tradewind.runtime.protection import build_protection

        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.data_dir = settings.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.metrics = Metrics()
        self.db = Database.from_url(
            settings.resolved_database_url, pool_size=settings.database_pool_size
        )

        environ = {SECRET_KEY_VAR: settings.secret_key} if settings.secret_key else {}
        self.identity = build_identity(
            settings,
            self.db,
            # this process is the table's only writer: keys can be cached exactly
            api_keys=CachedApiKeyRepository(SqlApiKeyRepository(self.db)),
            replay_cache=InMemoryReplayCache(),
            secret_box=AesGcmSecretBox(load_master_keys(self.data_dir, environ)),
            clock=self.clock,
        )
        self.accounts = self.identity.accounts
        self.store = SqlProjectionStore(self.db)
        # On SQLite the projectors write from their own thread on a plain connection,
        # off the event loop that serves HTTP (docs/performance.md); reads stay async.
        # The thread itself starts with start() and ends with stop().
        self._writer_store: ThreadProjectionStore | None = None
        if is_sqlite(settings.resolved_database_url):
            self._writer_store = ThreadProjectionStore(settings.resolved_database_url)
        self.projectors = ProjectorRunner(
            [
                LedgerProjector(self._writer_store or self.store),
                OrdersProjector(self._writer_store or self.store),
                TradesProjector(self._writer_store or self.store),
            ],
            journal_dir=self.data_dir,
        )
        self.history = ProjectedHistory(self.store, self.projectors)
        self.market_data = MarketData()
        self.jcore: JournaledCore | None = None
        self.runner: sequencer.CoreRunner | None = None
        self.bus = RunnerBus(lambda: self.runner, self.metrics, settings.core_timeout_ms / 1000)
        # answers cancels, amends and single-order reads without waiting for SQL
        self.open_orders = OpenOrderIndex()
        # the only process that freezes accounts: the order guard's frozen set is exact
        self.protection = build_protection(
            settings, self.db, self.bus, self.clock, sole_writer=True
        )
        # the back office's fee tiers read the in-process core (admin_fees.py)
        self.protection.fee_table = lambda: (self._core().fee_tiers, self._core().user_tiers)
        # withdrawals (docs/funding.md): the workflow on every API process; payouts
        # only where [funding.withdrawals] names a signer and nodes
        self.withdrawals = build_withdrawals(
            settings,
            self.db,
            self.bus,
            self.clock,
            accounts=self.accounts,
            outbox=self.identity.outbox,
            kyc=self.protection.kyc,
            admin=self.protection.admin,
            audit=self.protection.audit,
        )
        self.payouts = (
            None if self.withdrawals is None else build_processor(self.withdrawals, settings)
        )
        self.payout_loop: PayoutLoop | None = None
        # chain watchers in this process, for each network with a node (docs/funding.md)
        self.watchers = embedded_watchers(
            settings,
            self.db,
            self.bus,
            self.clock,
            self.identity.outbox,
            self.metrics.registry,
        )
        self.trading = TradingService(
            self.bus,
            self.history,
            open_orders=self.open_orders,
            guards=self.protection.guards,
            wallets=self._wallets_of,
        )
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
        self.fanout.add("open-orders", self.open_orders.apply)
        self.fanout.add("marketdata", self._market_data_apply)
        self.fanout.add("projectors", self.projectors.publish)
        self.fanout.add("ws", self.hub.publish_events)
        # one book diff and one trades message per symbol and group commit, not per command
        self.fanout.add_group("ws-market", self.hub.begin_batch, self.hub.end_batch)
        # margin for users (docs/margin.md): routes, history projector, WS channel,
        # margin-call mail, mark feeder
        self.margin = MarginWiring(
            settings,
            self.db,
            self.bus,
            self.trading,
            self.catalog,
            self.clock,
            self.trading.marks,
            core=lambda: self.jcore.core if self.jcore is not None else None,
            hub=self.hub,
            formatter=self.hub.fmt,
            journal_dir=self.data_dir,
            run_projector=True,
            run_feeder=True,
            admin=self.protection.admin,
            audit=self.protection.audit,
        )
        self.fanout.add("margin", self.margin.publish)
        self.market_maker: MarketMaker | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

        self.metrics.track_queue("core", lambda: self.runner.queue_depth if self.runner else 0)
        self.metrics.track_queue("projectors", lambda: self.projectors.queue_depth)
        self.metrics.track_ws_clients(lambda: self.hub.client_count)
        self.metrics.track_core_up(lambda: self.bus.available)

        # fiat rails (docs/fiat.md): routes, and a pass crediting matched bank lines
        self.fiat = build_fiat(
            settings, self.db, self.bus, self.clock, self.catalog, self.protection
        )
        if self.withdrawals is not None:  # fiat withdrawals settle in the fiat pass
            self.fiat.use_withdrawals(self.withdrawals)
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
            extra_routes=[
                self._install_ws,
                self._install_protection,
                self.identity.install,
                self._install_withdrawals,
                self.fiat.install,
                self.margin.install,
                deposit_history_routes(settings, self.db, self.protection.admin),
            ],
            fee_rates=self._fee_rates,
            user_fee_tier=self._user_fee_tier,
            margin_wallet_kind=self._wallet_kind,
            funding=build_funding(settings, self.db, self.clock),
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
        from tradewind.gateways.rest.ws import install_ws

        install_ws(app, self.hub, self.accounts, self.clock.now_ms)

    def _install_protection(self, app: FastAPI) -> None:
        self.protection.install(app, self.catalog)

    def _install_withdrawals(self, app: FastAPI) -> None:
        if self.withdrawals is not None:
            from tradewind.gateways.rest.withdrawals import install_withdrawals

            install_withdrawals(app, self.withdrawals, self.protection.admin)

    def _wallets_of(self, user: int) -> list[int]:
        """The user's margin wallet accounts (their orders are the user's too)."""
        if self.jcore is None or not self.jcore.core.margin_on:
            return []
        return list(self.jcore.core.margin.user_wallets.get(user, ()))

    def _fee_rates(self) -> tuple[int, int]:
        """The base tier's (maker, taker) bps, for the order form's fee estimate."""
        return self._core().fee_tiers[0]

    def _wallet_kind(self, wallet: int) -> str | None:
        """``cross`` or ``isolated`` of a margin wallet account (order and fill lists)."""
        w = self.jcore.core.margin.wallets.get(wallet) if self.jcore is not None else None
        return None if w is None else w.kind

    def _user_fee_tier(self, user: int) -> tuple[int, int, int]:
        """A user's (tier, maker, taker bps), as the core charges them (GET /fees/mine)."""
        core = self._core()
        tier = core.user_tiers.get(user, 0)
        maker, taker = core.fee_tiers.get(tier, core.fee_tiers[0])
        return tier, maker, taker

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
        if self._writer_store is not None:
            self.projectors.writer = WriterThread()
        low = await self.projectors.catch_up(self.data_dir, until_seq=last)
        log.info("projectors caught up", seq=low)
        self.projectors.start()
        await self.margin.catch_up(self.data_dir, last)
        self.runner = sequencer.CoreRunner(
            self.jcore,
            clock_ms=self.clock.now_ms,
            publish=self.fanout.publish,
            group_published=self.fanout.group_published,
        )
        self.runner.start()
        try:  # accounts frozen in SQL but not in the core are frozen there (ADR 0031)
            await self.protection.admin.sync_frozen()
        except Exception:
            log.exception("frozen accounts not synced to the core")
        self.context.not_before_ms = self.clock.now_ms()
        self._tasks.append(asyncio.create_task(self._market_clock(), name="market-clock"))
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="ws-heartbeats"))
        self.identity.start()
        self.fiat.start()
        if self.payouts is not None and self.withdrawals is not None:
            from tradewind.runtime.network_fees import build_fee_booker
            from tradewind.runtime.sweeps import build_sweeper

            self.payout_loop = PayoutLoop(
                self.payouts,
                self.withdrawals.policy.poll_s,
                build_sweeper(settings, self.db, self.withdrawals),
                build_fee_booker(self.db, self.bus, self.payouts),
            )
            self._tasks.append(asyncio.create_task(self.payout_loop.run(), name="payouts"))
        if self.watchers is not None:
            self.watchers.start()
        if settings.demo:
            from tradewind.runtime.demo import seed_demo
            from tradewind.runtime.margin import seed_margin_demo

            await seed_demo(self)
            await seed_margin_demo(self)
            if settings.demo_bot:
                self.market_maker = await self._start_market_maker()
        self.margin.start_tasks()
        log.info("exchange started", url=settings.url, demo=settings.demo)

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        if self.market_maker is not None:
            await self.market_maker.stop()
            self.market_maker = None
        await self.margin.stop()
        if self.watchers is not None:
            await self.watchers.stop()
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
        writer, self.projectors.writer = self.projectors.writer, None
        if writer is not None and self._writer_store is not None:
            with contextlib.suppress(Exception):
                await writer.run(_dispose(self._writer_store))
            writer.close()
        self.hub.close_all()
        await self.fiat.stop()
        await self.identity.stop()
        await self.db.dispose()
        log.info("exchange stopped")

    async def _rebuild_market_data(self, last: int) -> None:
        """Replays the journal into the in-memory consumers (open orders, market data,
        WS order tracking), before the runner publishes anything."""
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
                self.open_orders.apply(batch.seq, batch.ts, batch.events)
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


# == distributed mode ======================================================================
#
# The same services, split into processes that meet only through PostgreSQL, Redis and
# RabbitMQ (docs/distributed.md):
#
# - ``tradewind core`` (:class:`CoreProcess`): the journaled core and its runner, the
#   only writer; takes commands from ``P.commands`` and answers after fsync; publishes
#   every durable command's events to ``P.events`` and a heartbeat to ``P.status``;
#   replays batches from its journal on request; mirrors market data and the market
#   catalog to Redis. No SQL.
# - ``tradewind api`` (:class:`ApiReplica`, any number): REST and WebSocket; commands
#   through the bus; accounts, orders, fills and balances from PostgreSQL (the
#   projector's tables); market data and catalog from Redis; private WebSocket events
#   from the event stream; signature replay cache and write marks in Redis.
# - ``tradewind projector`` (:class:`ProjectorProcess`, one): the event stream into
#   PostgreSQL with the same projectors as embedded mode, offsets in the same
#   transaction, gaps filled by the core's replay.


class DistributedConfigError(ConfigError):
    """A distributed process lacks a setting it needs."""


def _require(settings: Settings, *names: str) -> None:
    for name in names:
        if not getattr(settings, name):
            raise DistributedConfigError(
                f"{name} is required in distributed mode "
                f"(set TRADEWIND_{name.upper()} or {name} in the config file)"
            )


async def _replay_journal(
    data_dir: Path, last: int, *consumers: Callable[[int, int, list[Event]], object]
) -> None:
    """Feed the journal's batches ``1 .. last`` to ``consumers`` (off the event loop for
    the decoding and the core replay, on it for the consumers)."""
    if last == 0:
        return
    batches = journal_batches(data_dir, after=0, until=last)

    def take() -> list[Any]:
        chunk = []
        for batch in batches:
            chunk.append(batch)
            if len(chunk) >= REPLAY_CHUNK:
                break
        return chunk

    while chunk := await asyncio.to_thread(take):
        for batch in chunk:
            for consumer in consumers:
                consumer(batch.seq, batch.ts, list(batch.events))


class CoreProcess:
    """``tradewind core``: the trading core as its own process (see above)."""

    CATALOG_PRICE_REFRESH_S = 2.0

    def __init__(self, settings: Settings, *, clock: Clock | None = None) -> None:
        from redis.asyncio import Redis

        from tradewind.adapters.amqp import (
            AmqpCommandServer,
            AmqpEventPublisher,
            AmqpLink,
            AmqpNames,
            AmqpReplayServer,
        )
        from tradewind.adapters.redis.catalog import RedisCatalogWriter
        from tradewind.adapters.redis.lease import RedisLease
        from tradewind.adapters.redis.margin import RedisMarginSink
        from tradewind.adapters.redis.marketdata import RedisMarketDataWriter
        from tradewind.runtime import standby
        from tradewind.services.margin_mirror import MarginPublisher

        _require(settings, "amqp_url", "redis_url")
        assert settings.amqp_url is not None and settings.redis_url is not None
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.data_dir = settings.data_dir.resolve()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.instance = secrets.token_hex(6)
        self.names = AmqpNames(settings.amqp_prefix)
        self.link = AmqpLink(settings.amqp_url, name=f"tradewind-core-{self.instance}")
        self.redis = Redis.from_url(settings.redis_url)
        self.market_data = MarketData()
        self.md_writer = RedisMarketDataWriter(
            self.redis, self.market_data, prefix=settings.redis_prefix
        )
        self.catalog_writer = RedisCatalogWriter(self.redis, prefix=settings.redis_prefix)
        # margin figures' inputs for the API replicas (ADR 0033)
        self.margin_figures = MarginPublisher(
            lambda: self.jcore.core if self.jcore is not None else None,
            RedisMarginSink(self.redis, prefix=settings.redis_prefix),
            durable_seq=self._durable_seq,
        )
        # leadership (hot standby, runtime/standby.py): only the lease holder writes
        self.lease = RedisLease(
            self.redis,
            prefix=settings.redis_prefix,
            holder=f"{socket.gethostname()}:{os.getpid()}:{self.instance}",
            ttl_ms=settings.core_lease_ms,
        )
        self.on_lease_lost: Callable[[str], None] = standby.fail_stop
        self._lease_task: asyncio.Task[None] | None = None
        self.active = False
        self.jcore: JournaledCore | None = None
        self.runner: sequencer.CoreRunner | None = None
        self.catalog = CoreCatalog(self._core)
        self.publisher = AmqpEventPublisher(
            self.link,
            self.names,
            instance=self.instance,
            durable_seq=self._durable_seq,
            heartbeat_s=settings.core_heartbeat_ms / 1000,
            clock_ms=self.clock.now_ms,
        )
        self.commands = AmqpCommandServer(
            self.link, self.names, self._submit_decoded, clock_ms=self.clock.now_ms
        )
        self.replay = AmqpReplayServer(
            self.link, self.names, self._replay_source, durable_seq=self._durable_seq
        )
        self.fanout = EventFanout()
        self.fanout.add("marketdata", self._market_data_apply)
        self.fanout.add("bus", self.publisher.publish)
        self.fanout.add("catalog", self._watch_catalog)
        self.fanout.add("margin-figures", self.margin_figures.publish)
        self._catalog_changed = asyncio.Event()
        self._prices_moved = False
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

    def _core(self) -> Core:
        if self.jcore is None:
            raise CoreUnavailable("the trading core is starting")
        return self.jcore.core

    def _durable_seq(self) -> int:
        return self.jcore.durable_seq if self.jcore is not None else 0

    def _market_data_apply(self, seq: int, ts: int, events: list[Event]) -> None:
        self.market_data.apply(seq, ts, events)

    def _replay_source(self, after: int, until: int) -> Iterator[Any]:
        return journal_batches(self.data_dir, after=after, until=until)

    def _watch_catalog(self, seq: int, ts: int, events: list[Event]) -> None:
        from tradewind.adapters.redis.catalog import changes_catalog

        if changes_catalog(events):
            self._catalog_changed.set()
        elif not self._prices_moved and any(type(e) is Trade for e in events):
            self._prices_moved = True

    async def _submit(self, cmd: AnyCommand) -> sequencer.Applied:
        runner = self.runner
        if runner is None or not runner.running:
            raise CoreUnavailable()
        try:
            return await runner.submit(cmd)
        except sequencer.CoreUnavailable as e:
            raise CoreUnavailable(str(e)) from None

    async def _submit_decoded(self, cmd: AnyCommand) -> sequencer.Applied:
        """A command the bus server decoded (schema checked): the journal skips the check."""
        runner = self.runner
        if runner is None or not runner.running:
            raise CoreUnavailable()
        try:
            return await runner.submit(cmd, validated=True)
        except sequencer.CoreUnavailable as e:
            raise CoreUnavailable(str(e)) from None

    async def write_catalog(self) -> None:
        self._prices_moved = False
        core = self._core()
        await self.catalog_writer.write(core.seq, self.catalog.assets(), self.catalog.markets())

    async def start(self) -> None:
        """Stand by until this process holds the core lease; then recover (once the old
        leader released the journal), rebuild market data, start the runner, seed the
        demo set-up, and take commands from the bus."""
        from tradewind.adapters.redis.marketdata import RedisMarketDataReader
        from tradewind.runtime import standby
        from tradewind.runtime.mdstart import start_market_data

        if self._started:
            return
        self._started = True
        settings = self.settings
        await standby.acquire(self.lease, self.data_dir)
        # renewed until the very end of stop(): no standby starts while this one still
        # writes (journal, Redis, the bus)
        self._lease_task = asyncio.create_task(
            standby.hold(self.lease, self.on_lease_lost), name="core-lease"
        )
        self.jcore = await standby.open_fenced_core(
            self.lease, self.data_dir, snapshot_every=settings.snapshot_every
        )
        self.active = True
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
        # market data: Redis's last flush + the journal after it (runtime/mdstart.py)
        self.market_data_start = await start_market_data(
            self.market_data,
            self.md_writer,
            RedisMarketDataReader(self.redis, prefix=settings.redis_prefix),
            self.data_dir,
            last,
            lambda: _replay_journal(self.data_dir, last, self._market_data_apply),
        )
        self.market_data.advance(self.clock.now_ms())
        self.md_writer.start()  # its first flush writes the whole state
        self.publisher.start_at(last)  # batches up to here are replayable on request
        self.margin_figures.start_at(last)  # its first round rewrites all of them
        self.publisher.start()
        self.runner = sequencer.CoreRunner(
            self.jcore, clock_ms=self.clock.now_ms, publish=self.fanout.publish
        )
        self.runner.start()
        await self.link.start(wait_s=5.0)
        if settings.demo:
            from tradewind.runtime.demo import missing_setup_for

            for cmd in missing_setup_for(self.jcore.core):
                await self._submit(cmd)
        try:
            await self.write_catalog()
        except Exception as e:
            log.warning("catalog not written to Redis yet", error=repr(e))
            self._catalog_changed.set()
        await self.commands.start()
        self._tasks.append(asyncio.create_task(self._catalog_loop(), name="catalog-writer"))
        self._tasks.append(asyncio.create_task(self._market_clock(), name="market-clock"))
        # the mark feeder runs next to the core, once per deployment (docs/margin.md)
        feeder = core_feeder(settings, self._submit, self._core, self.catalog, self.clock)
        self._tasks.append(asyncio.create_task(feeder.run(), name="mark-feeder"))
        self._tasks.append(asyncio.create_task(self.margin_figures.run(), name="margin-figures"))
        log.info(
            "core started",
            instance=self.instance,
            seq=self.jcore.last_seq,
            amqp_prefix=settings.amqp_prefix,
            broker=self.link.connected,
        )

    async def stop(self) -> None:
        """Stop taking commands, answer those taken, commit, publish what is queued."""
        if not self._started:
            return
        self._started = False
        await self.commands.stop()
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
        if self.active:
            await self.publisher.stop()
            await self.md_writer.stop()
        await self.link.stop()
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._lease_task
            self._lease_task = None
        if self.lease.token:
            with contextlib.suppress(Exception):
                await self.lease.release()  # the standby need not wait the lease out
        self.active = False
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        log.info("core stopped")

    async def _catalog_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._catalog_changed.wait(), self.CATALOG_PRICE_REFRESH_S)
            changed = self._catalog_changed.is_set()
            self._catalog_changed.clear()
            if not (changed or self._prices_moved):
                continue
            try:
                await self.write_catalog()
            except Exception as e:
                log.warning("catalog write failed; retrying", error=repr(e))
                self._catalog_changed.set()
                await asyncio.sleep(0.5)

    async def _market_clock(self) -> None:
        while True:
            await asyncio.sleep(MARKET_CLOCK_S)
            try:
                self.market_data.advance(self.clock.now_ms())
            except Exception:
                log.exception("market-data clock failed")


_LISTEN_PING_S = 5.0
"""How often an API replica checks its ``LISTEN`` connection is alive (ADR 0045)."""
_LISTEN_PING_TIMEOUT_S = 2.0


class ApiReplica:
    """``tradewind api``: one stateless API replica (REST + WebSocket) of a distributed
    deployment. :attr:`app` is the ASGI app; ``start()``/``stop()`` or its lifespan."""

    def __init__(
        self,
        settings: Settings,
        *,
        clock: Clock | None = None,
        manage_lifecycle: bool = True,
    ) -> None:
        from redis.asyncio import Redis

        from tradewind.adapters.amqp import (
            AmqpCommandClient,
            AmqpEventFollower,
            AmqpLink,
            AmqpNames,
            CoreWatch,
        )
        from tradewind.adapters.redis.bookmirror import BookMirror
        from tradewind.adapters.redis.catalog import RedisCatalog
        from tradewind.adapters.redis.margin import RedisMarginSource
        from tradewind.adapters.redis.marketdata import RedisMarketDataReader
        from tradewind.adapters.redis.state import RedisReplayCache, RedisWriteMarks
        from tradewind.adapters.sql.progress import ProjectionProgress
        from tradewind.gateways.metrics import Metrics
        from tradewind.gateways.rest.app import RestContext, create_app
        from tradewind.gateways.rest.ws import DecimalFormatter
        from tradewind.gateways.ws.hub import Hub
        from tradewind.runtime.deposit_history import deposit_history_routes
        from tradewind.runtime.fiat import build_fiat
        from tradewind.runtime.identity import build_identity
        from tradewind.runtime.protection import build_protection
        from tradewind.services.margin_mirror import MirroredMarginState

        _require(settings, "amqp_url", "redis_url", "secret_key")
        assert settings.amqp_url is not None and settings.redis_url is not None
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        self.instance = secrets.token_hex(6)
        self.metrics = Metrics()
        self.db = Database.from_url(
            settings.resolved_database_url, pool_size=settings.database_pool_size
        )
        self.redis = Redis.from_url(settings.redis_url)
        prefix = settings.redis_prefix
        # API keys and frozen flags in memory, kept exact by the NOTIFY every writer
        # sends (ADR 0045); PostgreSQL only (the LISTEN connection), else SQL each time
        self.auth_cache: AuthInvalidations | None = None
        api_keys: ApiKeyRepository = SqlApiKeyRepository(self.db)
        if self.db.dialect == "postgresql":
            self.auth_cache = AuthInvalidations()
            api_keys = ListenedApiKeyRepository(api_keys, self.auth_cache.keys)
        self.identity = build_identity(
            settings,
            self.db,
            api_keys=api_keys,
            replay_cache=RedisReplayCache(self.redis, prefix=prefix),
            secret_box=AesGcmSecretBox(
                load_master_keys(None, {SECRET_KEY_VAR: settings.secret_key or ""})
            ),
            clock=self.clock,
        )
        self.accounts = self.identity.accounts
        self.store = SqlProjectionStore(self.db)
        self.progress = ProjectionProgress(self.store.offsets)
        self.margin_progress = ProjectionProgress(self.store.offsets, ("margin",))
        self.history = ProjectedHistory(self.store, self.progress)
        self.names = AmqpNames(settings.amqp_prefix)
        self.link = AmqpLink(settings.amqp_url, name=f"tradewind-api-{self.instance}")
        self.watch = CoreWatch(self.link, self.names, liveness_s=settings.core_liveness_ms / 1000)
        self.bus = AmqpCommandClient(
            self.link,
            self.names,
            self.watch,
            timeout_s=settings.core_timeout_ms / 1000,
            clock_ms=self.clock.now_ms,
            on_outcome=self._count_command,
        )
        self.marks = RedisWriteMarks(self.redis, prefix=prefix)
        self.protection = build_protection(
            settings,
            self.db,
            self.bus,
            self.clock,
            redis=self.redis,
            listened_frozen=None if self.auth_cache is None else self.auth_cache.frozen,
        )
        # withdrawals (docs/funding.md): the workflow on every API process; payouts
        # only where [funding.withdrawals] names a signer and nodes
        self.withdrawals = build_withdrawals(
            settings,
            self.db,
            self.bus,
            self.clock,
            accounts=self.accounts,
            outbox=self.identity.outbox,
            kyc=self.protection.kyc,
            admin=self.protection.admin,
            audit=self.protection.audit,
        )
        # cancels, amends and reads of one order from the events this replica follows,
        # not the SQL history, once they are caught up (ADR 0049)
        self.open_orders = FollowedOrderIndex()
        self.trading = TradingService(
            self.bus,
            self.history,
            marks=self.marks,
            open_orders=self.open_orders,
            guards=self.protection.guards,
        )
        self.balances = ProjectedBalances(self.store, self.trading.caught_up)
        self.catalog = RedisCatalog(self.redis, prefix=prefix)
        self.market_data = RedisMarketDataReader(self.redis, prefix=prefix)
        # books in memory, fed with the hub: a book subscription starts with a snapshot
        self.books = BookMirror(self.market_data)
        self.hub = Hub(
            formatter=DecimalFormatter(self.catalog),
            is_symbol=self._is_symbol,
            book_snapshot=self.books.snapshot,
            assets_of=self._assets_of,
        )
        # margin (docs/margin.md): routes, WS channel, mail; the history from the
        # projector process; account figures from the core's inputs in Redis (ADR 0033)
        self.margin_source = RedisMarginSource(self.redis, prefix=prefix)
        self.margin = MarginWiring(
            settings,
            self.db,
            self.bus,
            self.trading,
            self.catalog,
            self.clock,
            self.marks,
            core=None,
            hub=self.hub,
            formatter=self.hub.fmt,
            journal_dir=None,
            run_projector=False,
            run_feeder=False,
            progress=self.margin_progress,
            admin=self.protection.admin,
            audit=self.protection.audit,
            mirror=MirroredMarginState(self.margin_source),
        )
        self.follower = AmqpEventFollower(self.link, self.names, self._on_batch)
        self._tasks: list[asyncio.Task[None]] = []
        self._started = False

        self.metrics.track_queue("core", lambda: self.bus.pending)
        self.metrics.track_ws_clients(lambda: self.hub.client_count)
        self.metrics.track_core_up(lambda: self.bus.available)
        self.metrics.track_event_gaps(lambda: self.open_orders.restarts)
        self.fiat = build_fiat(
            settings, self.db, self.bus, self.clock, self.catalog, self.protection
        )
        if self.withdrawals is not None:  # fiat withdrawals settle in the fiat pass
            self.fiat.use_withdrawals(self.withdrawals)
        self.context = RestContext(
            accounts=self.accounts,
            trading=self.trading,
            catalog=self.catalog,
            balances=self.balances,
            market_data=self.market_data,
            metrics=self.metrics,
            now_ms=self.clock.now_ms,
            readiness=self.readiness,
            demo=settings.demo,
            faucet_max_units=settings.faucet_max,
            max_body_bytes=settings.max_body_bytes,
            extra_routes=[
                self._install_ws,
                self._install_protection,
                self.identity.install,
                self._install_withdrawals,
                self.fiat.install,
                self.margin.install,
                deposit_history_routes(settings, self.db, self.protection.admin),
            ],
            funding=build_funding(settings, self.db, self.clock),
        )
        self.app: FastAPI = create_app(
            self.context, lifespan=self.lifespan if manage_lifecycle else None
        )

    async def _listen_projected(self) -> None:
        """``LISTEN`` to the projector's commits (ADR 0041): read-your-writes waits read
        the offsets once per commit instead of polling them every 5 ms; back to polling
        while the listening connection is down. On the same connection, ``LISTEN`` to
        API-key and freeze changes (ADR 0045): the auth caches serve only while it is
        up, and a ping every ``_LISTEN_PING_S`` notices a connection that died silently."""
        import asyncpg  # type: ignore[import-untyped]
        from sqlalchemy.engine import make_url

        from tradewind.adapters.sql.auth_notify import AUTH_CHANNEL
        from tradewind.adapters.sql.progress import PROJECTED_CHANNEL

        auth = self.auth_cache

        def invalidate(
            _conn: object = None, _pid: object = None, _ch: object = None, payload: object = None
        ) -> None:
            if auth is not None:
                auth.notified(payload if isinstance(payload, str) else None)

        url = make_url(self.settings.resolved_database_url).set(drivername="postgresql")
        dsn = url.render_as_string(hide_password=False)
        progress = (self.progress, self.margin_progress)

        def nudge(
            _conn: object = None, _pid: object = None, _ch: object = None, payload: object = None
        ) -> None:
            text = payload if isinstance(payload, str) else None
            for p in progress:
                p.nudge(text)

        while True:
            conn = None
            try:
                conn = await asyncpg.connect(dsn)
                lost = asyncio.Event()
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(PROJECTED_CHANNEL, nudge)
                if auth is not None:
                    await conn.add_listener(AUTH_CHANNEL, invalidate)
                    auth.listening = True  # forgets all: changes before were not heard
                for p in progress:
                    p.listening = True
                nudge()  # commits before the LISTEN were not announced
                while not lost.is_set():
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(lost.wait(), _LISTEN_PING_S)
                        break
                    await conn.fetchval("SELECT 1", timeout=_LISTEN_PING_TIMEOUT_S)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("projector commits not followed", error=repr(e))
            finally:
                if auth is not None:
                    auth.listening = False  # not served from memory until listening again
                for p in progress:
                    p.listening = False
                if conn is not None:
                    with contextlib.suppress(Exception):
                        await conn.close(timeout=1)
            await asyncio.sleep(1.0)

    def _count_command(self, op: str, outcome: str, seconds: float) -> None:
        self.metrics.commands.labels(op=op, outcome=outcome).inc()
        if outcome == "applied":
            self.metrics.command_latency.labels(op=op).observe(seconds)

    def _is_symbol(self, symbol: str) -> bool:
        return self.catalog.market(symbol) is not None

    def _assets_of(self, symbol: str) -> tuple[str, str] | None:
        m = self.catalog.market(symbol)
        return None if m is None else (m.base, m.quote)

    def _install_ws(self, app: FastAPI) -> None:
        from tradewind.gateways.rest.ws import install_ws

        install_ws(app, self.hub, self.accounts, self.clock.now_ms)

    def _install_protection(self, app: FastAPI) -> None:
        self.protection.install(app, self.catalog)

    def _install_withdrawals(self, app: FastAPI) -> None:
        if self.withdrawals is not None:
            from tradewind.gateways.rest.withdrawals import install_withdrawals

            install_withdrawals(app, self.withdrawals, self.protection.admin)

    def _on_batch(self, seq: int, ts: int, events: list[Event]) -> None:
        self.watch.touch()
        self.open_orders.apply(seq, ts, events)
        self.catalog.on_events(seq, ts, events)
        self.hub.publish_events(seq, ts, events)
        self.margin.publish(seq, ts, events)

    @contextlib.asynccontextmanager
    async def lifespan(self, _: FastAPI) -> AsyncIterator[None]:
        await self.start()
        try:
            yield
        finally:
            await self.stop()

    async def start(self) -> None:
        if self._started:
            return
        self._started = True
        await upgrade_async(self.settings.resolved_database_url)
        try:
            await self.catalog.refresh()
        except Exception as e:
            log.warning("catalog not loaded yet", error=repr(e))
        self.catalog.start()
        self.watch.start()
        await self.link.start(wait_s=5.0)
        try:  # accounts frozen in SQL but not in the core (ADR 0031); idempotent
            await self.protection.admin.sync_frozen()
        except Exception as e:  # the core not reachable yet: done at the next start
            log.warning("frozen accounts not synced to the core", error=repr(e))
        self._tasks.append(asyncio.create_task(self._follow_market(), name="md-follow"))
        self._tasks.append(asyncio.create_task(self._heartbeats(), name="ws-heartbeats"))
        self._tasks.append(asyncio.create_task(self._follow_margin(), name="margin-notices"))
        if self.db.dialect == "postgresql":
            self._tasks.append(
                asyncio.create_task(self._listen_projected(), name="projected-listen")
            )
        self.identity.start()
        self.fiat.start()
        self.margin.start_tasks()
        log.info(
            "api replica started",
            instance=self.instance,
            url=self.settings.url,
            broker=self.link.connected,
            catalog=self.catalog.loaded,
        )

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        self.hub.close_all()
        await self.margin.stop()
        await self.fiat.stop()
        await self.identity.stop()
        await self.watch.stop()
        await self.catalog.stop()
        await self.progress.stop()
        await self.link.stop()
        with contextlib.suppress(Exception):
            await self.redis.aclose()
        await self.db.dispose()
        log.info("api replica stopped")

    async def _follow_market(self) -> None:
        """Redis's update stream into the book mirror, then the hub (in that order, so a
        new subscriber's snapshot is at the last diff published)."""
        start = "$"
        try:
            start = await self.market_data.stream_tail_id()  # before the snapshots
            await self.books.load_all()
        except Exception as e:
            log.warning("books not loaded yet (loaded on their next diff)", error=repr(e))
        async for updates in self.market_data.follow(start=start, block_ms=1000):
            try:
                published = await self.books.apply(updates)
                # one writer flush covers many commands: sent coalesced, one diff and
                # one trades message per symbol, as embedded mode does per group (ADR 0038)
                self.hub.begin_batch()
                try:
                    self.hub.publish_market(published)
                finally:
                    self.hub.end_batch()
            except Exception:
                log.exception("market-data fan-out failed")

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.hub.heartbeat.interval_s)
            try:
                self.hub.heartbeat_round()
            except Exception:
                log.exception("websocket heartbeat failed")

    async def _follow_margin(self) -> None:
        """The core process's margin change notices mark users for the WS channel."""
        channel = self.margin.channel
        while channel is not None:
            try:
                async for _, marks, users in self.margin_source.changes():
                    channel.touch(users, marks)
            except Exception as e:
                log.warning("margin notices interrupted; resubscribing", error=repr(e))
            await asyncio.sleep(1.0)

    async def readiness(self) -> Mapping[str, bool]:
        """Ready to serve: database, Redis and broker reachable. The core is not a
        condition (reads go on during a core outage; writes answer 503): its state is
        the ``tradewind_core_up`` metric."""
        database = redis = False
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0), self.db.read() as session:
                await session.execute(sa.text("SELECT 1"))
                database = True
        with contextlib.suppress(Exception):
            async with asyncio.timeout(2.0):
                redis = bool(await self.redis.ping())
        return {"database": database, "redis": redis, "broker": self.link.connected}


class ProjectorProcess:
    """``tradewind projector``: the event stream into PostgreSQL (see above)."""

    CONSUMER_NAME = "projector"

    def __init__(self, settings: Settings) -> None:
        from redis.asyncio import Redis

        from tradewind.adapters.amqp import (
            AmqpLink,
            AmqpNames,
            AmqpSequencedConsumer,
            CoreWatch,
        )
        from tradewind.adapters.redis.lease import RedisLease

        _require(settings, "amqp_url")
        assert settings.amqp_url is not None
        self.settings = settings
        self.instance = secrets.token_hex(6)
        self.db = Database.from_url(
            settings.resolved_database_url, pool_size=settings.database_pool_size
        )
        self.store = SqlProjectionStore(self.db)
        self.runner = ProjectorRunner(
            [
                LedgerProjector(self.store),
                OrdersProjector(self.store),
                TradesProjector(self.store),
                MarginProjector(SqlMarginStore(self.db)),
            ],
            # one transaction per chunk for the four (ADR 0041): a command's projection
            # was four BEGIN/COMMITs, the projector's main cost per command
            transaction=self._projection_transaction,
        )
        self._names = tuple(p.name for p in self.runner.projectors)
        self.names = AmqpNames(settings.amqp_prefix)
        self.link = AmqpLink(settings.amqp_url, name=f"tradewind-projector-{self.instance}")
        self.watch = CoreWatch(self.link, self.names, liveness_s=settings.core_liveness_ms / 1000)
        self.consumer = AmqpSequencedConsumer(
            self.link,
            self.names,
            self.watch,
            name=self.CONSUMER_NAME,
            offset=self._offset,
            apply=self._apply,
        )
        # with Redis, one projector consumes and others stand by (a lease, as the core's;
        # SQL needs no fence: offsets are read FOR UPDATE in each batch's transaction)
        self.redis = Redis.from_url(settings.redis_url) if settings.redis_url else None
        self.lease = (
            RedisLease(
                self.redis,
                prefix=f"{settings.redis_prefix}:projector",
                holder=f"{socket.gethostname()}:{os.getpid()}:{self.instance}",
                ttl_ms=settings.core_lease_ms,
            )
            if self.redis is not None
            else None
        )
        self._lease_task: asyncio.Task[None] | None = None
        self._started = False

    @contextlib.asynccontextmanager
    async def _projection_transaction(self) -> AsyncIterator[None]:
        """One transaction for the projectors of a chunk that, on PostgreSQL, tells the
        API replicas at its commit that the offsets moved (``NOTIFY`` is delivered
        only when the transaction commits, so never before the rows are visible)."""
        from tradewind.adapters.sql.progress import NOTIFY_OFFSETS_SQL
        from tradewind.adapters.sql.projector_offsets import shared_projection_transaction

        # the offsets of the four are read with one SELECT ... FOR UPDATE at the start
        # and stored with one upsert at the end (ADR 0044); the NOTIFY's payload is the
        # offsets this transaction stores (ADR 0043)
        notify = NOTIFY_OFFSETS_SQL if self.db.dialect == "postgresql" else None
        async with shared_projection_transaction(self.db, self._names, last=notify):
            yield

    async def _offset(self) -> int:
        return min((await self.runner.offsets()).values(), default=0)

    async def _apply(self, batches: Sequence[Batch]) -> int:
        await self.runner.apply_batches(batches)
        return self.runner.applied_seq

    @property
    def applied_seq(self) -> int:
        return self.consumer.applied

    async def start(self) -> None:
        """Stand by for the projector lease (with Redis), migrate, then follow."""
        from tradewind.runtime import standby

        if self._started:
            return
        self._started = True
        if self.lease is not None:
            data_dir = self.settings.data_dir.resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
            await standby.acquire(self.lease, data_dir)
            self._lease_task = asyncio.create_task(
                standby.hold(self.lease, standby.fail_stop), name="projector-lease"
            )
        await upgrade_async(self.settings.resolved_database_url)
        await self.consumer.start()
        self.watch.start()
        await self.link.start(wait_s=5.0)
        log.info(
            "projector started",
            seq=self.consumer.applied,
            queue=self.consumer.queue_name,
            broker=self.link.connected,
        )

    async def stop(self) -> None:
        if not self._started:
            return
        self._started = False
        await self.link.stop()  # unacknowledged batches go back to the queue
        await self.consumer.stop()
        await self.watch.stop()
        await self.db.dispose()
        if self._lease_task is not None:
            self._lease_task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._lease_task
            self._lease_task = None
        if self.lease is not None and self.redis is not None:
            with contextlib.suppress(Exception):
                if self.lease.token:
                    await self.lease.release()
                await self.redis.aclose()
        log.info("projector stopped", seq=self.consumer.applied)
