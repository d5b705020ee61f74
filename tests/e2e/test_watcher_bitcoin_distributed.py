"""End to end: ``tradewind watcher --network bitcoin`` as a real process of a distributed
deployment (core, projector, two API replicas on PostgreSQL, Redis and RabbitMQ), reading
the regtest node simulator over JSON-RPC with the credentials from its settings.

A user asks a replica for their Bitcoin deposit address, a wallet pays it in a real
signed transaction, and once the demo's two confirmations are mined the user's balance
shows the deposit; the user gets one email saying so; the watcher restarted later, on the
same tables, credits nothing twice."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_distributed import Client, Deployment, eventually, onboard
from tests.support.bitcoind_sim import BitcoindSim, SimWallet
from tests.support.distributed import Process
from tests.support.mail import last_mail

MINER = "bcrt1q0xcqpzrky6eff2g52qdye53xkk9jxkvrl4xfg5"
RUNNING = "Tradewind chain watcher (bitcoin) running"


@pytest.fixture
def node() -> Iterator[BitcoindSim]:
    with BitcoindSim(user="e2e", password="rpc-pass-e2e").running() as sim:
        yield sim


@pytest.fixture
def deployment(
    tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str, node: BitcoindSim
) -> Iterator[Deployment]:
    d = Deployment(tmp_path, pg_url, redis_url, amqp_url)
    env = {
        **d.core.env,
        "TRADEWIND_DATA_DIR": str(tmp_path / "w"),
        "TRADEWIND_BITCOIN_RPC_URL": node.url,
        "TRADEWIND_BITCOIN_RPC_USER": "e2e",
        "TRADEWIND_BITCOIN_RPC_PASSWORD": "rpc-pass-e2e",
    }
    d.watcher = Process(  # type: ignore[attr-defined]
        "watcher", ["watcher", "--network", "bitcoin", "--poll", "0.2"], env, tmp_path
    )
    try:
        yield d
    finally:
        d.stop(d.watcher)  # type: ignore[attr-defined]
        d.cleanup()


def btc_available(client: Client) -> Decimal:
    for b in client.ok("GET", "/api/v1/balances"):
        if b["asset"] == "BTC":
            return Decimal(b["available"])
    return Decimal(0)


def test_a_bitcoin_deposit_is_credited_by_the_watcher_process(
    deployment: Deployment, node: BitcoindSim
) -> None:
    d = deployment
    watcher: Process = d.watcher  # type: ignore[attr-defined]
    wallet = SimWallet(node, b"\x0b" * 32)
    wallet.fund(1)
    d.start()
    watcher.start(lambda: watcher.printed(RUNNING))

    user = onboard(d.urls, 0, "btc-e2e@example.com", "USDT", "10")
    address = user.ok("GET", "/api/v1/deposits/address?asset=BTC&network=bitcoin", via=1)
    assert address["address"].startswith("bcrt1q")
    assert btc_available(user) == 0

    txid = wallet.send([(address["address"], 25_000_000)])  # 0.25 BTC
    node.rpc("generatetoaddress", 2, MINER)  # the demo's BTC confirmations
    seen = eventually(lambda: btc_available(user), lambda v: v > 0, timeout_s=30)
    assert seen == Decimal("0.25"), watcher.tail()
    assert watcher.printed(f"bitcoin:{txid}:0")
    with httpx.Client(base_url=d.urls[1], timeout=5.0) as http:  # the user's inbox
        notice = last_mail(http, "btc-e2e@example.com", "security_notice")
    assert notice["subject"].endswith("deposit of 0.25000000 BTC credited"), notice
    assert txid in notice["body"]

    watcher.stop()  # a restart resumes from its stored height: no second credit
    watcher.start(lambda: watcher.tail(10**6).count(RUNNING) == 2)
    node.rpc("generatetoaddress", 3, MINER)
    later = eventually(lambda: btc_available(user), lambda v: v != seen, timeout_s=3)
    assert later == Decimal("0.25")
