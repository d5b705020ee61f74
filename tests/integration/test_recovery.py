"""Recovery on real files: snapshot + journal replay rebuild exactly the acknowledged state.

Every test compares against a fresh Core that applied the expected commands directly:
recovery must give that state (same ``state_hash``) and the invariants must hold.
"""

from __future__ import annotations

import os
import random
import runpy
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import msgspec
import pytest
from structlog.testing import capture_logs
from typer.testing import CliRunner

from tradewind.core.codec import encode_command
from tradewind.core.commands import AnyCommand, Deposit, Place
from tradewind.core.engine import Core
from tradewind.core.events import Rejected
from tradewind.core.invariants import check_invariants
from tradewind.journal import (
    JOURNAL_FILE,
    JournalCorruptError,
    JournaledCore,
    JournalReader,
    JournalSeqError,
    JournalWriter,
    read_journal,
    recover,
    write_snapshot,
)
from tradewind.journal.journal import HEADER_SIZE, encode_batch_record, encode_record
from tradewind.journal.snapshot import list_snapshots
from tradewind.runtime.cli import app
from tradewind.runtime.verify import run_verify

# The child of the kill -9 test; the test runs the same file to regenerate the commands.
CHILD = '''
import random
import sys
from pathlib import Path

from tradewind.core.commands import AddAsset, AddSymbol, Cancel, Deposit, Place

SYMBOLS = ("BTC-USDT", "ETH-USDT")


def commands(seed, n):
    """n unstamped commands: setup, deposits for 5 users, then places and cancels."""
    rng = random.Random(seed)
    out = [
        AddAsset(asset="BTC", decimals=8),
        AddAsset(asset="ETH", decimals=8),
        AddAsset(asset="USDT", decimals=6),
    ]
    for s in SYMBOLS:
        base = s.split("-")[0]
        out.append(AddSymbol(symbol=s, base=base, quote="USDT", tick_size=10_000, lot_size=10_000))
    for user in range(1, 6):
        out.append(Deposit(user=user, asset="USDT", amount=10**13))
        out.append(Deposit(user=user, asset="BTC", amount=10**11))
        out.append(Deposit(user=user, asset="ETH", amount=10**11))
    placed = []
    while len(out) < n:
        if placed and rng.random() < 0.3:
            oid, user, symbol = placed.pop(rng.randrange(len(placed)))
            out.append(Cancel(id=oid, user=user, symbol=symbol))
        else:
            oid = len(out) + 1
            user = rng.randint(1, 5)
            symbol = rng.choice(SYMBOLS)
            side = rng.choice(("buy", "sell"))
            price = rng.randint(990, 1010)
            out.append(Place(id=oid, user=user, symbol=symbol, side=side, price=price,
                             qty=rng.randint(1, 30)))
            placed.append((oid, user, symbol))
    return out[:n]


def main():
    from tradewind.journal import JournaledCore

    data_dir, seed = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(seed)
    todo = commands(seed, 200_000)
    jc = JournaledCore(data_dir, snapshot_every=700)
    i = 0
    while i < len(todo):
        for cmd in todo[i : i + rng.randint(1, 40)]:
            jc.submit(cmd)
        i = jc.last_seq
        print(jc.flush(), flush=True)  # acknowledged: every seq up to this one


if __name__ == "__main__":
    main()
'''


@pytest.fixture(scope="module")
def child(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("child") / "journal_child.py"
    path.write_text(CHILD)
    return path


def generated(child: Path, seed: int, n: int) -> list[AnyCommand]:
    ns: dict[str, Any] = runpy.run_path(str(child))
    cmds: list[AnyCommand] = ns["commands"](seed, n)
    return cmds


def stamped(cmds: list[AnyCommand]) -> list[AnyCommand]:
    """Stamped as JournaledCore stamps them: seq only (ts is the caller's)."""
    return [msgspec.structs.replace(c, seq=i) for i, c in enumerate(cmds, 1)]


def reference(cmds: list[AnyCommand]) -> Core:
    core = Core()
    for c in cmds:
        core.apply(c)
    return core


def run(data_dir: Path, cmds: list[AnyCommand], *, batch: int = 7, every: int = 10**9) -> None:
    with JournaledCore(data_dir, snapshot_every=every) as jc:
        for i, c in enumerate(cmds, 1):
            jc.submit(c)
            if i % batch == 0:
                jc.flush()


@pytest.fixture
def cmds(child: Path) -> list[AnyCommand]:
    return stamped(generated(child, seed=11, n=300))


def test_round_trip(tmp_path: Path, cmds: list[AnyCommand]) -> None:
    run(tmp_path, cmds)
    result = recover(tmp_path)
    assert (result.last_seq, result.replayed, result.snapshot_seq) == (300, 300, None)
    assert result.truncated_bytes == 0
    assert result.core.state_hash() == reference(cmds).state_hash()
    assert check_invariants(result.core) == []


def test_submit_returns_the_events_the_core_gives(tmp_path: Path, cmds: list[AnyCommand]) -> None:
    ref = Core()
    with JournaledCore(tmp_path) as jc:
        for c in cmds:
            assert jc.submit(c) == ref.apply(c)


def test_reopen_continues_the_journal(tmp_path: Path, cmds: list[AnyCommand]) -> None:
    run(tmp_path, cmds[:120], every=50)
    with JournaledCore(tmp_path, snapshot_every=50) as jc:
        assert jc.last_seq == jc.durable_seq == 120
        with pytest.raises(ValueError, match="not the next seq"):
            jc.submit(cmds[150])
        for c in cmds[120:]:
            jc.submit(msgspec.structs.replace(c, seq=0))  # unstamped: the journal stamps
    result = recover(tmp_path)
    assert result.core.state_hash() == reference(cmds).state_hash()


def test_unflushed_commands_are_not_durable(tmp_path: Path, cmds: list[AnyCommand]) -> None:
    jc = JournaledCore(tmp_path)
    for c in cmds[:50]:
        jc.submit(c)
    assert jc.flush() == 50
    for c in cmds[50:60]:
        jc.submit(c)
    assert jc.durable_seq == 50 and jc.last_seq == 60
    assert jc.abandon() == 10  # the process dies before the group commit
    result = recover(tmp_path)
    assert result.last_seq == 50
    assert result.core.state_hash() == reference(cmds[:50]).state_hash()


def test_invalid_command_is_refused_before_the_journal(tmp_path: Path) -> None:
    """A struct built in Python skips msgspec's checks; journaling it would make every
    later restart fail to decode it."""
    with JournaledCore(tmp_path) as jc:
        with pytest.raises(ValueError, match="invalid command"):
            jc.submit(Deposit(user=1, asset="usdt", amount=5))
        assert jc.last_seq == 0
    assert list(read_journal(tmp_path / JOURNAL_FILE)) == []


def test_torn_tail_at_every_byte_of_the_last_record(tmp_path: Path, cmds: list[AnyCommand]) -> None:
    """A crash while writing the last group (one batch record, seqs 36-40): recovery gives
    the acknowledged prefix, cuts the torn bytes, and the exchange can go on appending."""
    run(tmp_path, cmds[:40])
    path = tmp_path / JOURNAL_FILE
    full = path.read_bytes()
    last_offset, first, count, _, batch = list(JournalReader(full).walk())[-1]
    assert (first, count, batch) == (36, 5, True)
    prefix_hash = reference(cmds[:35]).state_hash()
    for cut in range(last_offset + 1, len(full)):
        path.write_bytes(full[:cut])
        with capture_logs() as logs:
            result = recover(tmp_path)
        assert (result.last_seq, result.truncated_bytes) == (35, cut - last_offset)
        assert result.core.state_hash() == prefix_hash
        assert path.stat().st_size == last_offset
        assert [(e["offset"], e["dropped_bytes"]) for e in logs] == [
            (last_offset, cut - last_offset)
        ]
    with JournaledCore(tmp_path) as jc:
        for c in cmds[35:40]:
            jc.submit(c)
    assert recover(tmp_path).core.state_hash() == reference(cmds[:40]).state_hash()


def test_opening_on_a_torn_tail_cuts_it_and_goes_on(tmp_path: Path, cmds: list[AnyCommand]) -> None:
    run(tmp_path, cmds[:20])
    path = tmp_path / JOURNAL_FILE
    size = path.stat().st_size
    torn = encode_record(21, encode_command(cmds[20]))[:-1]
    with open(path, "ab") as f:
        f.write(torn)
    with capture_logs() as logs, JournaledCore(tmp_path) as jc:
        assert (jc.recovery.last_seq, jc.recovery.truncated_bytes) == (20, len(torn))
        for c in cmds[20:40]:
            jc.submit(c)
    assert [(e["event"], e["offset"]) for e in logs] == [("journal torn tail truncated", size)]
    assert recover(tmp_path).core.state_hash() == reference(cmds[:40]).state_hash()


def test_flipped_bit_in_a_middle_record_stops_recovery(
    tmp_path: Path, cmds: list[AnyCommand]
) -> None:
    run(tmp_path, cmds[:40])
    path = tmp_path / JOURNAL_FILE
    offset = list(read_journal(path))[20][0]
    data = bytearray(path.read_bytes())
    data[offset + HEADER_SIZE + 2] ^= 0x08
    path.write_bytes(data)
    with pytest.raises(JournalCorruptError, match=f"byte offset {offset}:"):
        recover(tmp_path)
    with pytest.raises(JournalCorruptError, match=f"byte offset {offset}:"):
        JournaledCore(tmp_path)
    assert path.read_bytes() == data  # nothing cut: an operator must look at it


def test_seq_gap_stops_recovery(tmp_path: Path, cmds: list[AnyCommand]) -> None:
    """Old journals (one command record per command) are still read, and checked."""
    with JournalWriter(tmp_path / JOURNAL_FILE) as w:
        for c in cmds[:10]:
            w.append(c.seq, encode_command(c))
    assert recover(tmp_path).core.state_hash() == reference(cmds[:10]).state_hash()
    path = tmp_path / JOURNAL_FILE
    records = list(read_journal(path))
    with open(path, "r+b") as f:  # rewrite record 6 as seq 7: seq 5 is followed by 7
        f.seek(records[5][0])
        f.write(encode_record(7, records[5][2]))
    with pytest.raises(JournalSeqError, match=f"byte offset {records[5][0]}: seq gap"):
        recover(tmp_path)


def test_seq_gap_between_batch_records_stops_recovery(
    tmp_path: Path, cmds: list[AnyCommand]
) -> None:
    run(tmp_path, cmds[:21], batch=7)
    path = tmp_path / JOURNAL_FILE
    offset, first, _, _, _ = list(JournalReader(path.read_bytes()).walk())[1]
    payloads = [p for o, _, p in read_journal(path) if o == offset]
    with open(path, "r+b") as f:  # the second batch claims seqs 9-15: seq 7 is followed by 9
        f.seek(offset)
        f.write(encode_batch_record(first + 1, payloads))
    with pytest.raises(JournalSeqError, match=f"byte offset {offset}: seq gap"):
        recover(tmp_path)


def test_batch_whose_commands_carry_other_seqs_stops_recovery(
    tmp_path: Path, cmds: list[AnyCommand]
) -> None:
    """The header's seqs and the commands' own stamps must agree."""
    with open(tmp_path / JOURNAL_FILE, "wb") as f:
        f.write(encode_batch_record(1, [encode_command(c) for c in cmds[:5]]))
        f.write(encode_batch_record(6, [encode_command(c) for c in cmds[6:11]]))
    with pytest.raises(JournalSeqError, match=r"byte offset \d+: record seq 6 holds a command"):
        recover(tmp_path)


def test_old_and_new_records_mixed(tmp_path: Path, cmds: list[AnyCommand]) -> None:
    """A journal written before batch records (ADR 0026) and continued by this version:
    command records, then batch records, recover as one stream, with or without a
    snapshot falling inside a batch record."""
    with JournalWriter(tmp_path / JOURNAL_FILE) as w:
        for c in cmds[:30]:
            w.append(c.seq, encode_command(c))
    run(tmp_path, cmds[30:100], batch=9)
    with JournalWriter(tmp_path / JOURNAL_FILE) as w:  # and a tool's command record again
        w.append(101, encode_command(cmds[100]))
        for c in cmds[101:120]:
            w.append_command(c.seq, c)
    kinds = [
        batch for _, _, _, _, batch in JournalReader((tmp_path / JOURNAL_FILE).read_bytes()).walk()
    ]
    assert kinds[:30] == [False] * 30 and kinds[30] is True and False in kinds[31:]
    assert [s for _, s, _ in read_journal(tmp_path / JOURNAL_FILE)] == list(range(1, 121))
    result = recover(tmp_path)
    assert (result.last_seq, result.replayed) == (120, 120)
    assert result.core.state_hash() == reference(cmds[:120]).state_hash()

    write_snapshot(tmp_path, 34, reference(cmds[:34]).snapshot())  # inside seqs 31-39
    result = recover(tmp_path)
    assert (result.snapshot_seq, result.replayed) == (34, 86)
    assert result.core.state_hash() == reference(cmds[:120]).state_hash()
    assert check_invariants(result.core) == []


def test_snapshot_plus_replay_equals_full_replay(tmp_path: Path, cmds: list[AnyCommand]) -> None:
    run(tmp_path / "full", cmds)
    run(tmp_path / "snap", cmds, batch=5, every=40)
    full, snap = recover(tmp_path / "full"), recover(tmp_path / "snap")
    assert snap.snapshot_seq == 280 and snap.replayed == 20 and snap.last_seq == 300
    assert [s for s, _ in list_snapshots(tmp_path / "snap")] == [280, 240, 200]
    assert snap.core.state_hash() == full.core.state_hash() == reference(cmds).state_hash()
    assert check_invariants(snap.core) == []


def test_corrupt_newest_snapshot_falls_back_to_the_older_one(
    tmp_path: Path, cmds: list[AnyCommand]
) -> None:
    run(tmp_path, cmds, batch=5, every=100)
    newest = list_snapshots(tmp_path)[0][1]
    data = bytearray(newest.read_bytes())
    data[len(data) // 2] ^= 0x40
    newest.write_bytes(data)
    result = recover(tmp_path)
    assert (result.snapshot_seq, result.replayed) == (200, 100)
    assert result.core.state_hash() == reference(cmds).state_hash()


def test_journal_starting_after_the_snapshot_is_a_hole(
    tmp_path: Path, cmds: list[AnyCommand]
) -> None:
    """Seqs between the snapshot and the journal's first record are lost commands."""
    write_snapshot(tmp_path, 10, reference(cmds[:10]).snapshot())
    with JournalWriter(tmp_path / JOURNAL_FILE) as w:
        for c in cmds[12:20]:
            w.append(c.seq, encode_command(c))
    with pytest.raises(JournalSeqError, match="byte offset 0: journal resumes at seq 13"):
        recover(tmp_path)


def test_journal_may_start_right_after_the_snapshot(tmp_path: Path, cmds: list[AnyCommand]) -> None:
    write_snapshot(tmp_path, 10, reference(cmds[:10]).snapshot())
    with JournaledCore(tmp_path) as jc:
        assert jc.last_seq == 10
        for c in cmds[10:]:
            jc.submit(c)
    assert recover(tmp_path).core.state_hash() == reference(cmds).state_hash()


# ---------------------------------------------------------------- verify


def test_verify_reports_ok(tmp_path: Path, cmds: list[AnyCommand], capsys: Any) -> None:
    run(tmp_path, cmds, batch=5, every=100)
    assert run_verify(tmp_path) == 0
    out = capsys.readouterr().out
    assert "snapshot seq   300" in out and "replayed       0" in out
    assert f"state hash     {reference(cmds).state_hash()}" in out
    assert out.rstrip().endswith("OK")


def test_verify_through_the_cli_leaves_a_torn_tail_alone(
    tmp_path: Path, cmds: list[AnyCommand]
) -> None:
    run(tmp_path, cmds[:30])
    path = tmp_path / JOURNAL_FILE
    with open(path, "ab") as f:
        f.write(b"\x07\x00\x00")
    result = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "last seq       30" in result.output and "journal tail   3 bytes" in result.output
    assert path.read_bytes().endswith(b"\x07\x00\x00")


def test_verify_reports_violations(tmp_path: Path, cmds: list[AnyCommand], capsys: Any) -> None:
    core = reference(cmds[:30])
    core.accounts[1]["USDT"].available += 1  # money from nowhere
    write_snapshot(tmp_path, 30, core.snapshot())
    assert run_verify(tmp_path) == 1
    out = capsys.readouterr().out
    assert "VIOLATION USDT: balances sum to" in out and "OK" not in out


def test_verify_on_a_corrupt_journal_exits_2_without_traceback(
    tmp_path: Path, cmds: list[AnyCommand]
) -> None:
    run(tmp_path, cmds[:30])
    path = tmp_path / JOURNAL_FILE
    offset = list(read_journal(path))[3][0]
    data = bytearray(path.read_bytes())
    data[offset + 5] ^= 0x01
    path.write_bytes(data)
    result = CliRunner().invoke(app, ["verify", str(tmp_path)])
    assert result.exit_code == 2
    assert f"corrupt journal at byte offset {offset}" in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_verify_on_a_missing_directory_exits_2(tmp_path: Path) -> None:
    assert run_verify(tmp_path / "nope") == 2


# ---------------------------------------------------------------- kill -9


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_loses_no_acknowledged_command(tmp_path: Path, child: Path, seed: int) -> None:
    """A writer killed at a random moment: every seq it acknowledged (printed after its
    flush returned) is recovered, and the state is the exact replay of the prefix."""
    rng = random.Random(seed)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    proc = subprocess.Popen(
        [sys.executable, str(child), str(tmp_path), str(seed)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    )
    assert proc.stdout is not None
    acked = []
    for _ in range(rng.randint(30, 400)):
        line = proc.stdout.readline()
        assert line, "the writer died on its own (see its stderr)"
        acked.append(int(line))
    time.sleep(rng.random() * 0.02)
    proc.send_signal(signal.SIGKILL)
    acked += [int(line) for line in proc.stdout.read().split()]
    proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL

    result = recover(tmp_path)
    assert result.last_seq >= acked[-1] > 0
    assert check_invariants(result.core) == []
    cmds = stamped(generated(child, seed, result.last_seq))
    assert result.core.state_hash() == reference(cmds).state_hash()


def test_place_is_journaled_with_its_seq(tmp_path: Path) -> None:
    with JournaledCore(tmp_path) as jc:
        events = jc.submit(Place(id=1, user=1, symbol="BTC-USDT", side="buy", price=1, qty=1))
        assert isinstance(events[0], Rejected)  # unknown symbol, journaled all the same
    assert [s for _, s, _ in read_journal(tmp_path / JOURNAL_FILE)] == [1]
