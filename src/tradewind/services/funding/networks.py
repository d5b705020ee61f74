"""Assets on networks: which chains the exchange accepts funds on, and the rules of each
asset there (DESIGN §5).

Why a value model of its own: the same asset (USDT) lives on several networks with
different contracts, confirmation depths, minimum deposits and fees, and every part of
funding (addresses, watchers, withdrawals, sweeps) asks "what are the rules for this
asset on this network". One immutable catalog answers that, built once from the TOML
config (or the demo defaults) and never mutated.

Invariants:
- amounts are integers in the asset's minor units (the core's units); the config gives
  them as decimal strings and :func:`parse_amount` converts them exactly (a value with
  more decimals than the asset has is refused, never rounded);
- network names are ``bitcoin``, ``ethereum`` and ``bsc``; which chain a network points
  at (mainnet, a testnet, regtest; an EVM chain id) is a field, so a test deployment
  keeps the names clients use;
- an EVM token has a contract address (EIP-55 checksummed); the native coin has none;
- a bad config raises :class:`NetworkConfigError` naming the offending entry.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from tradewind.services.funding.addresses import AddressError, validate_address

Kind = Literal["utxo", "evm"]
BitcoinChain = Literal["mainnet", "testnet", "regtest"]

NETWORK_KINDS: Mapping[str, Kind] = {"bitcoin": "utxo", "ethereum": "evm", "bsc": "evm"}
"""The networks this exchange knows how to speak to, and how."""
BITCOIN_CHAINS: tuple[BitcoinChain, ...] = ("mainnet", "testnet", "regtest")
_ASSET = re.compile(r"[A-Z][A-Z0-9]{1,15}")
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,29})(?:\.([0-9]{1,30}))?")
_MAX_CONFIRMATIONS = 10_000
SATOSHI_DECIMALS = 8
"""Bitcoin's chain unit is the satoshi, whatever the core's decimals of BTC."""


class NetworkConfigError(ValueError):
    """The funding configuration is malformed; the message names the entry."""


@dataclass(frozen=True, slots=True)
class AssetOnNetwork:
    """The rules of one asset on one network."""

    asset: str
    network: str
    decimals: int
    """The core's decimals of the asset: ``min_deposit`` and ``withdrawal_fee`` are in
    these minor units, as every balance is."""
    chain_decimals: int
    """The decimals of amounts on chain (ETH 18; USDT 6 on Ethereum, 18 on BSC): a
    watcher converts with it, and chain dust below one core unit is not credited."""
    contract: str | None
    """The token contract (EVM tokens); ``None`` for the network's native coin."""
    confirmations: int
    """Blocks on top of the deposit's block before it is credited."""
    min_deposit: int
    """Minor units; smaller deposits are not credited (they would cost more to sweep)."""
    withdrawal_fee: int
    """Minor units charged per withdrawal."""
    deposit_enabled: bool
    withdrawal_enabled: bool
    min_withdrawal: int = 0
    """Minor units; a withdrawal (its gross amount, fee included) must be at least this
    and more than the fee (services/funding/withdrawals.py)."""
    auto_approve_below: int = 0
    """Minor units; smaller withdrawals need no approval (0: every one is reviewed)."""
    two_person_above: int | None = None
    """Minor units; larger withdrawals need two different approvers (None: never)."""

    @property
    def native(self) -> bool:
        return self.contract is None


@dataclass(frozen=True, slots=True)
class Network:
    """One chain the exchange accepts funds on."""

    name: str
    kind: Kind
    chain: str
    """Bitcoin: ``mainnet``, ``testnet`` or ``regtest`` (sets the address prefixes)."""
    chain_id: int | None
    """EVM: the chain id (1 Ethereum, 56 BSC, 11155111 Sepolia, 97 BSC testnet)."""
    xpub: str | None
    """Account-level extended public key deposit addresses are derived from; ``None``:
    this network gives no deposit addresses."""
    assets: tuple[AssetOnNetwork, ...]

    def asset(self, symbol: str) -> AssetOnNetwork | None:
        for a in self.assets:
            if a.asset == symbol:
                return a
        return None


@dataclass(frozen=True, slots=True)
class NetworkCatalog:
    """Every network and its assets; looked up by name."""

    networks: tuple[Network, ...]

    def network(self, name: str) -> Network | None:
        for n in self.networks:
            if n.name == name:
                return n
        return None

    def asset_on(self, asset: str, network: str) -> AssetOnNetwork | None:
        n = self.network(network)
        return None if n is None else n.asset(asset)

    def networks_of(self, asset: str) -> tuple[str, ...]:
        """Names of the networks ``asset`` lives on (for error messages and listings)."""
        return tuple(n.name for n in self.networks if n.asset(asset) is not None)


def parse_amount(text: str, decimals: int) -> int:
    """``"0.0001"`` with 8 decimals is ``10000``: exact, refuses excess precision."""
    m = _AMOUNT.fullmatch(text.strip())
    if m is None:
        raise ValueError(f"{text!r} is not a non-negative decimal amount")
    whole, frac = m.group(1), m.group(2) or ""
    if len(frac) > decimals:
        raise ValueError(f"{text!r} has more than {decimals} decimals")
    scale: int = 10**decimals
    return int(whole) * scale + int(frac.ljust(decimals, "0") or "0")


def _get(table: Mapping[str, object], key: str, where: str) -> object:
    if key not in table:
        raise NetworkConfigError(f"{where}: {key!r} is missing")
    return table[key]


def _int(value: object, where: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise NetworkConfigError(f"{where}: expected an integer from {lo} to {hi}, got {value!r}")
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise NetworkConfigError(f"{where}: expected true or false, got {value!r}")
    return value


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise NetworkConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


_OPTIONAL_AMOUNTS = ("min_withdrawal", "auto_approve_below", "two_person_above")
_NETWORK_KEYS = frozenset({"kind", "chain", "chain_id", "xpub", "assets"})
_ASSET_KEYS = frozenset(
    {
        "decimals",
        "chain_decimals",
        "contract",
        "confirmations",
        "min_deposit",
        "withdrawal_fee",
        "deposit_enabled",
        "withdrawal_enabled",
        "min_withdrawal",
        "auto_approve_below",
        "two_person_above",
    }
)


def _parse_asset(name: str, net: Network, table: Mapping[str, object]) -> AssetOnNetwork:
    where = f"funding.networks.{net.name}.assets.{name}"
    if not _ASSET.fullmatch(name):
        raise NetworkConfigError(f"{where}: an asset is 2-16 capitals and digits")
    unknown = sorted(set(table) - _ASSET_KEYS)
    if unknown:
        raise NetworkConfigError(f"{where}: unknown key {unknown[0]!r}")
    decimals = _int(_get(table, "decimals", where), f"{where}.decimals", 0, 18)
    default_chain = SATOSHI_DECIMALS if net.kind == "utxo" else decimals
    chain_decimals = _int(
        table.get("chain_decimals", default_chain), f"{where}.chain_decimals", 0, 36
    )
    if net.kind == "utxo" and chain_decimals != SATOSHI_DECIMALS:
        # the watcher reads satoshi: any other scale would credit 10^k times the deposit
        raise NetworkConfigError(f"{where}.chain_decimals: Bitcoin amounts have 8 decimals")
    if chain_decimals < decimals:
        raise NetworkConfigError(
            f"{where}.chain_decimals: the chain must be at least as precise as the core"
        )
    contract_raw = table.get("contract")
    contract: str | None = None
    if contract_raw is not None:
        if net.kind != "evm":
            raise NetworkConfigError(f"{where}.contract: only EVM networks have token contracts")
        try:
            contract = validate_address(net, _str(contract_raw, f"{where}.contract"))
        except AddressError as exc:
            raise NetworkConfigError(f"{where}.contract: {exc.message}") from None
    amounts: dict[str, int] = {}
    for key in ("min_deposit", "withdrawal_fee", *_OPTIONAL_AMOUNTS):
        if key in _OPTIONAL_AMOUNTS and key not in table:
            continue
        raw = _str(_get(table, key, where), f"{where}.{key}")
        try:
            amounts[key] = parse_amount(raw, decimals)
        except ValueError as exc:
            raise NetworkConfigError(f"{where}.{key}: {exc}") from None
    return AssetOnNetwork(
        asset=name,
        network=net.name,
        decimals=decimals,
        chain_decimals=chain_decimals,
        contract=contract,
        confirmations=_int(
            _get(table, "confirmations", where),
            f"{where}.confirmations",
            1,
            _MAX_CONFIRMATIONS,
        ),
        min_deposit=amounts["min_deposit"],
        withdrawal_fee=amounts["withdrawal_fee"],
        deposit_enabled=_bool(table.get("deposit_enabled", True), f"{where}.deposit_enabled"),
        withdrawal_enabled=_bool(
            table.get("withdrawal_enabled", True), f"{where}.withdrawal_enabled"
        ),
        min_withdrawal=amounts.get("min_withdrawal", 0),
        auto_approve_below=amounts.get("auto_approve_below", 0),
        two_person_above=amounts.get("two_person_above"),
    )


def _parse_network(name: str, table: Mapping[str, object]) -> Network:
    where = f"funding.networks.{name}"
    if name not in NETWORK_KINDS:
        raise NetworkConfigError(f"{where}: unknown network (known: {', '.join(NETWORK_KINDS)})")
    if not isinstance(table, Mapping):
        raise NetworkConfigError(f"{where}: must be a table")
    unknown = sorted(set(table) - _NETWORK_KEYS)
    if unknown:
        raise NetworkConfigError(f"{where}: unknown key {unknown[0]!r}")
    kind = NETWORK_KINDS[name]
    chain = "mainnet"
    chain_id: int | None = None
    if kind == "utxo":
        chain = _str(table.get("chain", "mainnet"), f"{where}.chain")
        if chain not in BITCOIN_CHAINS:
            raise NetworkConfigError(f"{where}.chain: one of {', '.join(BITCOIN_CHAINS)}")
        if "chain_id" in table:
            raise NetworkConfigError(f"{where}.chain_id: only EVM networks have a chain id")
    else:
        chain_id = _int(_get(table, "chain_id", where), f"{where}.chain_id", 1, 2**53)
        if "chain" in table:
            raise NetworkConfigError(f"{where}.chain: EVM networks are set by chain_id")
    xpub_raw = table.get("xpub")
    xpub = None if xpub_raw is None else _str(xpub_raw, f"{where}.xpub")
    net = Network(name, kind, chain, chain_id, xpub, ())
    assets_raw = _get(table, "assets", where)
    if not isinstance(assets_raw, Mapping) or not assets_raw:
        raise NetworkConfigError(f"{where}.assets: a table of at least one asset")
    assets: list[AssetOnNetwork] = []
    for asset_name, asset_table in assets_raw.items():
        if not isinstance(asset_table, Mapping):
            raise NetworkConfigError(f"{where}.assets.{asset_name}: must be a table")
        assets.append(_parse_asset(str(asset_name), net, asset_table))
    if sum(1 for a in assets if a.native) > 1:
        raise NetworkConfigError(f"{where}.assets: at most one native coin (no contract)")
    if kind == "utxo" and not all(a.native for a in assets):
        raise NetworkConfigError(f"{where}.assets: Bitcoin has no tokens")
    return Network(name, kind, chain, chain_id, xpub, tuple(assets))


def parse_networks(config: Mapping[str, object]) -> NetworkCatalog:
    """The catalog from the ``[funding.networks.*]`` tables of the TOML config.

    ``config`` is the ``funding`` table: ``{"networks": {"bitcoin": {...}, ...}}``.
    """
    # the other tables are read by their own parsers (withdrawals: withdrawal_config.py)
    unknown = sorted(set(config) - {"networks", "withdrawals", "aml", "signer", "sweeps", "watch"})
    if unknown:
        raise NetworkConfigError(f"funding: unknown key {unknown[0]!r}")
    networks = config.get("networks", {})
    if not isinstance(networks, Mapping):
        raise NetworkConfigError("funding.networks: must be a table")
    return NetworkCatalog(
        tuple(_parse_network(str(name), table) for name, table in networks.items())
    )
