"""A journaled core in a data directory, started and stopped like the core process, for
tests of services that submit to the core (the chain watchers)."""

from __future__ import annotations

from pathlib import Path

from tradewind.core.commands import AddAsset
from tradewind.journal.recovery import JournaledCore, recover
from tradewind.runtime.sequencer import CoreRunner


class Exchange:
    """A journaled core in ``data`` with ``assets`` (name: decimals) listed at its first
    start; the first asset is what :meth:`balance` reads by default."""

    def __init__(self, data: Path, assets: dict[str, int]) -> None:
        self.data = data
        self.assets = assets
        self.runner: CoreRunner | None = None

    async def start(self) -> CoreRunner:
        self.runner = CoreRunner(JournaledCore(self.data), clock_ms=lambda: 1_000)
        self.runner.start()
        listed = recover(self.data, repair=False).core.assets
        for asset, decimals in self.assets.items():
            if listed.get(asset) is None:
                await self.runner.submit(AddAsset(asset=asset, decimals=decimals))
        return self.runner

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.stop()
            self.runner = None

    def balance(self, user: int, asset: str | None = None) -> int:
        """Available balance as recovered from the data directory (what is durable)."""
        core = recover(self.data, repair=False).core
        return core.available(user, asset or next(iter(self.assets)))
