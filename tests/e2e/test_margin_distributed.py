"""End to end, distributed mode: margin figures on every API replica (ADR 0033).

``tradewind core``, ``tradewind projector`` and two ``tradewind api`` replicas as real
processes on PostgreSQL, Redis and RabbitMQ (``tests/e2e/test_distributed.py``'s
deployment). The demo's margin terms, pools and first marks are sent to the core over
the bus (as an operator's tool would; the distributed demo seeds only the spot
markets). A user transfers and borrows through replica A; replica B answers the same
account, max-borrowable and max-transferable at once (read-your-writes across
replicas), and sends the level update on its WebSocket ``margin`` channel. The core
is then killed and restarted: its warm start republishes the figures, and a repay
through B shows on A.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from tests.e2e.test_distributed import (  # noqa: F401 (the fixture)
    Deployment,
    core_up,
    deployment,
    eventually,
    onboard,
)
from tradewind.adapters.amqp import AmqpCommandClient, AmqpLink, AmqpNames, CoreWatch
from tradewind.core.engine import Core
from tradewind.runtime.margin import missing_margin_setup
from tradewind.services.accounts import sign_request

ISO = {"wallet": "isolated", "symbol": "BTC-USDT"}
TREASURY = 10**9
"""A spot account that funds the pools (no SQL user needed: the core only sees ids)."""


async def configure_margin(amqp_url: str, prefix: str) -> None:
    """The demo's margin set-up, submitted to the core over the bus."""
    names = AmqpNames(prefix)
    link = AmqpLink(amqp_url, name="e2e-margin-setup")
    watch = CoreWatch(link, names, liveness_s=2.0)
    client = AmqpCommandClient(link, names, watch, timeout_s=10.0)
    assert await link.start(wait_s=5)
    watch.start()
    try:
        deadline = time.monotonic() + 10
        while not client.available and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        for cmd in missing_margin_setup(Core(), TREASURY, int(time.time() * 1000)):
            applied = await client.submit(cmd)
            assert not any(type(e).__name__ == "Rejected" for e in applied.events), applied
    finally:
        await watch.stop()
        await link.stop()


def test_a_user_borrows_on_one_replica_and_sees_the_figures_on_the_other(
    deployment: Deployment,  # noqa: F811
) -> None:
    from websockets.sync.client import connect

    d = deployment
    d.start()
    asyncio.run(configure_margin(d.amqp_url, d.prefix))
    alice = onboard(d.urls, 0, "margin-alice@example.com", "USDT", "5000")

    with connect(f"ws://127.0.0.1:{d.ports[1]}/ws") as ws:
        ts = int(time.time() * 1000)
        signature = sign_request(alice.secret, ts, "GET", "/ws", b"")
        ws.send(json.dumps({"op": "auth", "key": alice.key_id, "timestamp": ts,
                            "signature": signature}))  # fmt: skip
        assert json.loads(ws.recv(timeout=5))["op"] == "authenticated"
        ws.send(json.dumps({"op": "subscribe", "channel": "margin"}))
        assert json.loads(ws.recv(timeout=5))["op"] == "subscribed"

        # through replica A: 1,000 USDT in, 5,000 borrowed: level 6,000 / 5,000 = 1.2
        moved = alice.ok(
            "POST",
            "/api/v1/margin/transfer",
            {"asset": "USDT", "amount": "1000", "direction": "in", **ISO},
            via=0,
        )
        assert moved["wallet"]["balances"][0]["available"] == "1000.000000"
        lent = alice.ok(
            "POST", "/api/v1/margin/borrow", {"asset": "USDT", "amount": "5000", **ISO}, via=0
        )
        assert lent["wallet"]["margin_level"] == "1.2000"

        # replica B, at once: the same wallet, limits from the core's own formulas
        account = alice.ok("GET", "/api/v1/margin/account", via=1)
        assert account["mark_prices"][0] == {"symbol": "BTC-USDT", "mark_price": "65000.00"}
        (wallet,) = account["wallets"]
        assert wallet == lent["wallet"]
        assert wallet["liabilities"][0]["total"] == "5000.000000"
        assert wallet["liquidation_price"] is None  # USDT only: no price moves it
        query = "asset=USDT&wallet=isolated&symbol=BTC-USDT"
        most = [
            alice.ok("GET", f"/api/v1/margin/max-borrowable?{query}", via=v)["amount"]
            for v in (0, 1)
        ]
        # floor((10000 * 6000 - 11112 * 5000) / (11112 - 10000)) USDT
        assert most == ["3992.805755", "3992.805755"]
        out = alice.ok("GET", f"/api/v1/margin/max-transferable?{query}", via=1)["amount"]
        assert out == "444.000000"  # (6000 - x) / 5000 >= 1.1112
        config = alice.ok("GET", "/api/v1/margin/config", via=1)
        usdt = next(a for a in config["assets"] if a["asset"] == "USDT")
        assert usdt["pool_available"] == "49995000.000000"

        # replica B's WebSocket: a level update with the new figures
        level: dict[str, Any] | None = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            message = json.loads(ws.recv(timeout=5))
            data = message.get("data") or {}
            wallets = data.get("wallets") if data.get("type") == "level" else None
            if message.get("channel") == "margin" and wallets and wallets[0]["margin_level"]:
                level = data
                break
        assert level is not None, "no level update on replica B"
        (w,) = level["wallets"]
        assert (w["wallet"], w["symbol"]) == ("isolated", "BTC-USDT")
        assert (w["assets_value"], w["liabilities_value"]) == ("6000.000000", "5000.000000")

    # the core killed and restarted: it republishes; a repay through B shows on A
    d.core.kill()
    for url in d.urls:  # the replicas noticed (no command goes to the dead core)
        assert not eventually(lambda url=url: core_up(url), lambda up: not up)  # type: ignore[misc]
    d.core.start(lambda: all(core_up(url) for url in d.urls))
    repaid = alice.ok(
        "POST", "/api/v1/margin/repay", {"asset": "USDT", "amount": "2000", **ISO}, via=1
    )
    assert repaid["wallet"]["margin_level"] == "1.3333"  # 4,000 / 3,000
    account = eventually(
        lambda: alice.ok("GET", "/api/v1/margin/account", via=0),
        lambda a: a["wallets"][0]["margin_level"] == "1.3333",
    )
    assert account["wallets"] == [repaid["wallet"]]
