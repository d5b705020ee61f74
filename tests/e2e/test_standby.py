"""End to end, hot standby (ADR 0010): two ``tradewind core`` processes on one data dir,
two API replicas and the projector, as real processes on PostgreSQL, Redis, RabbitMQ.

1. The active core is SIGKILLed while orders keep coming: the standby takes the lease,
   recovers the journal and answers; the API takes orders again without any restart;
   every acknowledged order is there; the journal verifies.
2. The active core is paused (SIGSTOP) past its lease with commands in flight, then
   woken: it writes nothing (fencing), exits, and the standby, which held the lease but
   waited for the journal lock meanwhile, takes over; the commands sent to the paused
   core were never applied.
3. The projector is SIGKILLed: a second one, standing by on its lease, takes over and
   the orders acknowledged meanwhile show in the projected tables.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.test_distributed import (
    Client,
    Deployment,
    OrderStream,
    core_up,
    eventually,
    onboard,
)
from tests.support.distributed import CLI, Process
from tradewind.journal.journal import read_journal

LEASE_MS = 2000
"""Short enough to keep the takeovers quick, long enough that a leader on a loaded 2-core
CI machine (load 10 and more) is never late to renew; the time limits below are relative
to it."""
ORDER = {"symbol": "BTC-USDT", "side": "sell", "price": "71000", "quantity": "0.0001"}


class StandbyDeployment(Deployment):
    """The deployment of test_distributed with a second core on the same data dir."""

    def __init__(self, root: Path, pg_url: str, redis_url: str, amqp_url: str) -> None:
        super().__init__(root, pg_url, redis_url, amqp_url)
        self.core.env["TRADEWIND_CORE_LEASE_MS"] = str(LEASE_MS)
        self.projector.env["TRADEWIND_CORE_LEASE_MS"] = str(LEASE_MS)
        self.standby = Process("core-b", ["core"], self.core.env, root)
        for api in self.apis:
            # the order stream runs flat out through one account: the per-account order
            # rate limit (tested on its own) would answer 429 and hide what is tested here
            api.env["TRADEWIND_RATE_LIMITS"] = "off"

    def start(self) -> None:
        super().start()
        self.standby.start(lambda: self.standby.printed("standing by"))

    def stop(self, *more: Process) -> None:
        super().stop(self.standby, *more)

    def journal_seqs(self) -> list[int]:
        return [seq for _, seq, _ in read_journal(self.core_dir / "journal.twj")]


@pytest.fixture
def deployment(
    tmp_path: Path, pg_url: str, redis_url: str, amqp_url: str
) -> Iterator[StandbyDeployment]:
    d = StandbyDeployment(tmp_path, pg_url, redis_url, amqp_url)
    try:
        yield d
    finally:
        for p in (d.core, d.standby):
            if p.proc is not None and p.proc.poll() is None:
                p.proc.send_signal(signal.SIGCONT)
        d.stop()
        d.cleanup()


def lease_token(process: Process) -> int:
    match = re.search(r"lease token (\d+)", process.tail(100_000))
    assert match, process.tail()
    return int(match.group(1))


def order_ids(client: Client) -> set[int]:
    return {o["id"] for o in client.state()["orders"]}


def verify(core_dir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", CLI, "verify", str(core_dir)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_standby_takes_over_when_the_active_core_is_killed(
    deployment: StandbyDeployment,
) -> None:
    d = deployment
    d.start()
    alice = onboard(d.urls, 0, "alice@example.com", "BTC", "2")
    first = lease_token(d.core)

    stream = OrderStream(alice)
    stream.start()
    time.sleep(1.0)
    assert stream.acknowledged, stream.answers[-3:]
    killed_at = time.monotonic()
    d.core.kill()
    d.standby.wait(lambda: d.standby.printed("Tradewind core running"), timeout_s=20)
    d.standby.wait(lambda: all(core_up(url) for url in d.urls), timeout_s=20)
    took_over_s = time.monotonic() - killed_at
    before_answers = len(stream.answers)
    time.sleep(1.0)
    stream.halt.set()
    stream.join(timeout=20)

    assert lease_token(d.standby) > first
    assert took_over_s < LEASE_MS / 1000 + 5.0, took_over_s
    print(f"takeover after SIGKILL: {took_over_s:.2f} s")
    # the API takes orders again, through both replicas, without any restart
    after = stream.answers[before_answers:]
    assert after and all(status == 201 for _, status, _, _ in after[1:]), [
        (s, b[:80]) for _, s, _, b in after if s != 201
    ]
    outage = [a for a in stream.answers if a[0] > killed_at]
    assert all(status in (201, 503, 504) for _, status, _, _ in outage), outage

    acknowledged = set(stream.acknowledged)
    state = eventually(alice.state, lambda s: acknowledged <= {o["id"] for o in s["orders"]})
    assert acknowledged <= {o["id"] for o in state["orders"]}
    assert alice.state(via=1)["orders"] == state["orders"]

    # a clean stop hands over at once: the stopping core releases its lease last
    third = Process("core-c", ["core"], d.core.env, d.root)
    third.start(lambda: third.printed("standing by"))
    try:
        stopped_at = time.monotonic()
        d.standby.stop()
        third.wait(lambda: third.printed("Tradewind core running"), timeout_s=20)
        assert time.monotonic() - stopped_at < LEASE_MS / 1000 + 3.0
        assert lease_token(third) > lease_token(d.standby)
        third.wait(lambda: all(core_up(url) for url in d.urls), timeout_s=20)
        placed = alice.ok("POST", "/api/v1/orders", ORDER, via=0)
        assert placed["id"] > max(acknowledged)
    finally:
        third.stop()
    verify(d.core_dir)


def test_a_paused_leader_that_wakes_writes_nothing_and_hands_over(
    deployment: StandbyDeployment,
) -> None:
    d = deployment
    d.start()
    alice = onboard(d.urls, 0, "alice@example.com", "BTC", "2")
    acked = {alice.ok("POST", "/api/v1/orders", ORDER, via=i % 2)["id"] for i in range(4)}
    first = lease_token(d.core)
    assert d.core.proc is not None
    seqs = d.journal_seqs()

    d.core.proc.send_signal(signal.SIGSTOP)
    answers: list[int] = []

    def place(i: int) -> None:  # distinct bodies: equal signatures would be replays
        body = {**ORDER, "client_order_id": f"paused-{i}"}
        r = alice.signed("POST", "/api/v1/orders", body, via=i % 2, timeout=15.0)
        answers.append(r.status_code)

    # in flight to the paused core (sent before the replicas notice its silence)
    senders = [threading.Thread(target=place, args=(i,)) for i in range(4)]
    for t in senders:
        t.start()
    for t in senders:
        t.join(timeout=20)
    assert set(answers) <= {503, 504} and 504 in answers, answers  # 504: it reached the core

    d.standby.wait(lambda: d.standby.printed("waiting for the previous core"), timeout_s=10)
    assert d.journal_seqs() == seqs  # the standby holds the lease, and waits: no writes
    time.sleep(0.5)
    d.core.proc.send_signal(signal.SIGCONT)
    assert d.core.proc.wait(timeout=10) == 3  # woke, found its lease gone, stopped
    assert d.core.printed("core lease lost")
    d.core.proc = None
    assert d.journal_seqs() == seqs  # it wrote nothing after waking

    d.standby.wait(lambda: d.standby.printed("Tradewind core running"), timeout_s=20)
    d.standby.wait(lambda: all(core_up(url) for url in d.urls), timeout_s=20)
    assert lease_token(d.standby) > first
    more = alice.ok("POST", "/api/v1/orders", ORDER, via=1)
    ids = eventually(lambda: order_ids(alice), lambda ids: more["id"] in ids)
    # everything acknowledged is there; what went to the paused core never happened
    assert acked <= ids
    assert len([o for o in alice.state()["orders"] if o["price"] == "71000.00"]) == 5
    assert d.journal_seqs() == [*seqs, seqs[-1] + 1]
    assert httpx.get(f"{d.urls[0]}/readyz").status_code == 200

    d.standby.stop()
    verify(d.core_dir)


def test_a_standby_projector_takes_over(deployment: StandbyDeployment) -> None:
    d = deployment
    d.start()
    second = Process(
        "projector-b",
        ["projector"],
        {**d.projector.env, "TRADEWIND_DATA_DIR": str(d.root / "p2")},
        d.root,
    )
    second.start(lambda: second.printed("standing by"))
    # a standby stops at once on SIGTERM, without ever having led
    third = Process("projector-c", ["projector"], second.env, d.root)
    third.start(lambda: third.printed("standing by"))
    assert third.proc is not None
    third.proc.terminate()
    assert third.proc.wait(timeout=10) == 0
    try:
        alice = onboard(d.urls, 0, "alice@example.com", "BTC", "2")
        first = alice.ok("POST", "/api/v1/orders", ORDER, via=0)["id"]
        assert first in order_ids(alice)
        d.projector.kill()
        placed = {alice.ok("POST", "/api/v1/orders", ORDER, via=i % 2)["id"] for i in range(3)}
        second.wait(lambda: second.printed("Tradewind projector running"), timeout_s=20)
        ids = eventually(lambda: order_ids(alice), lambda ids: placed <= ids, timeout_s=20)
        assert placed | {first} <= ids
        assert alice.state(via=1)["orders"] == alice.state(via=0)["orders"]
    finally:
        second.stop()
