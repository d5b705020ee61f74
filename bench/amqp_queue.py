"""The command round trip over RabbitMQ with a classic vs a quorum command queue
(ADR 0011), written to bench/results/amqp_queue.json.

The adapter's client and server (``AmqpCommandClient``/``AmqpCommandServer``) on the
local broker, with a server that answers at once (no core, no fsync of ours), so the
figures are the broker's share of a command: publish with confirm, delivery, reply.
Sequential (one command in flight) and 32 in flight, ``--runs`` times each, the two
queue types in turn (A B A B ...); medians over runs.

Run: ``.venv/bin/python bench/amqp_queue.py [--runs N] [--commands N]``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import secrets
import statistics
import time
from pathlib import Path
from typing import Any
from unittest import mock

from tests.support.cleanup import delete_amqp
from tradewind.adapters.amqp import (
    AmqpCommandClient,
    AmqpCommandServer,
    AmqpEventPublisher,
    AmqpLink,
    AmqpNames,
    Applied,
    CoreWatch,
)
from tradewind.adapters.amqp import commands as amqp_commands
from tradewind.core.commands import AnyCommand, Deposit
from tradewind.runtime.benchmark import machine_info

URL = os.environ.get("TRADEWIND_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
OUT = Path(__file__).parent / "results" / "amqp_queue.json"


async def one_run(kind: str, commands: int, inflight: int) -> dict[str, float]:
    names = AmqpNames(f"twbench{secrets.token_hex(4)}")
    seq = 0

    async def handle(cmd: AnyCommand) -> Applied:
        nonlocal seq
        seq += 1
        return Applied(seq, seq, cmd, [])

    args = {"x-queue-type": "quorum"} if kind == "quorum" else {}
    with mock.patch.object(amqp_commands, "command_queue_arguments", lambda _v=None: args):
        core_link = AmqpLink(URL, name="bench-core")
        server = AmqpCommandServer(core_link, names, handle)
        publisher = AmqpEventPublisher(
            core_link, names, instance="bench", durable_seq=lambda: seq, heartbeat_s=0.1
        )
        api_link = AmqpLink(URL, name="bench-api")
        watch = CoreWatch(api_link, names, liveness_s=5.0)
        client = AmqpCommandClient(api_link, names, watch, timeout_s=10.0)
        await core_link.start(wait_s=5)
        publisher.start()
        await server.start()
        await api_link.start(wait_s=5)
        watch.start()
        while not client.available:
            await asyncio.sleep(0.01)
    latencies: list[float] = []

    async def worker(n: int) -> None:
        for i in range(n):
            start = time.perf_counter()
            await client.submit(Deposit(user=i + 1, asset="BTC", amount=1))
            latencies.append(time.perf_counter() - start)

    for _ in range(50):  # warm-up
        await client.submit(Deposit(user=1, asset="BTC", amount=1))
    latencies.clear()
    began = time.perf_counter()
    await asyncio.gather(*(worker(commands // inflight) for _ in range(inflight)))
    elapsed = time.perf_counter() - began
    await watch.stop()
    await api_link.stop()
    await server.stop()
    await publisher.stop()
    await core_link.stop()
    await delete_amqp(URL, [names.commands], [names.events, names.status])
    latencies.sort()
    return {
        "commands_per_sec": len(latencies) / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
    }


async def main(runs: int, commands: int) -> dict[str, Any]:
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    for _ in range(runs):
        for kind in ("classic", "quorum"):
            for inflight in (1, 32):
                r = await one_run(kind, commands, inflight)
                results.setdefault(kind, {}).setdefault(str(inflight), []).append(r)
    medians = {
        kind: {
            inflight: {k: round(statistics.median(r[k] for r in rs), 3) for k in rs[0]}
            for inflight, rs in by.items()
        }
        for kind, by in results.items()
    }
    return {
        "what": "command round trip through RabbitMQ, answering server (no core)",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "runs": runs,
        "commands_per_run": commands,
        "medians_by_queue_and_inflight": medians,
        "runs_raw": results,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--commands", type=int, default=2000)
    ns = parser.parse_args()
    report = asyncio.run(main(ns.runs, ns.commands))
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["medians_by_queue_and_inflight"], indent=2))
