"""``[funding.watch]``: which nodes the embedded exchange follows; bad entries are
refused naming the entry (the config does not load), as the other funding tables."""

from __future__ import annotations

import pytest

from tradewind.services.funding.defaults import DEMO_FUNDING
from tradewind.services.funding.networks import NetworkConfigError, parse_networks
from tradewind.services.funding.watch_config import (
    WatchSettings,
    WatchTarget,
    parse_watch_settings,
)

CATALOG = parse_networks(DEMO_FUNDING)
NODE = "http://127.0.0.1:8545"


def test_nothing_configured_watches_nothing() -> None:
    assert parse_watch_settings(None, CATALOG) == WatchSettings((), 2.0)
    assert parse_watch_settings({"networks": {}}, CATALOG).targets == ()


def test_nodes_heights_and_poll_are_read() -> None:
    watch = {"rpc": {"ethereum": NODE}, "start_height": {"ethereum": 17}, "poll_s": 0.5}
    assert parse_watch_settings({"watch": watch}, CATALOG) == WatchSettings(
        (WatchTarget("ethereum", NODE, 17),), 0.5
    )


def test_bitcoin_rpc_url_setting_watches_the_bitcoin_network_unless_the_table_names_it() -> None:
    btc = "http://u:p@127.0.0.1:18443"
    got = parse_watch_settings(None, CATALOG, bitcoin_rpc_url=btc)
    assert got.targets == (WatchTarget("bitcoin", btc, 0),)
    table = {"watch": {"rpc": {"bitcoin": "http://other:18443"}}}
    got = parse_watch_settings(table, CATALOG, bitcoin_rpc_url=btc)
    assert got.targets == (WatchTarget("bitcoin", "http://other:18443", 0),)


@pytest.mark.parametrize(
    ("watch", "message"),
    [
        ("yes", "funding.watch: must be a table"),
        ({"nodes": {}}, "funding.watch: unknown key 'nodes'"),
        ({"rpc": ["x"]}, "funding.watch.rpc: must be a table"),
        ({"rpc": {"dogecoin": NODE}}, "funding.watch.rpc.dogecoin: not a configured network"),
        ({"rpc": {"ethereum": "ftp://x"}}, "funding.watch.rpc.ethereum: an http(s) URL"),
        ({"rpc": {"ethereum": 5}}, "funding.watch.rpc.ethereum: an http(s) URL"),
        (
            {"start_height": {"ethereum": 3}},
            "funding.watch.start_height.ethereum: no node for it in rpc",
        ),
        (
            {"rpc": {"ethereum": NODE}, "start_height": {"ethereum": -1}},
            "funding.watch.start_height.ethereum: a block number >= 0",
        ),
        (
            {"rpc": {"ethereum": NODE}, "start_height": {"ethereum": True}},
            "funding.watch.start_height.ethereum: a block number >= 0",
        ),
        ({"poll_s": 0}, "funding.watch.poll_s: seconds from 0.05 to 600"),
        ({"poll_s": "2"}, "funding.watch.poll_s: seconds from 0.05 to 600"),
    ],
)
def test_bad_entries_are_refused_naming_them(watch: object, message: str) -> None:
    with pytest.raises(NetworkConfigError) as err:
        parse_watch_settings({"watch": watch}, CATALOG)
    assert str(err.value) == message
