"""``tradewind signer`` with Bitcoin sweeps configured, as processes (ADR 0035): it refuses
to start until the BIP 84 deposit account key (``vprv``) is sealed in the token;
``tradewind signer-deposit-key --network bitcoin`` seals it (another account's key is
refused), and the signer then starts, names its P2WPKH hot wallet and serves
``/v1/sweep`` to signed requests only."""

from __future__ import annotations

import uuid
from pathlib import Path

from tests.support.signer_process import (
    assert_sweeps_need_a_signed_request,
    free_port,
    run,
    start,
    stop,
    wait_listening,
    write_config,
)
from tests.support.softhsm import SoftToken
from tradewind.services.funding.deposit_keys import account_xpub, new_account_key
from tradewind.services.funding.networks import parse_networks

COLD = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
ASSET = {"decimals": 8, "confirmations": 2, "min_deposit": "0.0001", "withdrawal_fee": "0.0001"}


def config(tmp: Path, token: SoftToken, port: int, xpub: str, label: str) -> Path:
    return write_config(
        tmp,
        token,
        port,
        f'bitcoin = "hot-btc-sweeps-{port}"',
        f"""
[funding.networks.bitcoin]
chain = "regtest"
xpub = "{xpub}"

[funding.networks.bitcoin.assets.BTC]
decimals = 8
confirmations = 2
min_deposit = "0.0001"
withdrawal_fee = "0.0001"

[funding.sweeps.bitcoin]
deposit_key = "{label}"
cold_address = "{COLD}"

[funding.sweeps.bitcoin.assets.BTC]
min_sweep = "0.001"
hot_ceiling = "2"
hot_target = "1"
""",
    )


def test_the_signer_needs_the_sealed_bitcoin_deposit_key_and_serves_sweeps(
    tmp_path: Path, softhsm_token: SoftToken
) -> None:
    net = parse_networks({"networks": {"bitcoin": {"chain": "regtest", "assets": {"BTC": ASSET}}}})
    bare = net.network("bitcoin")
    assert bare is not None
    xprv = new_account_key(bare)
    xpub = account_xpub(xprv, bare)
    port = free_port()
    conf = config(tmp_path, softhsm_token, port, xpub, f"dep-btc-{uuid.uuid4().hex[:8]}")

    refused = run(["signer", "--config", str(conf)], softhsm_token)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "no deposit key" in refused.stderr
    wrong = run(
        ["signer-deposit-key", "--network", "bitcoin", "--config", str(conf)],
        softhsm_token,
        stdin=new_account_key(bare) + "\n",
    )
    assert wrong.returncode != 0 and "not the account" in wrong.stderr, wrong.stderr
    sealed = run(
        ["signer-deposit-key", "--network", "bitcoin", "--config", str(conf)],
        softhsm_token,
        stdin=xprv + "\n",
    )
    assert sealed.returncode == 0, sealed.stderr
    assert xpub in sealed.stdout

    proc, _hot = start(conf, softhsm_token, "bitcoin", "bcrt1q")  # a P2WPKH hot wallet
    try:
        wait_listening(port)
        assert_sweeps_need_a_signed_request(port, "bitcoin")
    finally:
        stop(proc)
