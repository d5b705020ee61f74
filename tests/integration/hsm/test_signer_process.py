"""``tradewind signer`` as a process: it opens the SoftHSM2 token from the config, creates
the hot-wallet key there on first start (and finds it again on the next), prints its
address, and answers on loopback only HMAC-signed requests."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.softhsm import SoftToken
from tradewind.adapters.signer_http import HttpSignerClient
from tradewind.services.funding.signer import SIGNATURE_HEADER, signed_request

SECRET = "p" * 40
TRADEWIND = str(Path(sys.executable).with_name("tradewind"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def config(tmp: Path, token: SoftToken, port: int) -> Path:
    path = tmp / "signer.toml"
    path.write_text(
        f"""
data_dir = "{tmp / "data"}"
log_level = "warning"

[funding.networks.ethereum]
chain_id = 1337

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
keys = {{ ethereum = "hot-process-{port}" }}
"""
    )
    return path


def start(conf: Path, token: SoftToken) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "SOFTHSM2_CONF": str(token.conf), "TRADEWIND_SIGNER_PIN": token.pin}
    proc = subprocess.Popen(
        [TRADEWIND, "signer", "--config", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # log lines first (a key created), then the address
        if line.startswith("hot wallet on ethereum: 0x"):
            return proc, line.split(": ", 1)[1].strip()
        seen.append(line)
        assert len(seen) < 20, seen
    raise AssertionError(f"the signer exited: {seen}")


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("the signer did not listen")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_the_signer_process_keeps_its_key_in_the_token_and_checks_requests(
    tmp_path: Path, softhsm_token: SoftToken
) -> None:
    port = free_port()
    conf = config(tmp_path, softhsm_token, port)
    proc, address = start(conf, softhsm_token)
    try:
        wait_listening(port)
        client = HttpSignerClient(
            f"http://127.0.0.1:{port}", SECRET, lambda: int(time.time() * 1000)
        )
        assert asyncio.run(client.address("ethereum")) == address
        body, _ = signed_request("q" * 40, {"op": "address", "network": "ethereum", "ts": 1})
        r = httpx.post(
            f"http://127.0.0.1:{port}/v1/address", content=body, headers={SIGNATURE_HEADER: "0"}
        )
        assert (r.status_code, r.json()["code"]) == (401, "forged_request")
    finally:
        stop(proc)
    again, address_again = start(conf, softhsm_token)  # the key is found, not made anew
    stop(again)
    assert address_again == address
