"""Wiring of the withdrawal workflow for the API processes, the payout processor's loop,
and ``tradewind withdrawals`` (the processor as a process of a distributed deployment).

- :func:`build_withdrawals`: the service over SQL, the core's bus, the accounts' 2FA,
  KYC limits, the admin freeze check, the audit log, notice emails and the AML list;
  same in embedded and distributed mode (``None`` without funding networks);
- :func:`build_processor`: the payout processor when ``[funding.withdrawals]`` names a
  signer (``signer_url``, ``signer_secret``) and nodes (``rpc``); without them requests
  are accepted, checked, locked and approved, and wait;
- :class:`PayoutLoop`: calls ``step()`` every ``poll_s``, then the sweeper's and the
  network-fee booking's (runtime/network_fees.py, ADR 0034); a step that fails (node,
  core or signer away) is logged and retried, never given up silently. The embedded
  exchange runs it as a task; ``tradewind withdrawals`` runs it behind a Redis lease
  (one processor per deployment, a second stands by).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket

import structlog

from tradewind.adapters.aml_list import ListScreening
from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.withdrawals import SqlWithdrawalStore
from tradewind.runtime.config import Settings
from tradewind.runtime.funding import funding_switches, network_catalog
from tradewind.services.accounts import AccountsService
from tradewind.services.admin import AdminService
from tradewind.services.audit import AuditLog
from tradewind.services.fiat.withdrawals import fiat_withdrawal_rules
from tradewind.services.funding.network_fees import NetworkFeeBooker
from tradewind.services.funding.networks import AssetOnNetwork
from tradewind.services.funding.payouts import PayoutProcessor
from tradewind.services.funding.sweeps import Sweeper
from tradewind.services.funding.withdrawal_config import parse_withdrawal_policy
from tradewind.services.funding.withdrawal_ports import PayoutChain, UtxoPayoutChain
from tradewind.services.funding.withdrawals import MailNotifier, WithdrawalService
from tradewind.services.kyc import KycService
from tradewind.services.mail import Outbox
from tradewind.services.ports import Clock
from tradewind.services.trading import CommandBus

log = structlog.get_logger(__name__)


class AccountsTwoFactor:
    """The accounts service's second factor as the workflow's ``TwoFactorGate``."""

    def __init__(self, accounts: AccountsService) -> None:
        self._accounts = accounts

    async def enabled(self, user_id: int) -> bool:
        return (await self._accounts.account(user_id)).totp_enabled

    async def require(self, user_id: int, code: str | None) -> None:
        await self._accounts.require_second_factor(user_id, code)


def fiat_rules(settings: Settings) -> dict[str, AssetOnNetwork] | None:
    """Withdrawal rules of the ``[fiat]`` currencies on ``sepa`` (docs/fiat.md)."""
    from tradewind.runtime.fiat import fiat_config

    config = fiat_config(settings)
    return None if config is None else fiat_withdrawal_rules(config.currencies, config.withdrawals)


def build_withdrawals(
    settings: Settings,
    db: Database,
    bus: CommandBus,
    clock: Clock,
    *,
    accounts: AccountsService,
    outbox: Outbox,
    kyc: KycService,
    admin: AdminService,
    audit: AuditLog,
) -> WithdrawalService | None:
    catalog = network_catalog(settings)
    if catalog is None:
        return None
    policy = parse_withdrawal_policy(settings.funding, os.environ)
    return WithdrawalService(
        catalog=catalog,
        store=SqlWithdrawalStore(db),
        bus=bus,
        two_factor=AccountsTwoFactor(accounts),
        kyc=kyc,
        admin=admin,
        audit=audit,
        notifier=MailNotifier(SqlUserRepository(db), outbox, clock.now_ms),
        screening=ListScreening(policy.blocked_addresses),
        policy=policy,
        now_ms=clock.now_ms,
        switches=funding_switches(catalog, db, clock, audit),
        fiat=fiat_rules(settings),
    )


def build_processor(
    service: WithdrawalService, settings: Settings | None = None
) -> PayoutProcessor | None:
    """The processor over HTTP to the signer, web3 to the EVM nodes and JSON-RPC to
    bitcoind, or ``None`` when the config names no signer or no node. A Bitcoin node's
    credentials are in its URL (``http://user:password@host:8332``) or, without them,
    the watcher's ``bitcoin_rpc_user``/``bitcoin_rpc_password``/``bitcoin_rpc_cookie_file``
    settings."""
    policy = service.policy
    if policy.signer_url is None or policy.signer_secret is None or not policy.rpc:
        return None  # before the imports: web3 alone takes seconds to import
    from tradewind.adapters.chain.bitcoind_payout import BitcoindPayoutChain
    from tradewind.adapters.chain.bitcoind_reader import BitcoindReader
    from tradewind.adapters.signer_http import HttpSignerClient

    chains: dict[str, PayoutChain | UtxoPayoutChain] = {}
    for name, url in policy.rpc.items():
        net = service.catalog.network(name)
        if net is not None and net.kind == "utxo":
            user = password = None
            cookie = None
            if settings is not None and "@" not in url:
                user = settings.bitcoin_rpc_user
                password = settings.bitcoin_rpc_password
                cookie = settings.bitcoin_rpc_cookie_file
            chains[name] = BitcoindPayoutChain(
                BitcoindReader(url, user=user, password=password, cookie_file=cookie),
                fallback_fee_rate=policy.bitcoin_fee_fallback,
                fee_target_blocks=policy.bitcoin_fee_target,
            )
            continue
        if net is None or net.kind != "evm" or net.chain_id is None:
            raise SystemExit(f"error: funding.withdrawals.rpc.{name}: not a network here")
        from tradewind.adapters.chain.evm_payout import Web3PayoutChain

        chains[name] = Web3PayoutChain.from_url(url, net.chain_id)
    signer = HttpSignerClient(policy.signer_url, policy.signer_secret, service.now_ms)
    return PayoutProcessor(service, chains, signer)


class PayoutLoop:
    def __init__(
        self,
        processor: PayoutProcessor,
        poll_s: float = 2.0,
        sweeper: Sweeper | None = None,
        fees: NetworkFeeBooker | None = None,
    ) -> None:
        self.processor = processor
        self.poll_s = poll_s
        self.sweeper = sweeper
        """Sweeps and hot/cold moves (runtime/sweeps.py), after each payout step."""
        self.fees = fees
        """Network fees of finished payouts and transfers booked in the core (ADR 0034)."""
        if sweeper is not None and processor.reservations is None:
            # a Bitcoin payout must not spend a hot coin a move to cold spends (ADR 0035)
            processor.reservations = sweeper.store
        self.failures = 0
        self._stop = asyncio.Event()

    def stop(self) -> None:
        self._stop.set()

    async def run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.processor.step()
            except Exception:  # a node, the core or the database away: retry
                self.failures += 1
                log.exception("payout step failed")
            if self.sweeper is not None:
                try:
                    await self.sweeper.step()
                except Exception:  # a node or the signer away: retry
                    self.failures += 1
                    log.exception("sweep step failed")
            if self.fees is not None:
                try:
                    await self.fees.step()
                except Exception:  # a node, the core or the database away: retry
                    self.failures += 1
                    log.exception("network fee step failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.poll_s)


def run_withdrawals(settings: Settings) -> int:
    """``tradewind withdrawals``: run the payout processor until interrupted."""
    from tradewind.runtime import standby
    from tradewind.runtime.server import _run

    process = WithdrawalsProcess(settings)

    async def serve() -> None:
        await standby.serve_standing_by(
            process.start,
            process.stop,
            "Tradewind withdrawals processor waiting for its lease",
            lambda: "Tradewind withdrawals processor running",
        )

    return _run(serve)


class WithdrawalsProcess:
    """An API replica without HTTP that runs the payout loop behind a Redis lease."""

    def __init__(self, settings: Settings) -> None:
        from tradewind.adapters.redis.lease import RedisLease
        from tradewind.runtime.bootstrap import ApiReplica

        self.settings = settings
        self.replica = ApiReplica(settings, manage_lifecycle=False)
        self.lease = RedisLease(
            self.replica.redis,
            prefix=f"{settings.redis_prefix}:withdrawals",
            holder=f"{socket.gethostname()}:{os.getpid()}:{self.replica.instance}",
            ttl_ms=settings.core_lease_ms,
        )
        self.loop: PayoutLoop | None = None
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        from tradewind.runtime import standby

        service = self.replica.withdrawals
        processor = None if service is None else build_processor(service, self.settings)
        if service is None or processor is None:
            raise SystemExit(
                "error: no payouts configured ([funding.withdrawals] signer_url, "
                "signer_secret and rpc)"
            )
        await self.replica.start()
        fence_dir = self.settings.data_dir.resolve() / "withdrawals"
        fence_dir.mkdir(parents=True, exist_ok=True)
        await standby.acquire(self.lease, fence_dir)
        self._tasks.append(asyncio.create_task(standby.hold(self.lease, standby.fail_stop)))
        from tradewind.runtime.network_fees import build_fee_booker
        from tradewind.runtime.sweeps import build_sweeper

        sweeper = build_sweeper(self.settings, self.replica.db, service)
        fees = build_fee_booker(self.replica.db, self.replica.bus, processor)
        self.loop = PayoutLoop(processor, service.policy.poll_s, sweeper, fees)
        self._tasks.append(asyncio.create_task(self.loop.run()))
        log.info("withdrawals processor started")

    async def stop(self) -> None:
        if self.loop is not None:
            self.loop.stop()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        if self.lease.token:
            with contextlib.suppress(Exception):
                await self.lease.release()
        await self.replica.stop()
