"""``tradewind signer`` as a process: it opens the SoftHSM2 token from the config, creates
the hot-wallet key there on first start (and finds it again on the next), prints its
address, and answers on loopback only HMAC-signed requests."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx

from tests.support.signer_process import (
    SECRET,
    free_port,
    start,
    stop,
    wait_listening,
    write_config,
)
from tests.support.softhsm import SoftToken
from tradewind.adapters.signer_http import HttpSignerClient
from tradewind.services.funding.signer import SIGNATURE_HEADER, signed_request


def config(tmp: Path, token: SoftToken, port: int) -> Path:
    return write_config(
        tmp,
        token,
        port,
        f'ethereum = "hot-process-{port}"',
        """
[funding.networks.ethereum]
chain_id = 1337

[funding.networks.ethereum.assets.ETH]
decimals = 8
chain_decimals = 18
confirmations = 2
min_deposit = "0.001"
withdrawal_fee = "0.002"
""",
    )


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
