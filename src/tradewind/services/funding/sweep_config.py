"""The sweep settings: ``[funding.sweeps.NETWORK]`` of the config file (docs/funding.md,
"Sweeps and the cold wallet"; ADR 0028).

```toml
[funding.sweeps.ethereum]
deposit_key = "deposit-ethereum"   # label of the account xprv in the signer's token
cold_address = "0x..."             # the cold wallet (its key is offline)

[funding.sweeps.ethereum.assets.ETH]
min_sweep = "0.01"                 # smaller balances stay on deposit addresses (dust)
hot_ceiling = "50"                 # above this (after pending payouts) ...
hot_target = "20"                  # ... the hot wallet is brought down to this
```

Invariants:
- unknown keys are refused naming the entry, like the other funding tables;
- amounts are decimal strings converted exactly with the asset's core decimals and kept
  in minor units; ``hot_target <= hot_ceiling``, both or neither;
- the same keys serve EVM and Bitcoin networks (ADR 0035; on Bitcoin ``min_sweep`` is
  what an address's coins worth spending must add up to);
- the cold address passes ``validate_address`` for its network (EIP-55 checked) and is
  never the hot wallet's (the signer checks that at start-up, it alone knows the hot key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from tradewind.services.funding.addresses import AddressError, validate_address
from tradewind.services.funding.networks import NetworkCatalog, NetworkConfigError, parse_amount


@dataclass(frozen=True, slots=True)
class AssetSweeps:
    asset: str
    min_sweep: int
    """Minor units: a deposit address holding less of the asset is left alone (dust)."""
    hot_ceiling: int | None = None
    """Minor units: the hot wallet's most, after what pending payouts need."""
    hot_target: int | None = None
    """Minor units: what an excess move to cold leaves in the hot wallet."""


@dataclass(frozen=True, slots=True)
class NetworkSweeps:
    network: str
    deposit_key: str
    """Label of the account-level extended private key held in the signer's token."""
    cold_address: str | None
    assets: Mapping[str, AssetSweeps] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class SweepSettings:
    networks: Mapping[str, NetworkSweeps] = field(default_factory=dict)

    def network(self, name: str) -> NetworkSweeps | None:
        return self.networks.get(name)


def _table(value: object, where: str, keys: frozenset[str] | None) -> Mapping[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise NetworkConfigError(f"{where}: must be a table")
    if keys is not None:
        unknown = sorted(set(value) - keys)
        if unknown:
            raise NetworkConfigError(f"{where}: unknown key {unknown[0]!r}")
    return value


def _amount(value: object, where: str, decimals: int) -> int:
    if not isinstance(value, str):
        raise NetworkConfigError(f'{where}: a decimal string, e.g. "0.01"')
    try:
        return parse_amount(value, decimals)
    except ValueError as exc:
        raise NetworkConfigError(f"{where}: {exc}") from None


_NETWORK_KEYS = frozenset({"deposit_key", "cold_address", "assets"})
_ASSET_KEYS = frozenset({"min_sweep", "hot_ceiling", "hot_target"})


def parse_sweep_settings(
    funding: Mapping[str, object] | None, catalog: NetworkCatalog | None
) -> SweepSettings:
    table = _table((funding or {}).get("sweeps"), "funding.sweeps", None)
    out: dict[str, NetworkSweeps] = {}
    for name, value in table.items():
        where = f"funding.sweeps.{name}"
        net = None if catalog is None else catalog.network(str(name))
        if net is None:
            raise NetworkConfigError(f"{where}: no such network in [funding.networks]")
        t = _table(value, where, _NETWORK_KEYS)
        label = t.get("deposit_key", f"deposit-{name}")
        if not isinstance(label, str) or not 0 < len(label) <= 64:
            raise NetworkConfigError(f"{where}.deposit_key: a label of 1 to 64 characters")
        cold = t.get("cold_address")
        if cold is not None:
            if not isinstance(cold, str):
                raise NetworkConfigError(f"{where}.cold_address: an address")
            try:
                cold = validate_address(net, cold)
            except AddressError as exc:
                raise NetworkConfigError(f"{where}.cold_address: {exc}") from None
        assets: dict[str, AssetSweeps] = {}
        for asset, rules in _table(t.get("assets"), f"{where}.assets", None).items():
            aw = f"{where}.assets.{asset}"
            on = net.asset(str(asset))
            if on is None:
                raise NetworkConfigError(f"{aw}: {asset!r} is not on {name}")
            r = _table(rules, aw, _ASSET_KEYS)
            min_sweep = _amount(r.get("min_sweep", "0"), f"{aw}.min_sweep", on.decimals)
            ceiling = r.get("hot_ceiling")
            target = r.get("hot_target")
            if (ceiling is None) != (target is None):
                raise NetworkConfigError(f"{aw}: hot_ceiling and hot_target go together")
            c = None if ceiling is None else _amount(ceiling, f"{aw}.hot_ceiling", on.decimals)
            g = None if target is None else _amount(target, f"{aw}.hot_target", on.decimals)
            if c is not None and g is not None and g > c:
                raise NetworkConfigError(f"{aw}: hot_target is above hot_ceiling")
            if c is not None and cold is None:
                raise NetworkConfigError(f"{aw}: a hot_ceiling needs {where}.cold_address")
            assets[on.asset] = AssetSweeps(on.asset, min_sweep, c, g)
        out[str(name)] = NetworkSweeps(str(name), label, cold, assets)
    return SweepSettings(out)
