"""``tradewind signer`` with Bitcoin sweeps configured, as processes (ADR 0035): it refuses
to start until the BIP 84 deposit account key (``vprv``) is sealed in the token;
``tradewind signer-deposit-key --network bitcoin`` seals it (another account's key is
refused), and the signer then starts, names its P2WPKH hot wallet and serves
``/v1/sweep`` to signed requests only."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from pathlib import Path

import httpx

from tests.integration.hsm.test_signer_process import (
    SECRET,
    TRADEWIND,
    free_port,
    stop,
    wait_listening,
)
from tests.support.softhsm import SoftToken
from tradewind.services.funding.deposit_keys import account_xpub, new_account_key
from tradewind.services.funding.networks import parse_networks
from tradewind.services.funding.signer import SIGNATURE_HEADER, signed_request

COLD = "bcrt1qw508d6qejxtdg4y5r3zarvary0c5xw7kygt080"
ASSET = {"decimals": 8, "confirmations": 2, "min_deposit": "0.0001", "withdrawal_fee": "0.0001"}


def config(tmp: Path, token: SoftToken, port: int, xpub: str, label: str) -> Path:
    path = tmp / "signer.toml"
    path.write_text(
        f"""
data_dir = "{tmp / "data"}"
log_level = "warning"

[funding.networks.bitcoin]
chain = "regtest"
xpub = "{xpub}"

[funding.networks.bitcoin.assets.BTC]
decimals = 8
confirmations = 2
min_deposit = "0.0001"
withdrawal_fee = "0.0001"

[funding.signer]
library = "{token.library}"
token_label = "{token.label}"
secret = "{SECRET}"
port = {port}
keys = {{ bitcoin = "hot-btc-sweeps-{port}" }}

[funding.sweeps.bitcoin]
deposit_key = "{label}"
cold_address = "{COLD}"

[funding.sweeps.bitcoin.assets.BTC]
min_sweep = "0.001"
hot_ceiling = "2"
hot_target = "1"
"""
    )
    return path


def run(args: list[str], token: SoftToken, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOFTHSM2_CONF": str(token.conf), "TRADEWIND_SIGNER_PIN": token.pin}
    return subprocess.run(
        [TRADEWIND, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
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

    env = {
        **os.environ,
        "SOFTHSM2_CONF": str(softhsm_token.conf),
        "TRADEWIND_SIGNER_PIN": softhsm_token.pin,
    }
    proc = subprocess.Popen(
        [TRADEWIND, "signer", "--config", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        seen = []
        for line in proc.stdout:
            seen.append(line)
            if line.startswith("hot wallet on bitcoin: "):
                assert line.split(": ")[1].strip().startswith("bcrt1q")
                break
        else:
            raise AssertionError("".join(seen))
        wait_listening(port)
        payload = {
            "op": "sweep",
            "transfer_id": 999,
            "network": "bitcoin",
            "tx": {},
            "ts": int(time.time() * 1000),
        }
        body, sig = signed_request(SECRET, payload)
        url = f"http://127.0.0.1:{port}/v1/sweep"
        r = httpx.post(url, content=body, headers={SIGNATURE_HEADER: "0" * 64})
        assert (r.status_code, r.json()["code"]) == (401, "forged_request")
        r = httpx.post(url, content=body, headers={SIGNATURE_HEADER: sig})
        assert (r.status_code, r.json()["code"]) == (409, "not_signable")
    finally:
        stop(proc)
