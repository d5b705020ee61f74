"""``tradewind watcher --network NAME --rpc-url URL``: the chain watcher of one network
(EVM through web3, Bitcoin through bitcoind's JSON-RPC) as a process of a distributed
deployment (DESIGN §5, ADR 0019, ADR 0025).

Like the market maker it is an ordinary client of the core: it runs on an
:class:`ApiReplica` that serves no HTTP (command bus over RabbitMQ, PostgreSQL for the
deposit addresses and its own tables) and submits ``Deposit`` commands carrying a ref.

Invariants:
- one watcher per network per deployment: it first takes a lease in Redis
  (``P:watcher:NAME``, the core's mechanism, ADR 0010); a second one stands by. Two
  running at once would still credit once (the core refuses a ref twice), but would
  race on the watcher's tables;
- the loop survives a node or the core being unreachable (logged, retried after the
  poll interval); a fork below the tracked window stops the process after storing an
  alert, since following it would need an operator's decision;
- every alert increments ``tradewind_chain_alerts_total{network,kind}``;
- a Bitcoin node must follow the network's configured chain (``getblockchaininfo``):
  a regtest node behind a mainnet config is refused at start-up.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
from collections.abc import Callable

import structlog
from prometheus_client import CollectorRegistry, Counter

from tradewind.adapters.sql import Database
from tradewind.runtime.config import Settings
from tradewind.services.funding.chain_ports import ChainReader
from tradewind.services.funding.networks import NETWORK_KINDS, Network, NetworkCatalog
from tradewind.services.funding.watch_config import WatchTarget
from tradewind.services.funding.watcher import ChainWatcher, ReorgBeyondWindow
from tradewind.services.mail import Outbox
from tradewind.services.ports import Clock
from tradewind.services.trading import CommandBus

log = structlog.get_logger(__name__)

POLL_S = 2.0


def alert_counter(registry: CollectorRegistry) -> Counter:
    return Counter(
        "tradewind_chain_alerts",
        "Critical chain alerts (deep reorgs, forks beyond the tracked window).",
        ["network", "kind"],
        registry=registry,
    )


def count_alerts(counter: Counter) -> Callable[[str, str], None]:
    def on_alert(network: str, kind: str) -> None:
        counter.labels(network=network, kind=kind).inc()

    return on_alert


class WatchLoop:
    """Calls ``watcher.step()`` until stopped: again at once while catching up, else
    after ``poll_s``."""

    def __init__(self, watcher: ChainWatcher, poll_s: float = POLL_S) -> None:
        self.watcher = watcher
        self.poll_s = poll_s
        self.failures = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self, max_blocks: int = 500) -> None:
        while not self._stop.is_set():
            catching_up = False
            try:
                result = await self.watcher.step(max_blocks)
                catching_up = result.scanned >= max_blocks
            except ReorgBeyondWindow:
                raise
            except Exception:  # a node or the core away: retry, never give up silently
                self.failures += 1
                log.exception("watcher step failed", network=self.watcher.network.name)
            if not catching_up:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), self.poll_s)


def build_chain_watcher(
    net: Network,
    reader: ChainReader,
    catalog: NetworkCatalog,
    db: Database,
    bus: CommandBus,
    clock: Clock,
    outbox: Outbox,
    *,
    on_alert: Callable[[str, str], None],
    start_height: int,
) -> ChainWatcher:
    """One network's watcher over the SQL tables, the command bus, the runtime
    switches (ADR 0032), the sweeps' own transfers (ADR 0028) and the users' notice
    emails: the same for ``tradewind watcher`` and the embedded exchange."""
    from tradewind.adapters.sql import SqlUserRepository
    from tradewind.adapters.sql.chain_watch import SqlWatcherStore
    from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
    from tradewind.adapters.sql.funding_switches import SqlFundingSwitchStore
    from tradewind.adapters.sql.sweeps import SqlSweepStore
    from tradewind.services.funding.switches import FundingSwitches
    from tradewind.services.funding.withdrawals import MailNotifier

    return ChainWatcher(
        net,
        reader,
        SqlWatcherStore(db),
        SqlDepositAddressStore(db),
        bus,
        clock.now_ms,
        start_height=start_height,
        on_alert=on_alert,
        switches=FundingSwitches(catalog, SqlFundingSwitchStore(db), clock.now_ms),
        own=SqlSweepStore(db),  # gas top-ups are not deposits (ADR 0028)
        notifier=MailNotifier(SqlUserRepository(db), outbox, clock.now_ms),
    )


class EmbeddedWatchers:
    """The embedded exchange's chain watchers, one task per network with a node
    (``[funding.watch]``, or Bitcoin's ``bitcoin_rpc_url``). No lease: the data
    directory's journal lock already makes this the deployment's only process.

    A node away at start-up is retried every poll, not fatal to the exchange; a fork
    below the tracked window stops that network's watcher only (the alert is stored,
    as ``tradewind watcher`` does before it exits)."""

    def __init__(
        self,
        settings: Settings,
        catalog: NetworkCatalog,
        targets: tuple[WatchTarget, ...],
        poll_s: float,
        build: Callable[[Network, ChainReader, int], ChainWatcher],
    ) -> None:
        self.settings = settings
        self.catalog = catalog
        self.targets = targets
        self.poll_s = poll_s
        self._build = build
        self.loops: dict[str, WatchLoop] = {}
        self._readers: list[ChainReader] = []
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        for target in self.targets:
            net = self.catalog.network(target.network)
            if net is not None:
                self._tasks.append(
                    asyncio.create_task(self._watch(net, target), name=f"watcher-{net.name}")
                )

    async def _watch(self, net: Network, target: WatchTarget) -> None:
        from tradewind.adapters.chain.bitcoind_reader import redact

        while True:
            try:
                reader = await open_reader(self.settings, net, target.rpc_url)
                break
            except Exception as exc:  # node away or wrong chain: say so, try again
                log.error("chain node not usable", network=net.name, error=str(exc))
                await asyncio.sleep(self.poll_s)
        self._readers.append(reader)
        loop = self.loops[net.name] = WatchLoop(
            self._build(net, reader, target.start_height), self.poll_s
        )
        log.info("chain watcher started", network=net.name, rpc=redact(target.rpc_url))
        try:
            await loop.run()
        except ReorgBeyondWindow as e:
            log.critical("chain watcher stopped", network=net.name, reason=str(e))

    async def stop(self) -> None:
        for loop in self.loops.values():
            loop.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for reader in self._readers:
            aclose = getattr(reader, "aclose", None)
            if aclose is not None:
                with contextlib.suppress(Exception):
                    await aclose()
        self._readers.clear()


def embedded_watchers(
    settings: Settings,
    db: Database,
    bus: CommandBus,
    clock: Clock,
    outbox: Outbox,
    registry: CollectorRegistry,
) -> EmbeddedWatchers | None:
    """The embedded exchange's watchers, or ``None`` when no network has a node."""
    from tradewind.runtime.funding import network_catalog
    from tradewind.services.funding.watch_config import parse_watch_settings

    catalog = network_catalog(settings)
    if catalog is None:
        return None
    watch = parse_watch_settings(
        settings.funding, catalog, bitcoin_rpc_url=settings.bitcoin_rpc_url
    )
    if not watch.targets:
        return None
    on_alert = count_alerts(alert_counter(registry))

    def build(net: Network, reader: ChainReader, start_height: int) -> ChainWatcher:
        return build_chain_watcher(
            net,
            reader,
            catalog,
            db,
            bus,
            clock,
            outbox,
            on_alert=on_alert,
            start_height=start_height,
        )

    return EmbeddedWatchers(settings, catalog, watch.targets, watch.poll_s, build)


async def _serve(process: WatcherProcess) -> None:
    from tradewind.runtime import standby

    await standby.serve_standing_by(
        process.start,
        process.stop,
        f"Tradewind chain watcher ({process.network_name}) waiting for its lease",
        lambda: f"Tradewind chain watcher ({process.network_name}) running",
    )


def resolve_rpc_url(settings: Settings, network: str, rpc_url: str | None) -> str:
    """``--rpc-url``, else (Bitcoin) the ``bitcoin_rpc_url`` setting."""
    if rpc_url:
        return rpc_url
    if NETWORK_KINDS.get(network) == "utxo" and settings.bitcoin_rpc_url:
        return settings.bitcoin_rpc_url
    raise SystemExit(
        f"error: no RPC URL for {network!r}: give --rpc-url"
        + (" or set bitcoin_rpc_url" if NETWORK_KINDS.get(network) == "utxo" else "")
    )


async def open_reader(settings: Settings, net: Network, rpc_url: str) -> ChainReader:
    """The reader of ``net``'s node: web3 for EVM networks; bitcoind's JSON-RPC for
    Bitcoin, checked to follow the configured chain."""
    if net.kind == "utxo":
        from tradewind.adapters.chain.bitcoind_reader import BitcoindReader

        reader = BitcoindReader(
            rpc_url,
            user=settings.bitcoin_rpc_user,
            password=settings.bitcoin_rpc_password,
            cookie_file=settings.bitcoin_rpc_cookie_file,
        )
        try:
            await reader.check_chain(net.chain)
        except Exception:
            await reader.aclose()
            raise
        return reader
    from tradewind.adapters.chain.web3_reader import Web3ChainReader

    return Web3ChainReader.from_url(
        rpc_url, [a.contract for a in net.assets if a.contract is not None]
    )


def run_watcher(
    settings: Settings, network: str, rpc_url: str | None, *, start_height: int, poll_s: float
) -> int:
    """``tradewind watcher``: follow ``network`` through ``rpc_url`` until interrupted."""
    from tradewind.runtime.server import _run

    process = WatcherProcess(settings, network, rpc_url, start_height=start_height, poll_s=poll_s)
    asyncio.run(preflight(settings, network, process.rpc_url))
    return _run(lambda: _serve(process))


async def preflight(settings: Settings, network: str, rpc_url: str) -> Network:
    """Before any lease or connection: the network is configured and, for Bitcoin, its
    node answers with these credentials on the configured chain. A plain error message
    (``SystemExit``) otherwise, not a traceback from inside the event loop."""
    from tradewind.adapters.chain.bitcoind_reader import BitcoindError
    from tradewind.runtime.funding import network_catalog

    catalog = network_catalog(settings)
    net = None if catalog is None else catalog.network(network)
    if net is None:
        raise SystemExit(f"error: no network {network!r} in the config")
    if net.kind == "utxo":
        try:
            reader = await open_reader(settings, net, rpc_url)
        except BitcoindError as exc:  # wrong chain, refused credentials, node away
            raise SystemExit(f"error: {exc}") from None
        aclose = getattr(reader, "aclose", None)
        if aclose is not None:
            await aclose()
    return net


class WatcherProcess:
    """``start()`` stands by for the network's lease, then runs the loop; ``stop()``."""

    def __init__(
        self,
        settings: Settings,
        network: str,
        rpc_url: str | None,
        *,
        start_height: int = 0,
        poll_s: float = POLL_S,
    ) -> None:
        from tradewind.adapters.redis.lease import RedisLease
        from tradewind.runtime.bootstrap import ApiReplica

        self.settings = settings
        self.network_name = network
        self.rpc_url = resolve_rpc_url(settings, network, rpc_url)
        self.start_height = start_height
        self.poll_s = poll_s
        self.replica = ApiReplica(settings, manage_lifecycle=False)
        self.lease = RedisLease(
            self.replica.redis,
            prefix=f"{settings.redis_prefix}:watcher:{network}",
            holder=f"{socket.gethostname()}:{os.getpid()}:{self.replica.instance}",
            ttl_ms=settings.core_lease_ms,
        )
        self.loop: WatchLoop | None = None
        self.reader: ChainReader | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        from tradewind.adapters.chain.bitcoind_reader import redact
        from tradewind.runtime import standby
        from tradewind.runtime.funding import network_catalog

        catalog = network_catalog(self.settings)
        net = None if catalog is None else catalog.network(self.network_name)
        if catalog is None or net is None:
            raise SystemExit(f"error: no network {self.network_name!r} in the config")
        self.reader = reader = await open_reader(self.settings, net, self.rpc_url)
        await self.replica.start()
        fence_dir = self.settings.data_dir.resolve() / f"watcher-{self.network_name}"
        fence_dir.mkdir(parents=True, exist_ok=True)
        await standby.acquire(self.lease, fence_dir)
        self._tasks.append(asyncio.create_task(standby.hold(self.lease, standby.fail_stop)))
        watcher = build_chain_watcher(
            net,
            reader,
            catalog,
            self.replica.db,
            self.replica.bus,
            self.replica.clock,
            self.replica.identity.outbox,
            on_alert=count_alerts(alert_counter(self.replica.metrics.registry)),
            start_height=self.start_height,
        )
        self.loop = WatchLoop(watcher, self.poll_s)
        self._tasks.append(asyncio.create_task(self._run(self.loop)))
        log.info("chain watcher started", network=self.network_name, rpc=redact(self.rpc_url))

    async def _run(self, loop: WatchLoop) -> None:
        try:
            await loop.run()
        except ReorgBeyondWindow as e:
            # the alert is stored; end the process the ordinary way (SIGTERM to itself
            # runs stop(), which releases the lease) so nothing follows the fork
            log.critical("chain watcher stopped", network=self.network_name, reason=str(e))
            os.kill(os.getpid(), signal.SIGTERM)

    async def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        aclose = getattr(self.reader, "aclose", None)
        if aclose is not None:
            with contextlib.suppress(Exception):
                await aclose()
        if self.lease.token:
            with contextlib.suppress(Exception):
                await self.lease.release()
        await self.replica.stop()
