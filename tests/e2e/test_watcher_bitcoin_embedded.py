"""End to end: the embedded exchange (``tradewind serve``, one process, SQLite) watches
Bitcoin itself when ``TRADEWIND_BITCOIN_RPC_URL`` names a node: a user's deposit to
their address, paid in a real signed transaction on the regtest node simulator, is
credited after the demo's two confirmations with one email; the process killed with
SIGKILL and restarted resumes from its stored height and credits nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_distributed import Client, eventually, onboard
from tests.support.bitcoind_sim import BitcoindSim, SimWallet
from tests.support.server import Server, free_port

MINER = "bcrt1q0xcqpzrky6eff2g52qdye53xkk9jxkvrl4xfg5"
EMAIL = "btc-embedded@example.com"


@pytest.fixture
def node() -> Iterator[BitcoindSim]:
    with BitcoindSim(user="emb", password="rpc-pass-emb").running() as sim:
        yield sim


def btc_available(client: Client) -> Decimal:
    for b in client.ok("GET", "/api/v1/balances"):
        if b["asset"] == "BTC":
            return Decimal(b["available"])
    return Decimal(0)


def deposit_notices(url: str) -> list[str]:
    with httpx.Client(base_url=url, timeout=5.0) as http:
        r = http.get("/dev/mail/messages", params={"to": EMAIL})
        assert r.status_code == 200, r.text
        return [m["subject"] for m in r.json() if "deposit" in m["subject"]]


def test_the_embedded_exchange_credits_a_bitcoin_deposit_once_across_a_kill(
    tmp_path: Path, node: BitcoindSim
) -> None:
    env = {
        "TRADEWIND_BITCOIN_RPC_URL": node.url,
        "TRADEWIND_BITCOIN_RPC_USER": "emb",
        "TRADEWIND_BITCOIN_RPC_PASSWORD": "rpc-pass-emb",
        "TRADEWIND_RATE_LIMITS": "off",
    }
    wallet = SimWallet(node, b"\x0c" * 32)
    wallet.fund(1)
    server = Server(tmp_path / "data", free_port())
    server.start(**env)
    try:
        user = onboard([server.url], 0, EMAIL, "USDT", "10")
        address = user.ok("GET", "/api/v1/deposits/address?asset=BTC&network=bitcoin")
        txid = wallet.send([(address["address"], 25_000_000)])  # 0.25 BTC
        node.rpc("generatetoaddress", 1, MINER)
        assert btc_available(user) == 0, "one confirmation is not enough"
        node.rpc("generatetoaddress", 1, MINER)  # the demo's two confirmations
        seen = eventually(lambda: btc_available(user), lambda v: v > 0, timeout_s=30)
        assert seen == Decimal("0.25"), server.log.read_text()[-3000:]
        notices = eventually(lambda: deposit_notices(server.url), bool, timeout_s=10)
        assert len(notices) == 1 and notices[0].endswith("deposit of 0.25000000 BTC credited")

        server.kill()  # SIGKILL: the watcher's table and the journal are all that remain
        server.start(**env)
        node.rpc("generatetoaddress", 3, MINER)
        later = eventually(lambda: btc_available(user), lambda v: v != seen, timeout_s=4)
        assert later == Decimal("0.25"), "credited once"
        assert len(deposit_notices(server.url)) == 1
        rows = user.ok("GET", "/api/v1/deposits?asset=BTC")["items"]
        assert [(d["txid"], d["status"], d["amount"]) for d in rows] == [
            (txid, "credited", "0.25000000")
        ]
    finally:
        server.stop()
