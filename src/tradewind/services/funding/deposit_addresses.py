"""Deposit addresses: the one address each user has on each network.

Why stored although derivable: chain watchers look a deposit's address up to find the
user it belongs to, and an address once shown must stay valid even if the network's
key were rotated later; the stored row is the record of what the user was given.

Invariants:
- a refused request (unknown network, asset not on it, deposits disabled, or no key
  configured for the network, which is the same ``deposits_disabled`` for the caller)
  stores nothing;
- the first address stored for (user, network) is the one returned ever after, on
  every replica (the store's ``put_if_absent`` decides a race);
- every asset of a network shares the network's address (ETH and USDT on Ethereum).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import ClassVar

from tradewind.services.errors import ServiceError
from tradewind.services.funding.derivation import MAX_INDEX, AddressDeriver
from tradewind.services.funding.networks import AssetOnNetwork, NetworkCatalog
from tradewind.services.funding.ports import DepositAddressStore, StoredDepositAddress
from tradewind.services.funding.switches import FundingSwitches


class UnknownNetwork(ServiceError):
    code: ClassVar[str] = "unknown_network"
    status_hint: ClassVar[int] = 400
    default_message: ClassVar[str] = "unknown network"


class UnknownAssetOnNetwork(ServiceError):
    code: ClassVar[str] = "unknown_asset"
    status_hint: ClassVar[int] = 400
    default_message: ClassVar[str] = "this asset is not on this network"


class DepositsDisabled(ServiceError):
    code: ClassVar[str] = "deposits_disabled"
    status_hint: ClassVar[int] = 409
    default_message: ClassVar[str] = "deposits of this asset on this network are suspended"


@dataclass(frozen=True, slots=True)
class DepositAddress:
    asset: AssetOnNetwork
    address: str
    path: str
    created_at_ms: int


class DepositAddressService:
    """Hands out deposit addresses; built with the catalog, derivers and a store."""

    def __init__(
        self,
        catalog: NetworkCatalog,
        store: DepositAddressStore,
        now_ms: Callable[[], int],
        derivers: Mapping[str, AddressDeriver] | None = None,
        switches: FundingSwitches | None = None,
    ) -> None:
        self.catalog = catalog
        self.switches = switches
        """Runtime switches (ADR 0032), read through their short cache."""
        self._store = store
        self._now_ms = now_ms
        if derivers is None:
            derivers = {n.name: AddressDeriver(n) for n in catalog.networks if n.xpub}
        self._derivers = dict(derivers)

    def asset_on(self, asset: str, network: str) -> AssetOnNetwork:
        """The asset's rules on the network, or the precise error why there are none."""
        net = self.catalog.network(network)
        if net is None:
            known = ", ".join(n.name for n in self.catalog.networks) or "none"
            raise UnknownNetwork(f"unknown network {network!r} (known: {known})")
        rules = net.asset(asset)
        if rules is None:
            elsewhere = self.catalog.networks_of(asset)
            hint = f"; it is on {', '.join(elsewhere)}" if elsewhere else ""
            raise UnknownAssetOnNetwork(f"{asset!r} is not on {network}{hint}")
        return rules

    async def live_catalog(self) -> NetworkCatalog:
        """The catalog with the runtime switches applied (what the listing shows)."""
        if self.switches is None:
            return self.catalog
        return await self.switches.live_catalog()

    async def address_for(self, user_id: int, asset: str, network: str) -> DepositAddress:
        rules = self.asset_on(asset, network)
        if self.switches is not None:
            rules = await self.switches.rules(rules)
        if not rules.deposit_enabled:
            raise DepositsDisabled(f"deposits of {asset} on {network} are suspended")
        stored = await self._store.get(user_id, network)
        if stored is None:
            deriver = self._derivers.get(network)
            if deriver is None:
                raise DepositsDisabled(
                    f"{network} gives no deposit addresses here (no key configured)"
                )
            if not 0 <= user_id <= MAX_INDEX:
                raise DepositsDisabled("this account cannot be given a derived address")
            derived = deriver.derive(user_id)
            stored = await self._store.put_if_absent(
                StoredDepositAddress(
                    user_id, network, derived.address, derived.path, self._now_ms()
                )
            )
        return DepositAddress(rules, stored.address, stored.path, stored.created_at_ms)
