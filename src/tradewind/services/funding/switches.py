"""Runtime switches of deposits and withdrawals per (network, asset) (issue 6 item 1,
ADR 0032).

The network catalog (networks.py) is immutable and built from the config at start; its
``deposit_enabled``/``withdrawal_enabled`` are the defaults. An admin turns either off
or on while the exchange runs; the switch is stored (SQL ``funding_switches``), audited,
and every consumer asks :class:`FundingSwitches` for the live rules.

Invariants:
- a stored switch replaces both flags of its (network, asset); without one the
  config's flags hold, so an empty table changes nothing;
- freshness: the withdrawal workflow and the chain watcher read the store on every
  request / crediting pass (``fresh=True``: a disabled withdrawal is refused at once,
  a disabled deposit is not credited by the next pass); the deposit-address route and
  the network listings read through a per-process cache of ``ttl_ms`` (2 s by default):
  they may show the old flags for that long on another process, never longer. A switch
  made through this object clears its own cache at once;
- only admins switch (``admin.denied`` is audited for anyone else); every switch is in
  the audit log with the flags before and after.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tradewind.services.admin import Actor, RoleRequired
from tradewind.services.audit import AuditLog
from tradewind.services.errors import ServiceError
from tradewind.services.funding.networks import AssetOnNetwork, Network, NetworkCatalog

SWITCH_ROLES = frozenset({"admin"})
DEFAULT_TTL_MS = 2_000


class UnknownFundingAsset(ServiceError):
    code = "unknown_funding_asset"
    status_hint = 404
    default_message = "no such asset on that network in the funding configuration"


class EmptySwitch(ServiceError):
    code = "empty_switch"
    status_hint = 400
    default_message = "give deposit_enabled, withdrawal_enabled or both"


@dataclass(frozen=True, slots=True)
class FundingSwitch:
    network: str
    asset: str
    deposit_enabled: bool
    withdrawal_enabled: bool
    updated_at_ms: int
    updated_by: int | None


class FundingSwitchStore(Protocol):
    async def all(self) -> Sequence[FundingSwitch]: ...

    async def put(self, switch: FundingSwitch) -> None:
        """Insert or replace the switch of ``(network, asset)``."""
        ...


class MemoryFundingSwitchStore:
    """For tests and tools without a database."""

    def __init__(self) -> None:
        self.rows: dict[tuple[str, str], FundingSwitch] = {}

    async def all(self) -> Sequence[FundingSwitch]:
        return list(self.rows.values())

    async def put(self, switch: FundingSwitch) -> None:
        self.rows[(switch.network, switch.asset)] = switch


def apply_switch(rules: AssetOnNetwork, switch: FundingSwitch | None) -> AssetOnNetwork:
    if switch is None or (
        switch.deposit_enabled == rules.deposit_enabled
        and switch.withdrawal_enabled == rules.withdrawal_enabled
    ):
        return rules
    return dataclasses.replace(
        rules,
        deposit_enabled=switch.deposit_enabled,
        withdrawal_enabled=switch.withdrawal_enabled,
    )


class FundingSwitches:
    def __init__(
        self,
        catalog: NetworkCatalog,
        store: FundingSwitchStore,
        now_ms: Callable[[], int],
        *,
        audit: AuditLog | None = None,
        ttl_ms: int = DEFAULT_TTL_MS,
    ) -> None:
        self.catalog = catalog
        self._store = store
        self._now_ms = now_ms
        self.audit = audit
        """Where switches are recorded (set after construction by the wiring)."""
        self._ttl_ms = ttl_ms
        self._cached: Mapping[tuple[str, str], FundingSwitch] = {}
        self._valid_until = -1

    async def _switches(self, fresh: bool) -> Mapping[tuple[str, str], FundingSwitch]:
        now = self._now_ms()
        if fresh or now >= self._valid_until:
            self._cached = {(s.network, s.asset): s for s in await self._store.all()}
            self._valid_until = now + self._ttl_ms
        return self._cached

    async def rules(self, rules: AssetOnNetwork, *, fresh: bool = False) -> AssetOnNetwork:
        """``rules`` with the live flags."""
        switches = await self._switches(fresh)
        return apply_switch(rules, switches.get((rules.network, rules.asset)))

    async def network(self, net: Network, *, fresh: bool = False) -> Network:
        switches = await self._switches(fresh)
        assets = tuple(apply_switch(a, switches.get((net.name, a.asset))) for a in net.assets)
        return dataclasses.replace(net, assets=assets)

    async def live_catalog(self, *, fresh: bool = False) -> NetworkCatalog:
        """The catalog with every stored switch applied."""
        await self._switches(fresh)
        return NetworkCatalog(tuple([await self.network(n) for n in self.catalog.networks]))

    async def set(
        self,
        actor: Actor,
        network: str,
        asset: str,
        *,
        deposit_enabled: bool | None = None,
        withdrawal_enabled: bool | None = None,
    ) -> AssetOnNetwork:
        """Switch deposits and/or withdrawals of ``asset`` on ``network``; a flag left
        ``None`` keeps its live value. Returns the live rules afterwards."""
        if actor.role not in SWITCH_ROLES:
            if self.audit is not None:
                await self.audit.record(
                    "admin.denied",
                    actor_id=actor.user_id,
                    actor_role=actor.role,
                    details={"attempted": "funding.switch", "network": network, "asset": asset},
                    ip=actor.ip,
                )
            raise RoleRequired("switching deposits or withdrawals needs the role admin")
        base = self.catalog.asset_on(asset, network)
        if base is None:
            raise UnknownFundingAsset(f"{asset!r} is not configured on {network!r}")
        if deposit_enabled is None and withdrawal_enabled is None:
            raise EmptySwitch()
        before = await self.rules(base, fresh=True)
        switch = FundingSwitch(
            network,
            asset,
            before.deposit_enabled if deposit_enabled is None else deposit_enabled,
            before.withdrawal_enabled if withdrawal_enabled is None else withdrawal_enabled,
            self._now_ms(),
            actor.user_id,
        )
        await self._store.put(switch)
        self._valid_until = -1  # this process sees its own switch at once
        if self.audit is not None:
            await self.audit.record(
                "admin.funding_switch",
                actor_id=actor.user_id,
                actor_role=actor.role,
                details={
                    "network": network,
                    "asset": asset,
                    "deposit_enabled": switch.deposit_enabled,
                    "withdrawal_enabled": switch.withdrawal_enabled,
                    "deposit_was": before.deposit_enabled,
                    "withdrawal_was": before.withdrawal_enabled,
                },
                ip=actor.ip,
            )
        return apply_switch(base, switch)
