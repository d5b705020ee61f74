"""Snapshot files: atomic, verified on read, damaged ones skipped, only the newest kept."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tradewind.core.commands import AddAsset, Deposit
from tradewind.core.engine import Core
from tradewind.journal.snapshot import (
    HEADER_SIZE,
    SnapshotError,
    latest_valid_snapshot,
    list_snapshots,
    read_snapshot,
    snapshot_name,
    write_snapshot,
)


def core_at(seq: int) -> Core:
    core = Core()
    core.apply(AddAsset(seq=1, asset="USDT", decimals=6))
    for s in range(2, seq + 1):
        core.apply(Deposit(seq=s, user=s % 3 + 1, asset="USDT", amount=s * 1_000))
    return core


def test_round_trip_restores_an_equal_core(tmp_path: Path) -> None:
    core = core_at(5)
    path = write_snapshot(tmp_path, 5, core.snapshot())
    assert path.name == "snapshot-00000000000000000005.tws" == snapshot_name(5)
    snap = read_snapshot(path)
    assert (snap.seq, snap.path) == (5, path)
    restored = Core.restore(snap.state)
    assert restored.state_hash() == core.state_hash()
    assert restored.seq == 5
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary left


def test_no_snapshot_gives_none(tmp_path: Path) -> None:
    assert latest_valid_snapshot(tmp_path) is None
    assert latest_valid_snapshot(tmp_path / "missing") is None


def test_only_the_newest_are_kept(tmp_path: Path) -> None:
    for seq in (10, 20, 30, 40, 50):
        write_snapshot(tmp_path, seq, core_at(seq).snapshot(), keep=3)
    assert [s for s, _ in list_snapshots(tmp_path)] == [50, 40, 30]
    latest = latest_valid_snapshot(tmp_path)
    assert latest is not None and latest.seq == 50


def test_leftover_temporary_files_are_ignored_and_cleaned(tmp_path: Path) -> None:
    (tmp_path / f".{snapshot_name(99)}.tmp").write_bytes(b"half written")
    write_snapshot(tmp_path, 7, core_at(7).snapshot())
    latest = latest_valid_snapshot(tmp_path)
    assert latest is not None and latest.seq == 7
    assert [p.name for p in tmp_path.iterdir()] == [snapshot_name(7)]


@pytest.mark.parametrize(
    "damage",
    ["flip_state", "flip_seq", "truncate", "empty", "bad_magic", "bad_version"],
)
def test_damaged_newest_falls_back_to_the_older_one(tmp_path: Path, damage: str) -> None:
    write_snapshot(tmp_path, 4, core_at(4).snapshot())
    newest = write_snapshot(tmp_path, 8, core_at(8).snapshot())
    data = bytearray(newest.read_bytes())
    if damage == "flip_state":
        data[-3] ^= 0x04
    elif damage == "flip_seq":
        data[12] ^= 0x01
    elif damage == "truncate":
        del data[len(data) // 2 :]
    elif damage == "empty":
        del data[:]
    elif damage == "bad_magic":
        data[0] ^= 0xFF
    else:
        data[8] = 99
    newest.write_bytes(data)
    with pytest.raises(SnapshotError, match=newest.name):
        read_snapshot(newest)
    with capture_logs() as logs:
        snap = latest_valid_snapshot(tmp_path)
    assert snap is not None and snap.seq == 4
    assert Core.restore(snap.state).state_hash() == core_at(4).state_hash()
    assert len(logs) == 1 and logs[0]["log_level"] == "warning"
    assert logs[0]["path"] == str(newest)


def test_renamed_file_is_refused(tmp_path: Path) -> None:
    """The seq in the header must match the name: a copied file must not pass for
    another point in the journal."""
    path = write_snapshot(tmp_path, 3, core_at(3).snapshot())
    other = path.rename(tmp_path / snapshot_name(9))
    with pytest.raises(SnapshotError, match="seq 3"):
        read_snapshot(other)


def test_header_is_magic_version_seq_crc(tmp_path: Path) -> None:
    state = core_at(2).snapshot()
    path = write_snapshot(tmp_path, 2, state)
    data = path.read_bytes()
    assert data[:8] == b"TWSNAP\r\n"
    assert data[HEADER_SIZE:] == state
