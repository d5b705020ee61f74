"""``tradewind signer`` with sweeps configured, as processes (ADR 0028): it refuses to
start until the network's deposit account key is sealed in the token;
``tradewind signer-deposit-key`` seals it (a key that is not the configured xpub's
account is refused: tests/unit/test_sweep_config.py); then the signer serves
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

COLD = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def config(tmp: Path, token: SoftToken, port: int, xpub: str, label: str) -> Path:
    return write_config(
        tmp,
        token,
        port,
        f'ethereum = "hot-sweeps-{port}"',
        f"""
[funding.networks.ethereum]
chain_id = 1337
xpub = "{xpub}"

[funding.networks.ethereum.assets.ETH]
decimals = 8
chain_decimals = 18
confirmations = 2
min_deposit = "0.001"
withdrawal_fee = "0.002"

[funding.sweeps.ethereum]
deposit_key = "{label}"
cold_address = "{COLD}"

[funding.sweeps.ethereum.assets.ETH]
min_sweep = "0.01"
""",
    )


def test_the_signer_needs_the_sealed_deposit_key_and_serves_sweeps(
    tmp_path: Path, softhsm_token: SoftToken
) -> None:
    xprv = new_account_key()
    port = free_port()
    conf = config(tmp_path, softhsm_token, port, account_xpub(xprv), f"dep-{uuid.uuid4().hex[:8]}")

    refused = run(["signer", "--config", str(conf)], softhsm_token)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "no deposit key" in refused.stderr

    sealed = run(
        ["signer-deposit-key", "--network", "ethereum", "--config", str(conf)],
        softhsm_token,
        stdin=xprv + "\n",
    )
    assert sealed.returncode == 0, sealed.stderr
    assert account_xpub(xprv) in sealed.stdout
    proc, _hot = start(conf, softhsm_token)
    try:
        wait_listening(port)
        assert_sweeps_need_a_signed_request(port, "ethereum")
    finally:
        stop(proc)
