"""Crash at any point, recover: the state is exactly a fresh core fed the durable prefix.

Hypothesis draws a command stream (deposits, limit places and cancels on two symbols for
a few users), group-commit boundaries, a snapshot interval and a crash: either the last
group never reaches the disk (its buffer is dropped) or its write is torn at a random
byte. The recovered state must equal a fresh Core that applied exactly the commands that
survived, which include every acknowledged one, and the invariants must hold. Each group
is one batch record (ADR 0026), so a torn group loses all of its commands.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewind.core.commands import AddAsset, AddSymbol, AnyCommand, Cancel, Deposit, Place
from tradewind.core.engine import Core
from tradewind.core.invariants import check_invariants
from tradewind.journal import JOURNAL_FILE, JournaledCore, JournalReader, recover
from tradewind.journal.journal import BATCH_HEADER_SIZE, HEADER_SIZE

SYMBOLS = ("BTC-USDT", "ETH-USDT")
USERS = st.integers(1, 4)
SETUP: list[AnyCommand] = [
    AddAsset(asset="BTC", decimals=8),
    AddAsset(asset="ETH", decimals=8),
    AddAsset(asset="USDT", decimals=6),
    *(
        AddSymbol(symbol=s, base=s.split("-")[0], quote="USDT", tick_size=10_000, lot_size=10_000)
        for s in SYMBOLS
    ),
]

deposits = st.builds(
    Deposit,
    user=USERS,
    asset=st.sampled_from(("BTC", "ETH", "USDT")),
    amount=st.integers(1, 10**9),
)
places = st.builds(
    Place,
    id=st.integers(1, 40),
    user=USERS,
    symbol=st.sampled_from(SYMBOLS),
    side=st.sampled_from(("buy", "sell")),
    price=st.integers(95, 105),
    qty=st.integers(1, 20),
)
cancels = st.builds(Cancel, id=st.integers(1, 40), user=USERS, symbol=st.sampled_from(SYMBOLS))
streams = st.lists(st.one_of(deposits, places, places, cancels), min_size=1, max_size=60)


def reference(cmds: list[AnyCommand]) -> str:
    core = Core()
    for seq, cmd in enumerate(cmds, 1):
        core.apply(msgspec.structs.replace(cmd, seq=seq))
    return core.state_hash()


@settings(max_examples=50, deadline=None)
@given(
    stream=streams,
    cuts=st.lists(st.integers(1, 60), max_size=8),
    every=st.integers(1, 25),
    torn=st.booleans(),
    data=st.data(),
)
def test_recovered_state_is_the_durable_prefix(
    stream: list[AnyCommand], cuts: list[int], every: int, torn: bool, data: st.DataObject
) -> None:
    cmds = SETUP + stream
    bounds = sorted({len(SETUP) + c for c in cuts if c < len(stream)} | {len(cmds)})
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        jc = JournaledCore(data_dir, snapshot_every=every)
        done = 0
        for bound in bounds[:-1]:
            for cmd in cmds[done:bound]:
                jc.submit(cmd)
            assert jc.flush() == bound
            done = bound
        acked = done
        for cmd in cmds[done:]:  # the last group: the crash hits it
            jc.submit(cmd)
        journal = data_dir / JOURNAL_FILE
        if torn:
            # The group's write started but was cut: some prefix of its bytes is on disk.
            # (No snapshot can follow a write that never returned.)
            jc.snapshot_every = 10**9
            start = journal.stat().st_size
            jc.flush()
            jc.close()
            end = journal.stat().st_size
            cut = data.draw(st.integers(start, end), label="cut")
            ends = {
                off + (BATCH_HEADER_SIZE if batch else HEADER_SIZE) + len(p): first + n - 1
                for off, first, n, p, batch in JournalReader(journal.read_bytes()).walk()
            }
            survived = max([acked] + [seq for e, seq in ends.items() if e <= cut])
            with open(journal, "r+b") as f:
                f.truncate(cut)
        else:
            jc.abandon()  # the buffer dies with the process
            survived = acked

        result = recover(data_dir)
        assert result.last_seq == survived >= acked
        assert result.core.state_hash() == reference(cmds[:survived])
        assert check_invariants(result.core) == []

        # The exchange goes on from there, and a later recovery agrees with it.
        with JournaledCore(data_dir, snapshot_every=every) as again:
            for cmd in cmds[survived:]:
                again.submit(cmd)
            live = again.core.state_hash()
        assert live == reference(cmds) == recover(data_dir).core.state_hash()
