"""``Screening`` from a list in the config (``[funding.aml] blocked_addresses``): the
stand-in for a sanctions/chain-analysis provider (Chainalysis, TRM, Elliptic), which
would fill the same port.

Addresses compare case-insensitively (EVM checksums are case, not identity); the list
applies on every network.
"""

from __future__ import annotations

from collections.abc import Iterable

from tradewind.services.funding.withdrawal_ports import ScreeningResult


class ListScreening:
    def __init__(self, blocked: Iterable[str]) -> None:
        self._blocked = frozenset(a.strip().lower() for a in blocked if a.strip())

    async def screen(self, network: str, address: str) -> ScreeningResult:
        if address.strip().lower() in self._blocked:
            return ScreeningResult(True, "on the configured blocklist", "config")
        return ScreeningResult(False, None, "config")
