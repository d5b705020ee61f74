"""The journal file: framing (command records and batch records), group commit, torn tails
cut, damage in the middle refused."""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import msgspec
import pytest
from structlog.testing import capture_logs

import tradewind.journal.journal as journal_module
from tradewind.core.codec import encode_command
from tradewind.core.commands import Deposit
from tradewind.journal.journal import (
    BATCH_HEADER_SIZE,
    HEADER_SIZE,
    JOURNAL_FILE,
    JournalCorruptError,
    JournalLockedError,
    JournalReader,
    JournalSeqError,
    JournalWriteError,
    JournalWriter,
    encode_batch_record,
    encode_record,
    read_journal,
    scan_journal,
)

PAYLOADS = [f"command number {i}".encode() * (1 + i % 3) for i in range(1, 11)]


def write(path: Path, payloads: list[bytes] = PAYLOADS) -> list[int]:
    """Writes the payloads as seq 1.. in two commit groups; returns the record offsets."""
    with JournalWriter(path) as w:
        for i, p in enumerate(payloads, 1):
            w.append(i, p)
            if i == len(payloads) // 2:
                w.commit()
    offsets, pos = [], 0
    for p in payloads:
        offsets.append(pos)
        pos += HEADER_SIZE + len(p)
    return offsets


def records(path: Path) -> list[tuple[int, int, bytes]]:
    return list(read_journal(path))


def test_round_trip_gives_offsets_seqs_and_payloads(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    offsets = write(path)
    assert records(path) == [
        (o, i + 1, p) for i, (o, p) in enumerate(zip(offsets, PAYLOADS, strict=True))
    ]
    assert path.stat().st_size == offsets[-1] + HEADER_SIZE + len(PAYLOADS[-1])


def test_record_layout_is_length_seq_crc_payload() -> None:
    rec = encode_record(7, b"abc")
    length, seq, crc = struct.unpack_from("<IQI", rec)
    assert (length, seq, rec[HEADER_SIZE:]) == (3, 7, b"abc")
    assert crc == zlib.crc32(struct.pack("<Q", 7) + b"abc")


def test_nothing_reaches_the_file_before_commit(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    w = JournalWriter(path)
    w.append_many([(1, b"a"), (2, b"b")])
    assert w.pending == 2 and w.committed_seq is None and w.last_seq == 2
    assert records(path) == []
    assert w.commit() == 2
    assert [s for _, s, _ in records(path)] == [1, 2]
    assert w.pending == 0 and w.commit() == 2  # an empty commit is a no-op
    w.close()


def test_discard_drops_the_uncommitted_group(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    with JournalWriter(path) as w:
        w.append(1, b"kept")
        w.commit()
        w.append(2, b"lost")
        assert w.discard() == 1
        w.append(2, b"replacement")  # seq 2 is free again
    assert [p for _, _, p in records(path)] == [b"kept", b"replacement"]


def test_reopen_continues_after_the_last_seq(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    write(path)
    with JournalWriter(path) as w:
        assert w.committed_seq == len(PAYLOADS)
        with pytest.raises(ValueError, match="does not follow"):
            w.append(len(PAYLOADS) + 2, b"gap")
        with pytest.raises(ValueError, match="does not follow"):
            w.append(len(PAYLOADS), b"again")
        w.append(len(PAYLOADS) + 1, b"next")
    assert records(path)[-1][1:] == (len(PAYLOADS) + 1, b"next")


def test_first_record_may_start_after_a_snapshot_but_not_at_zero(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    with JournalWriter(path) as w:
        with pytest.raises(ValueError):
            w.append(0, b"x")
        w.append(1001, b"x")
    assert [s for _, s, _ in records(path)] == [1001]


def test_a_second_writer_is_refused(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    with JournalWriter(path), pytest.raises(JournalLockedError):
        JournalWriter(path)
    JournalWriter(path).close()  # released on close


def test_missing_file_has_no_records(tmp_path: Path) -> None:
    assert records(tmp_path / "nope.twj") == []


@pytest.mark.parametrize("extra", [0, 1, 7])
def test_torn_tail_at_every_byte_of_the_last_record_is_cut(tmp_path: Path, extra: int) -> None:
    """A crash mid-write leaves a prefix of the last group: every record before it stays,
    the torn bytes are dropped with a warning naming offset and size, and appending
    continues with the torn record's seq."""
    path = tmp_path / JOURNAL_FILE
    offsets = write(path)
    full = path.read_bytes()
    last = offsets[-1]
    n = len(PAYLOADS)
    for cut in range(last + 1, len(full)):
        torn = full[:cut] + b"\x00" * extra  # some file systems leave zeros past the data
        path.write_bytes(torn)
        assert [s for _, s, _ in records(path)] == list(range(1, n))  # read-only reader
        assert path.read_bytes() == torn
        with capture_logs() as logs, JournalWriter(path) as w:
            assert w.committed_seq == n - 1
            w.append(n, b"rewritten")
        assert logs == [
            {
                "event": "journal torn tail truncated",
                "log_level": "warning",
                "path": str(path),
                "offset": last,
                "dropped_bytes": len(torn) - last,
                "reason": logs[0]["reason"],
            }
        ]
        assert records(path)[-1] == (last, n, b"rewritten")


def test_crc_bad_last_record_is_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    offsets = write(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(data)
    assert scan_journal(path).tail_bytes == len(data) - offsets[-1]
    with JournalWriter(path) as w:
        assert w.committed_seq == len(PAYLOADS) - 1
    assert path.stat().st_size == offsets[-1]


def test_zero_filled_tail_is_cut(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    write(path)
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(b"\x00" * 100_000)
    with JournalWriter(path) as w:
        assert w.committed_seq == len(PAYLOADS)
    assert path.stat().st_size == size


@pytest.mark.parametrize(
    ("field", "byte"),
    [("length", 0), ("length", 3), ("seq", 4), ("seq", 11), ("crc", 12), ("payload", 17)],
)
def test_flipped_bit_in_a_middle_record_names_its_offset(
    tmp_path: Path, field: str, byte: int
) -> None:
    """Damage followed by a valid record is acknowledged data lost: it is reported, never
    skipped, and the file is left as it was for an operator to inspect."""
    path = tmp_path / JOURNAL_FILE
    offsets = write(path)
    bad = offsets[4]
    data = bytearray(path.read_bytes())
    data[bad + byte] ^= 0x10
    path.write_bytes(data)
    for action in (lambda: records(path), lambda: JournalWriter(path), lambda: scan_journal(path)):
        with pytest.raises(JournalCorruptError, match=f"byte offset {bad}:") as info:
            action()
        assert info.value.offset == bad
    assert path.read_bytes() == data


def test_damage_spanning_several_records_with_valid_data_after_is_refused(
    tmp_path: Path,
) -> None:
    path = tmp_path / JOURNAL_FILE
    offsets = write(path)
    data = bytearray(path.read_bytes())
    data[offsets[2] : offsets[6]] = b"\x00" * (offsets[6] - offsets[2])
    path.write_bytes(data)
    with pytest.raises(JournalCorruptError, match=f"byte offset {offsets[2]}:"):
        records(path)


def _forge(path: Path, seqs: list[int]) -> list[int]:
    offsets, pos = [], 0
    with open(path, "wb") as f:
        for s in seqs:
            rec = encode_record(s, f"seq {s}".encode())
            offsets.append(pos)
            pos += len(rec)
            f.write(rec)
    return offsets


@pytest.mark.parametrize(("seqs", "kind"), [([1, 2, 4], "gap"), ([1, 2, 2], "regression")])
def test_seq_gap_or_regression_names_the_offset(tmp_path: Path, seqs: list[int], kind: str) -> None:
    path = tmp_path / JOURNAL_FILE
    offsets = _forge(path, seqs)
    with pytest.raises(JournalSeqError, match=f"byte offset {offsets[2]}: seq {kind}"):
        records(path)
    with pytest.raises(JournalSeqError):
        JournalWriter(path)


def test_failed_write_stops_the_writer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a failed write the disk state is unknown: no later append may succeed, and
    nothing of the failed group is left in the file."""
    path = tmp_path / JOURNAL_FILE
    w = JournalWriter(path)
    w.append(1, b"durable")
    w.commit()

    def full_disk(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    w.append(2, b"doomed")
    with pytest.raises(JournalWriteError, match="No space left"):
        w.commit()
    monkeypatch.undo()
    with pytest.raises(JournalWriteError):
        w.append(3, b"after")
    w.close()
    assert [p for _, _, p in records(path)] == [b"durable"]


@pytest.mark.parametrize("was_on", [True, False])
def test_recovery_leaves_the_garbage_collector_as_it_found_it(tmp_path: Path, was_on: bool) -> None:
    """Recovery replays with the collector off (ADR 0007); the process gets it back in the
    state it had, whether the replay succeeds or stops at a damaged record."""
    import gc

    from tradewind.core.commands import AddAsset, Deposit
    from tradewind.journal.recovery import JournaledCore, recover

    with JournaledCore(tmp_path) as jc:
        jc.submit(AddAsset(asset="USDT", decimals=6))
        for user in range(1, 6):
            jc.flush()  # one batch record per command: a damaged one is in the middle
            jc.submit(Deposit(user=user, asset="USDT", amount=1_000))
    path = tmp_path / JOURNAL_FILE
    offsets = [o for o, _, _ in records(path)]
    before = gc.isenabled()
    try:
        if not was_on:
            gc.disable()
        assert recover(tmp_path, repair=False).replayed == 6
        assert gc.isenabled() is was_on
        data = bytearray(path.read_bytes())
        data[offsets[2] + BATCH_HEADER_SIZE] ^= 0xFF  # a middle record: valid ones follow
        path.write_bytes(bytes(data))
        with pytest.raises(JournalCorruptError):
            recover(tmp_path, repair=False)
        assert gc.isenabled() is was_on
    finally:
        if before:
            gc.enable()
        else:
            gc.disable()


# ---------------------------------------------------------------- batch records (ADR 0026)


def deposits(first: int, n: int) -> list[Deposit]:
    return [Deposit(seq=s, user=s, asset="USDT", amount=1_000 + s) for s in range(first, first + n)]


def write_batches(path: Path, groups: list[int]) -> list[int]:
    """One commit per group size, seqs from 1; returns the record offsets."""
    offsets, seq = [], 1
    with JournalWriter(path) as w:
        for n in groups:
            offsets.append(w.end_offset)
            for cmd in deposits(seq, n):
                w.append_command(cmd.seq, cmd)
            seq += n
            w.commit()
    return offsets


def test_batch_record_layout_is_flagged_length_first_seq_count_crc_array() -> None:
    payloads = [encode_command(c) for c in deposits(7, 3)]
    rec = encode_batch_record(7, payloads)
    word, first, count, crc = struct.unpack_from("<IQII", rec)
    body = rec[BATCH_HEADER_SIZE:]
    assert (word, first, count) == (0x8000_0000 | len(body), 7, 3)
    assert crc == zlib.crc32(struct.pack("<QI", 7, 3) + body)
    assert body == b"\x93" + b"".join(payloads)  # a msgpack array of the three commands


def test_a_commit_writes_one_batch_record_read_back_per_command(tmp_path: Path) -> None:
    """Structs and already-encoded commands (``Raw``) mix in a group; readers still get
    one ``(offset, seq, payload)`` per command, the offset being its record's."""
    path = tmp_path / JOURNAL_FILE
    cmds = deposits(1, 5)
    with JournalWriter(path) as w:
        w.append_command(1, cmds[0])
        w.append_command(2, msgspec.Raw(encode_command(cmds[1])))
        assert (w.pending, w.last_seq, w.committed_seq) == (2, 2, None)
        assert records(path) == []  # nothing before the commit
        assert w.commit() == 2
        second = w.end_offset
        w.append_batch(3, [cmds[2], msgspec.Raw(encode_command(cmds[3])), cmds[4]])
    assert path.stat().st_size == second + BATCH_HEADER_SIZE + 1 + sum(
        len(encode_command(c)) for c in cmds[2:]
    )
    assert records(path) == [(0 if c.seq <= 2 else second, c.seq, encode_command(c)) for c in cmds]
    assert scan_journal(path).records == 5


def test_a_group_larger_than_max_batch_is_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal_module, "MAX_BATCH", 3)
    path = tmp_path / JOURNAL_FILE
    with JournalWriter(path) as w:
        w.append_batch(1, list(deposits(1, 7)))
        for cmd in deposits(8, 4):
            w.append_command(cmd.seq, cmd)
    walked = [(first, n) for _, first, n, _, _ in JournalReader(path.read_bytes()).walk()]
    assert walked == [(1, 3), (4, 3), (7, 1), (8, 3), (11, 1)]
    assert [s for _, s, _ in records(path)] == list(range(1, 12))


@pytest.mark.parametrize("extra", [0, 5])
def test_torn_tail_at_every_byte_of_the_last_batch_record_is_cut(
    tmp_path: Path, extra: int
) -> None:
    """A crash mid-write of the last group leaves a prefix of its one record: the whole
    group goes (none of it was acknowledged), with a warning naming offset and size."""
    path = tmp_path / JOURNAL_FILE
    last = write_batches(path, [3, 4, 5])[-1]
    full = path.read_bytes()
    for cut in range(last + 1, len(full)):
        torn = full[:cut] + b"\x00" * extra
        path.write_bytes(torn)
        assert [s for _, s, _ in records(path)] == list(range(1, 8))
        with capture_logs() as logs, JournalWriter(path) as w:
            assert w.committed_seq == 7
            w.append_command(8, deposits(8, 1)[0])
        assert [(e["event"], e["offset"], e["dropped_bytes"]) for e in logs] == [
            ("journal torn tail truncated", last, len(torn) - last)
        ]
        assert records(path)[-1][:2] == (last, 8)


@pytest.mark.parametrize(
    ("field", "byte"),
    [("flag", 3), ("length", 0), ("seq", 4), ("count", 12), ("crc", 16), ("payload", 23)],
)
def test_flipped_bit_in_a_middle_batch_record_names_its_offset(
    tmp_path: Path, field: str, byte: int
) -> None:
    path = tmp_path / JOURNAL_FILE
    offsets = write_batches(path, [3, 4, 5, 2])
    bad = offsets[1]
    data = bytearray(path.read_bytes())
    data[bad + byte] ^= 0x10 if byte != 3 else 0x80  # "flag": it reads as a command record
    path.write_bytes(data)
    for action in (lambda: records(path), lambda: JournalWriter(path), lambda: scan_journal(path)):
        with pytest.raises(JournalCorruptError, match=f"byte offset {bad}:") as info:
            action()
        assert info.value.offset == bad
    assert path.read_bytes() == data


def test_command_records_and_batch_records_mix(tmp_path: Path) -> None:
    """A journal of the old format goes on with batch records, and may go back."""
    path = tmp_path / JOURNAL_FILE
    cmds = deposits(1, 9)
    with JournalWriter(path) as w:
        for c in cmds[:3]:
            w.append(c.seq, encode_command(c))
    with JournalWriter(path) as w:
        assert w.committed_seq == 3
        w.append_batch(4, list(cmds[3:6]))
        w.append_command(7, cmds[6])
        w.append(8, encode_command(cmds[7]))  # seals the open batch first
        w.append_command(9, cmds[8])
    walked = [(f, n, b) for _, f, n, _, b in JournalReader(path.read_bytes()).walk()]
    assert walked == [
        (1, 1, False),
        (2, 1, False),
        (3, 1, False),
        (4, 3, True),
        (7, 1, True),
        (8, 1, False),
        (9, 1, True),
    ]
    assert [p for _, _, p in records(path)] == [encode_command(c) for c in cmds]


def test_a_command_that_cannot_be_encoded_fails_the_writer(tmp_path: Path) -> None:
    """Structs are encoded at the commit, after the caller applied them: the writer
    stops for good (fail-stop) rather than journal part of a group."""
    path = tmp_path / JOURNAL_FILE
    w = JournalWriter(path)
    w.append_command(1, deposits(1, 1)[0])
    w.commit()
    w.append_command(2, Deposit(seq=2, user=1, asset="USDT", amount=2**70))
    with pytest.raises(JournalWriteError, match="cannot be journaled"):
        w.commit()
    with pytest.raises(JournalWriteError):
        w.append_command(3, deposits(3, 1)[0])
    w.close()
    assert [s for _, s, _ in records(path)] == [1]


def test_journaled_core_refuses_submits_after_a_failed_flush(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tradewind.core.commands import AddAsset
    from tradewind.journal.recovery import JournaledCore, recover

    jc = JournaledCore(tmp_path)
    jc.submit(AddAsset(asset="USDT", decimals=6))
    jc.flush()
    jc.submit(Deposit(user=1, asset="USDT", amount=5), validated=True)

    def full_disk(fd: int, data: object) -> int:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(JournalWriteError):
        jc.flush()
    monkeypatch.undo()
    seq = jc.last_seq
    for validated in (True, False):
        with pytest.raises(JournalWriteError, match="earlier journal write failed"):
            jc.submit(Deposit(seq=seq + 1, user=1, asset="USDT", amount=5), validated=validated)
    assert jc.last_seq == seq  # refused before the core applied it
    jc.abandon()
    assert recover(tmp_path).last_seq == 1
