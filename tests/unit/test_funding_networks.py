"""Assets on networks and deposit-address derivation: the rules a deposit or withdrawal
will be judged by are read exactly from the config, and a bad config (or a private key
where an xpub belongs) stops the process at start-up with the entry named."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from bip_utils import Bip39SeedGenerator, Bip44, Bip44Changes, Bip44Coins

from tradewind.runtime.config import ConfigError, load_settings
from tradewind.runtime.funding import network_catalog
from tradewind.services.funding.defaults import (
    DEMO_FUNDING,
    TEST_MNEMONIC_XPUB_EVM,
    demo_networks,
)
from tradewind.services.funding.derivation import AddressDeriver, DerivationError
from tradewind.services.funding.networks import (
    Network,
    NetworkConfigError,
    parse_amount,
    parse_networks,
)

TEST_MNEMONIC = " ".join(["abandon"] * 11 + ["about"])
BIP84_ZPUB = (
    "zpub6rFR7y4Q2AijBEqTUquhVz398htDFrtymD9xYYfG1m4wAcvPhXNfE3EfH1r1ADqtfSdVCToUG868RvUUkgD"
    "Kf31mGDtKsAYz2oz2AGutZYs"
)


def demo_config() -> dict[str, Any]:
    return copy.deepcopy(dict(DEMO_FUNDING))  # type: ignore[arg-type]


def test_demo_catalog_has_the_rules_per_asset_and_network() -> None:
    catalog = demo_networks()
    assert [n.name for n in catalog.networks] == ["bitcoin", "ethereum", "bsc"]
    btc = catalog.asset_on("BTC", "bitcoin")
    assert btc is not None and btc.native and btc.min_deposit == 10_000
    assert btc.withdrawal_fee == 20_000 and btc.confirmations == 2
    usdt_bsc = catalog.asset_on("USDT", "bsc")
    assert usdt_bsc is not None
    assert (usdt_bsc.decimals, usdt_bsc.chain_decimals) == (6, 18)
    assert usdt_bsc.deposit_enabled and not usdt_bsc.withdrawal_enabled
    assert catalog.networks_of("USDT") == ("ethereum", "bsc")
    assert catalog.asset_on("BTC", "ethereum") is None


@pytest.mark.parametrize(
    ("text", "decimals", "minor"),
    [("0", 8, 0), ("1", 6, 1_000_000), ("0.0001", 8, 10_000), ("12.5", 2, 1250)],
)
def test_amounts_convert_exactly(text: str, decimals: int, minor: int) -> None:
    assert parse_amount(text, decimals) == minor


@pytest.mark.parametrize("text", ["0.000000001", "-1", "1e3", "1.", ".5", "01", "abc"])
def test_amounts_that_are_not_exact_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_amount(text, 8)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda c: c["networks"].update(dogecoin={}), "funding.networks.dogecoin"),
        (
            lambda c: c["networks"]["bitcoin"].update(chain="signet"),
            "funding.networks.bitcoin.chain",
        ),
        (
            lambda c: c["networks"]["ethereum"]["assets"]["USDT"].update(
                contract="0x5aaeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
            ),
            "funding.networks.ethereum.assets.USDT.contract",
        ),
        (
            lambda c: c["networks"]["bitcoin"]["assets"]["BTC"].update(min_deposit="0.000000001"),
            "funding.networks.bitcoin.assets.BTC.min_deposit",
        ),
        (
            lambda c: c["networks"]["bitcoin"]["assets"]["BTC"].update(confirmations=0),
            "funding.networks.bitcoin.assets.BTC.confirmations",
        ),
        (
            lambda c: c["networks"]["bitcoin"]["assets"]["BTC"].update(
                contract="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
            ),
            "funding.networks.bitcoin.assets.BTC.contract",
        ),
        (
            lambda c: c["networks"]["ethereum"]["assets"]["ETH"].update(fee="1"),
            "funding.networks.ethereum.assets.ETH",
        ),
        (
            lambda c: c["networks"]["ethereum"].pop("chain_id"),
            "funding.networks.ethereum",
        ),
        (
            lambda c: c["networks"]["bsc"]["assets"]["USDT"].update(chain_decimals=2),
            "funding.networks.bsc.assets.USDT.chain_decimals",
        ),
    ],
)
def test_a_bad_network_config_names_the_entry(change: Any, named: str) -> None:
    config = demo_config()
    change(config)
    with pytest.raises(NetworkConfigError) as exc:
        parse_networks(config)
    assert named in str(exc.value)


def test_bip84_derivation_matches_the_published_vector() -> None:
    # BIP 84: m/84'/0'/0'/0/0 of the test mnemonic
    network = Network("bitcoin", "utxo", "mainnet", None, BIP84_ZPUB, ())
    derived = AddressDeriver(network).derive(0)
    assert derived.address == "bc1qcr8te4kr609gcawutmrza0j4xv80jy8z306fyu"
    assert derived.path == "0/0"
    assert AddressDeriver(network).derive(1).address == (
        "bc1qnjg0jd8228aq7egyzacy8cys3knf9xvrerkf9g"
    )


def test_evm_derivation_matches_the_private_key_path() -> None:
    seed = Bip39SeedGenerator(TEST_MNEMONIC).Generate()
    account = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM).Purpose().Coin().Account(0)
    network = Network("ethereum", "evm", "mainnet", 1, TEST_MNEMONIC_XPUB_EVM, ())
    for index in (0, 7, 2**31 - 1):
        expected = (
            account.Change(Bip44Changes.CHAIN_EXT).AddressIndex(index).PublicKey().ToAddress()
        )
        assert AddressDeriver(network).derive(index).address == expected


def test_a_private_extended_key_is_refused() -> None:
    seed = Bip39SeedGenerator(TEST_MNEMONIC).Generate()
    xprv = (
        Bip44.FromSeed(seed, Bip44Coins.ETHEREUM)
        .Purpose()
        .Coin()
        .Account(0)
        .PrivateKey()
        .ToExtended()
    )
    with pytest.raises(DerivationError, match="private extended key"):
        AddressDeriver(Network("ethereum", "evm", "mainnet", 1, xprv, ()))


def test_garbage_and_out_of_range_indexes_are_refused() -> None:
    with pytest.raises(DerivationError):
        AddressDeriver(Network("ethereum", "evm", "mainnet", 1, "xpubnonsense", ()))
    deriver = AddressDeriver(Network("ethereum", "evm", "mainnet", 1, TEST_MNEMONIC_XPUB_EVM, ()))
    with pytest.raises(DerivationError):
        deriver.derive(2**31)


def write_config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "tradewind.toml"
    path.write_text(body)
    return path


NETWORK_TOML = """
port = 8123

[funding.networks.ethereum]
chain_id = 11155111
xpub = "{xpub}"

[funding.networks.ethereum.assets.ETH]
decimals = 8
chain_decimals = 18
confirmations = 6
min_deposit = "0.01"
withdrawal_fee = "0.001"
deposit_enabled = false
"""


def test_the_config_file_sets_the_networks(tmp_path: Path) -> None:
    path = write_config(tmp_path, NETWORK_TOML.format(xpub=TEST_MNEMONIC_XPUB_EVM))
    settings = load_settings(path, environ={})
    catalog = network_catalog(settings)
    assert catalog is not None
    eth = catalog.asset_on("ETH", "ethereum")
    assert eth is not None
    assert (eth.min_deposit, eth.withdrawal_fee, eth.confirmations) == (1_000_000, 100_000, 6)
    assert not eth.deposit_enabled and eth.withdrawal_enabled
    assert catalog.network("bitcoin") is None


def test_no_networks_outside_demo_mode_and_the_test_networks_in_it(tmp_path: Path) -> None:
    assert network_catalog(load_settings(None, environ={})) is None
    demo = network_catalog(load_settings(None, environ={}, overrides={"demo": True}))
    assert demo is not None and demo.network("bitcoin") is not None


def test_a_private_key_in_the_config_stops_start_up(tmp_path: Path) -> None:
    seed = Bip39SeedGenerator(TEST_MNEMONIC).Generate()
    xprv = (
        Bip44.FromSeed(seed, Bip44Coins.ETHEREUM)
        .Purpose()
        .Coin()
        .Account(0)
        .PrivateKey()
        .ToExtended()
    )
    path = write_config(tmp_path, NETWORK_TOML.format(xpub=xprv))
    with pytest.raises(ConfigError) as exc:
        load_settings(path, environ={})
    assert "private extended key" in str(exc.value)
    assert xprv not in str(exc.value)


def test_a_bad_funding_table_is_a_config_error(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, NETWORK_TOML.format(xpub=TEST_MNEMONIC_XPUB_EVM).replace("= 6", "= -1")
    )
    with pytest.raises(ConfigError, match="confirmations"):
        load_settings(path, environ={})
    with pytest.raises(ConfigError, match="funding"):
        load_settings(None, environ={"TRADEWIND_FUNDING": "x"})
