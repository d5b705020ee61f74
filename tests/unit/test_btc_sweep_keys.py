"""Bitcoin deposit keys and sweep settings (ADR 0035): the BIP 84 account key sealed in
the signer derives exactly the deposit addresses the API hands out from its vpub, signs
only for them, and is refused when it is not the configured account; ``[funding.sweeps.
bitcoin]`` takes the EVM keys, with a cold address checked for the network's chain."""

from __future__ import annotations

from typing import Any

import coincurve
import pytest

from tradewind.services.funding.deposit_keys import (
    DepositKeyError,
    DepositKeyring,
    account_xpub,
    new_account_key,
)
from tradewind.services.funding.derivation import AddressDeriver
from tradewind.services.funding.networks import Network, NetworkConfigError, parse_networks
from tradewind.services.funding.sweep_config import parse_sweep_settings

ASSET = {"decimals": 8, "confirmations": 2, "min_deposit": "0.0001", "withdrawal_fee": "0.0001"}
REGTEST_COLD = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"


def funding(xpub: str | None = None, sweeps: dict[str, Any] | None = None) -> dict[str, Any]:
    net: dict[str, Any] = {"chain": "regtest", "assets": {"BTC": ASSET}}
    if xpub is not None:
        net["xpub"] = xpub
    return {"networks": {"bitcoin": net}, "sweeps": sweeps or {}}


def network(xpub: str | None = None) -> Network:
    net = parse_networks(funding(xpub)).network("bitcoin")
    assert net is not None
    return net


def test_the_sealed_key_derives_the_deposit_addresses_and_signs_only_for_them() -> None:
    xprv = new_account_key(network())
    assert xprv.startswith("vprv")
    net = network(account_xpub(xprv, network()))
    keyring = DepositKeyring(net, xprv)
    public = AddressDeriver(net)
    for index in (0, 7, 123_456):
        address = public.derive(index).address
        assert address.startswith("bcrt1q")
        assert keyring.address_at(f"0/{index}") == address
    digest = bytes(range(32))
    address = public.derive(7).address
    sig = keyring.sign_digest("0/7", address, digest)
    der = coincurve.ecdsa.cdata_to_der(
        coincurve.ecdsa.deserialize_compact(sig.r.to_bytes(32, "big") + sig.s.to_bytes(32, "big"))
    )
    key = coincurve.PublicKey(keyring.public_key_at("0/7"))
    assert key.verify(der, digest, hasher=None)
    assert sig.s <= coincurve.utils.GROUP_ORDER_INT // 2  # low S
    with pytest.raises(DepositKeyError):
        keyring.sign_digest("0/8", address, digest)


def test_a_key_of_another_account_or_a_public_one_is_refused() -> None:
    xprv = new_account_key(network())
    net = network(account_xpub(xprv, network()))
    with pytest.raises(DepositKeyError, match="not the account"):
        DepositKeyring(net, new_account_key(network()))
    with pytest.raises(DepositKeyError, match="not private"):
        DepositKeyring(net, account_xpub(xprv, network()))


def test_bitcoin_sweep_settings_take_the_evm_keys_and_check_the_cold_address() -> None:
    f = funding(
        sweeps={
            "bitcoin": {
                "cold_address": REGTEST_COLD.upper(),
                "assets": {"BTC": {"min_sweep": "0.001", "hot_ceiling": "2", "hot_target": "1"}},
            }
        }
    )
    conf = parse_sweep_settings(f, parse_networks(f)).networks["bitcoin"]
    assert (conf.deposit_key, conf.cold_address) == ("deposit-bitcoin", REGTEST_COLD)
    assert conf.assets["BTC"].hot_ceiling == 2 * 10**8
    assert conf.assets["BTC"].min_sweep == 100_000
    mainnet = {"bitcoin": {"cold_address": "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"}}
    f = funding(sweeps=mainnet)
    with pytest.raises(NetworkConfigError, match=r"funding\.sweeps\.bitcoin\.cold_address"):
        parse_sweep_settings(f, parse_networks(f))


def test_the_payout_loop_runs_bitcoin_sweeps_over_the_payouts_node(tmp_path: Any) -> None:
    """``tradewind withdrawals`` (and the embedded payout task) gets a Bitcoin sweeper from
    ``[funding.sweeps.bitcoin]`` and the payouts' ``rpc``, and payouts then keep off the
    coins of unfinished custody transfers."""
    from types import SimpleNamespace
    from typing import cast

    from tradewind.adapters.chain.bitcoind_sweeps import BitcoindSweepChain
    from tradewind.adapters.sql import Database
    from tradewind.adapters.sql.sweeps import SqlSweepStore
    from tradewind.runtime.config import load_settings
    from tradewind.runtime.sweeps import build_sweeper
    from tradewind.runtime.withdrawals import PayoutLoop, build_processor
    from tradewind.services.funding.withdrawal_config import parse_withdrawal_policy

    withdrawals = {
        "signer_url": "http://127.0.0.1:8620",
        "signer_secret": "x" * 40,
        "rpc": {"bitcoin": "http://u:p@127.0.0.1:18443"},
    }
    policy = parse_withdrawal_policy({"withdrawals": withdrawals})
    sweeps = {"bitcoin": {"cold_address": REGTEST_COLD, "assets": {"BTC": {"min_sweep": "0.001"}}}}
    f = funding(sweeps=sweeps)
    service = SimpleNamespace(
        policy=policy, catalog=parse_networks(f), now_ms=lambda: 0, store=None
    )
    settings = load_settings(None, environ={}, overrides={"data_dir": tmp_path, "funding": f})
    db = Database.from_url(f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    sweeper = build_sweeper(settings, db, cast(Any, service))
    assert sweeper is not None
    assert isinstance(sweeper.chains["bitcoin"], BitcoindSweepChain)
    processor = build_processor(cast(Any, service), settings)
    assert processor is not None and processor.reservations is None
    PayoutLoop(processor, 2.0, sweeper)
    assert isinstance(processor.reservations, SqlSweepStore)
