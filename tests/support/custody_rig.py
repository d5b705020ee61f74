"""What the custody tests under tests/integration/hsm/ share: a process killed at a point,
a wall clock that can be moved on, the core runner as a command bus, and the part of the
EVM and Bitcoin sweep rigs (test_sweeps.py, test_btc_sweeps.py) that does not depend on
the chain."""

from __future__ import annotations

import time

import httpx
import sqlalchemy as sa
from fastapi import FastAPI

from tradewind.adapters.signer_http import HttpSignerClient
from tradewind.adapters.sql import Database, SqlUserRepository
from tradewind.adapters.sql.deposit_addresses import SqlDepositAddressStore
from tradewind.adapters.sql.sweeps import CustodyTransferRow, SqlSweepStore
from tradewind.adapters.sql.sweeps import _transfer as row_to_transfer
from tradewind.core.commands import AnyCommand
from tradewind.runtime.sequencer import Applied, CoreRunner
from tradewind.services.funding.derivation import AddressDeriver
from tradewind.services.funding.ports import StoredDepositAddress
from tradewind.services.funding.sweep_ports import CustodyTransfer
from tradewind.services.funding.sweeps import Sweeper


class Killed(BaseException):
    """The process killed at this point."""


class Clock:
    def __init__(self) -> None:
        self.offset_ms = 0

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self.offset_ms


class RunnerBus:
    """The embedded core runner as a command bus (the watcher's, the fee booker's)."""

    def __init__(self, runner: CoreRunner) -> None:
        self.runner = runner

    @property
    def available(self) -> bool:
        return self.runner.running

    async def submit(self, cmd: AnyCommand) -> Applied:
        return await self.runner.submit(cmd)


class SweepRig:
    """The sweep rig of one network: the subclass builds these attributes and mines."""

    network: str
    email_prefix: str
    settle_steps: int
    secret: str
    db: Database
    clock: Clock
    app: FastAPI
    store: SqlSweepStore
    addresses: SqlDepositAddressStore
    deriver: AddressDeriver

    def mine(self, n: int = 1) -> None:
        raise NotImplementedError

    def client(self) -> HttpSignerClient:
        return HttpSignerClient(
            "http://signer",
            self.secret,
            self.clock.now_ms,
            transport=httpx.ASGITransport(app=self.app),
        )

    async def deposit_address(self) -> tuple[int, str]:
        """A new user and their deposit address."""
        added = await SqlUserRepository(self.db).add(
            email=f"{self.email_prefix}{time.monotonic_ns()}@example.com",
            password_hash="x",
            created_at_ms=1,
        )
        assert added is not None
        d = self.deriver.derive(added.id)
        await self.addresses.put_if_absent(
            StoredDepositAddress(added.id, self.network, d.address, d.path, 0)
        )
        return added.id, d.address

    async def all_transfers(self) -> list[CustodyTransfer]:
        """Every custody transfer, oldest first, as the store reads one (one query, not
        one per row: the kill-point tests read them after each of dozens of sweeps)."""
        async with self.db.read() as session:
            rows = await session.scalars(
                sa.select(CustodyTransferRow).order_by(CustodyTransferRow.id)
            )
            return [row_to_transfer(row) for row in rows]


async def settle(rig: SweepRig, sweeper: Sweeper) -> None:
    """Step and mine until nothing is unfinished (``rig.settle_steps`` steps at most)."""
    for _ in range(rig.settle_steps):
        await sweeper.step()
        if not await rig.store.unfinished(rig.network):
            return
        rig.mine(1)
    raise AssertionError(f"still unfinished: {await rig.store.unfinished(rig.network)}")
