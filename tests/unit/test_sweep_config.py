"""``[funding.sweeps]`` (services/funding/sweep_config.py) and the deposit keyring
(services/funding/deposit_keys.py): bad settings are refused naming the entry; a sealed
key that is not the configured xpub's account is refused; child keys sign for their
own address only."""

from __future__ import annotations

from typing import Any

import coincurve
import pytest

from tradewind.services.funding.addresses import evm_address
from tradewind.services.funding.deposit_keys import (
    DepositKeyError,
    DepositKeyring,
    account_xpub,
    new_account_key,
)
from tradewind.services.funding.derivation import AddressDeriver
from tradewind.services.funding.networks import NetworkConfigError, parse_networks
from tradewind.services.funding.sweep_config import parse_sweep_settings

USDT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
COLD = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def funding(sweeps: dict[str, Any], xpub: str | None = None) -> dict[str, Any]:
    net: dict[str, Any] = {
        "chain_id": 1,
        "assets": {
            "ETH": {
                "decimals": 8,
                "chain_decimals": 18,
                "confirmations": 12,
                "min_deposit": "0.01",
                "withdrawal_fee": "0.002",
            },
            "USDT": {
                "decimals": 6,
                "contract": USDT,
                "confirmations": 12,
                "min_deposit": "1",
                "withdrawal_fee": "5",
            },
        },
    }
    if xpub is not None:
        net["xpub"] = xpub
    return {"networks": {"ethereum": net}, "sweeps": sweeps}


def parse(sweeps: dict[str, Any]) -> Any:
    f = funding(sweeps)
    return parse_sweep_settings(f, parse_networks(f))


def test_settings_are_read_exactly_in_the_assets_decimals() -> None:
    s = parse(
        {
            "ethereum": {
                "cold_address": COLD.lower(),
                "assets": {
                    "ETH": {"min_sweep": "0.01", "hot_ceiling": "50", "hot_target": "20.5"},
                    "USDT": {"min_sweep": "10"},
                },
            }
        }
    )
    eth = s.networks["ethereum"]
    assert eth.cold_address == COLD  # EIP-55 checksummed
    assert eth.deposit_key == "deposit-ethereum"
    assert eth.assets["ETH"].min_sweep == 1_000_000
    assert (eth.assets["ETH"].hot_ceiling, eth.assets["ETH"].hot_target) == (
        5_000_000_000,
        2_050_000_000,
    )
    assert eth.assets["USDT"].min_sweep == 10_000_000 and eth.assets["USDT"].hot_ceiling is None


@pytest.mark.parametrize(
    ("sweeps", "where"),
    [
        ({"bsc": {}}, "funding.sweeps.bsc: no such network"),
        ({"ethereum": {"colder": "x"}}, "funding.sweeps.ethereum: unknown key 'colder'"),
        ({"ethereum": {"cold_address": "0x123"}}, "funding.sweeps.ethereum.cold_address"),
        (
            {"ethereum": {"assets": {"BTC": {}}}},
            "funding.sweeps.ethereum.assets.BTC: 'BTC' is not on ethereum",
        ),
        (
            {"ethereum": {"assets": {"ETH": {"min_sweep": "0.000000001"}}}},
            "funding.sweeps.ethereum.assets.ETH.min_sweep",
        ),
        (
            {"ethereum": {"cold_address": COLD, "assets": {"ETH": {"hot_ceiling": "5"}}}},
            "hot_ceiling and hot_target go together",
        ),
        (
            {
                "ethereum": {
                    "cold_address": COLD,
                    "assets": {"ETH": {"hot_ceiling": "5", "hot_target": "6"}},
                }
            },
            "hot_target is above hot_ceiling",
        ),
        (
            {"ethereum": {"assets": {"ETH": {"hot_ceiling": "5", "hot_target": "1"}}}},
            "a hot_ceiling needs funding.sweeps.ethereum.cold_address",
        ),
    ],
)
def test_bad_settings_are_refused_naming_the_entry(sweeps: dict[str, Any], where: str) -> None:
    with pytest.raises(NetworkConfigError, match=where.replace(".", r"\.")):
        parse(sweeps)


def test_a_sealed_key_must_be_the_configured_xpubs_account() -> None:
    xprv = new_account_key()
    f = funding({}, xpub=account_xpub(xprv))
    net = parse_networks(f).network("ethereum")
    assert net is not None
    ring = DepositKeyring(net, xprv)
    assert ring.address_at("0/42") == AddressDeriver(net).derive(42).address
    with pytest.raises(DepositKeyError, match="not the account of the configured xpub"):
        DepositKeyring(net, new_account_key())
    with pytest.raises(DepositKeyError, match="not private"):
        DepositKeyring(net, account_xpub(xprv))
    with pytest.raises(DepositKeyError, match="invalid"):
        DepositKeyring(net, "xprv-nonsense")


def test_a_child_key_signs_for_its_own_address_only() -> None:
    xprv = new_account_key()
    net = parse_networks(funding({}, xpub=account_xpub(xprv))).network("ethereum")
    assert net is not None
    ring = DepositKeyring(net, xprv)
    mine, other = ring.address_at("0/7"), ring.address_at("0/8")
    digest = bytes(range(32))
    sig = ring.sign_digest("0/7", mine, digest)
    raw = sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big") + bytes([sig.recovery_id])
    recovered = coincurve.PublicKey.from_signature_and_message(raw, digest, hasher=None)
    assert evm_address(recovered.format(compressed=False)) == mine
    with pytest.raises(DepositKeyError):
        ring.sign_digest("0/7", other, digest)
    for bad in ("1/7", "0/x", "0/2147483648", "7"):
        with pytest.raises(DepositKeyError):
            ring.address_at(bad)
