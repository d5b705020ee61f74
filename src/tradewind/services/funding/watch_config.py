"""Which chains the embedded exchange watches itself: ``[funding.watch]`` of the config
file, and Bitcoin's ``bitcoin_rpc_url`` setting (docs/funding.md, "Chain watchers").

```toml
[funding.watch]
rpc = { ethereum = "http://127.0.0.1:8545" }   # network -> its node's JSON-RPC URL
start_height = { ethereum = 21000000 }         # first block of a fresh watcher (default 0)
poll_s = 2.0                                   # seconds between passes when caught up
```

Why a table of its own: a distributed deployment runs one ``tradewind watcher`` process
per network (the URL on its command line); the embedded exchange is one process, so
the nodes it follows are configuration. Bitcoin's node may instead come from the
``bitcoin_rpc_url`` setting that the watcher command and payouts already read, so
``TRADEWIND_BITCOIN_RPC_URL`` alone makes the embedded demo credit regtest deposits.

Invariants: unknown keys, networks that are not configured, URLs that are not http(s)
and heights that are not whole numbers >= 0 are refused naming the entry; a network
named under ``start_height`` must also have a node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from tradewind.services.funding.networks import NetworkCatalog, NetworkConfigError

_KEYS = frozenset({"rpc", "start_height", "poll_s"})


@dataclass(frozen=True, slots=True)
class WatchTarget:
    network: str
    rpc_url: str
    start_height: int = 0
    """Where a watcher with no stored tip begins: the block the network's deposit
    addresses were first handed out at (a restarted watcher resumes from its tip)."""


@dataclass(frozen=True, slots=True)
class WatchSettings:
    targets: tuple[WatchTarget, ...] = ()
    poll_s: float = 2.0


def parse_watch_settings(
    funding: Mapping[str, object] | None,
    catalog: NetworkCatalog,
    *,
    bitcoin_rpc_url: str | None = None,
) -> WatchSettings:
    table = (funding or {}).get("watch", {})
    if not isinstance(table, Mapping):
        raise NetworkConfigError("funding.watch: must be a table")
    unknown = sorted(set(table) - _KEYS)
    if unknown:
        raise NetworkConfigError(f"funding.watch: unknown key {unknown[0]!r}")
    rpc = _mapping(table.get("rpc", {}), "funding.watch.rpc")
    heights = _mapping(table.get("start_height", {}), "funding.watch.start_height")
    poll = table.get("poll_s", 2.0)
    if isinstance(poll, bool) or not isinstance(poll, int | float) or not 0.05 <= poll <= 600:
        raise NetworkConfigError("funding.watch.poll_s: seconds from 0.05 to 600")
    urls: dict[str, str] = {}
    for name, url in rpc.items():
        if catalog.network(name) is None:
            raise NetworkConfigError(f"funding.watch.rpc.{name}: not a configured network")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise NetworkConfigError(f"funding.watch.rpc.{name}: an http(s) URL")
        urls[name] = url
    bitcoin = next((n for n in catalog.networks if n.kind == "utxo"), None)
    if bitcoin is not None and bitcoin.name not in urls and bitcoin_rpc_url:
        urls[bitcoin.name] = bitcoin_rpc_url
    starts: dict[str, int] = {}
    for name, height in heights.items():
        if name not in urls:
            raise NetworkConfigError(f"funding.watch.start_height.{name}: no node for it in rpc")
        if isinstance(height, bool) or not isinstance(height, int) or height < 0:
            raise NetworkConfigError(f"funding.watch.start_height.{name}: a block number >= 0")
        starts[name] = height
    targets = tuple(WatchTarget(name, url, starts.get(name, 0)) for name, url in urls.items())
    return WatchSettings(targets, float(poll))


def _mapping(value: object, where: str) -> Mapping[str, object]:
    if not isinstance(value, Mapping):
        raise NetworkConfigError(f"{where}: must be a table")
    return {str(k): v for k, v in value.items()}
