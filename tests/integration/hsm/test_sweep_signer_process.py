"""``tradewind signer`` with sweeps configured, as processes (ADR 0028): it refuses to
start until the network's deposit account key is sealed in the token;
``tradewind signer-deposit-key`` seals it (a key that is not the configured xpub's
account is refused: tests/unit/test_sweep_config.py); then the signer serves
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
    start,
    stop,
    wait_listening,
)
from tests.support.softhsm import SoftToken
from tradewind.services.funding.deposit_keys import account_xpub, new_account_key
from tradewind.services.funding.signer import SIGNATURE_HEADER, signed_request

COLD = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"


def config(tmp: Path, token: SoftToken, port: int, xpub: str, label: str) -> Path:
    path = tmp / "signer.toml"
    path.write_text(
        f"""
data_dir = "{tmp / "data"}"
log_level = "warning"

[funding.networks.ethereum]
chain_id = 1337
xpub = "{xpub}"

[funding.networks.ethereum.assets.ETH]
decimals = 8
chain_decimals = 18
confirmations = 2
min_deposit = "0.001"
withdrawal_fee = "0.002"

[funding.signer]
library = "{token.library}"
token_label = "{token.label}"
secret = "{SECRET}"
port = {port}
keys = {{ ethereum = "hot-sweeps-{port}" }}

[funding.sweeps.ethereum]
deposit_key = "{label}"
cold_address = "{COLD}"

[funding.sweeps.ethereum.assets.ETH]
min_sweep = "0.01"
"""
    )
    return path


def run(args: list[str], token: SoftToken, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SOFTHSM2_CONF": str(token.conf), "TRADEWIND_SIGNER_PIN": token.pin}
    return subprocess.run(
        [TRADEWIND, *args], input=stdin, capture_output=True, text=True, env=env, timeout=60
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
        url = f"http://127.0.0.1:{port}/v1/sweep"
        payload = {
            "op": "sweep",
            "transfer_id": 999,
            "network": "ethereum",
            "tx": {},
            "ts": int(time.time() * 1000),
        }
        body, sig = signed_request(SECRET, payload)
        r = httpx.post(url, content=body, headers={SIGNATURE_HEADER: "0" * 64})
        assert (r.status_code, r.json()["code"]) == (401, "forged_request")
        r = httpx.post(url, content=body, headers={SIGNATURE_HEADER: sig})
        assert (r.status_code, r.json()["code"]) == (409, "not_signable")
    finally:
        stop(proc)
