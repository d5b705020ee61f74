"""Atomic snapshots of the core's state.

Invariant kept: a file named ``snapshot-<seq:020d>.tws`` in the data directory is either
absent or complete: it is written to a temporary name, fsynced, renamed into place and the
directory fsynced, so a crash leaves the old set of snapshots or the new one, never a
half-written file under the final name. Its content is ``magic | version u32 | seq u64 |
crc u32 | state`` where ``crc`` is the CRC32 of the seq bytes followed by ``state`` (the
bytes of ``Core.snapshot()``) and ``seq`` is the last command the state includes. A file
that fails these checks (disk damage) is skipped in favour of an older one, never used.
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import structlog

from tradewind.journal.journal import fsync_dir

MAGIC = b"TWSNAP\r\n"
"""Eight bytes; the CR LF catches a file mangled by a text-mode copy."""
VERSION = 1
HEADER = struct.Struct("<8sIQI")
HEADER_SIZE = HEADER.size
DEFAULT_KEEP = 3

_NAME = re.compile(r"^snapshot-(\d{20})\.tws$")
_TMP = re.compile(r"^\.snapshot-\d{20}\.tws\.tmp$")
_SEQ = struct.Struct("<Q")

log = structlog.get_logger(__name__)


class SnapshotError(Exception):
    """A snapshot file that cannot be used; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A verified snapshot: the state after the command ``seq``."""

    seq: int
    path: Path
    state: bytes


def snapshot_name(seq: int) -> str:
    return f"snapshot-{seq:020d}.tws"


def encode_snapshot(seq: int, state: bytes) -> bytes:
    """The full file content for ``state`` taken after command ``seq``."""
    crc = zlib.crc32(state, zlib.crc32(_SEQ.pack(seq)))
    return HEADER.pack(MAGIC, VERSION, seq, crc) + state


def read_snapshot(path: Path) -> Snapshot:
    """Reads and verifies one snapshot file; raises :class:`SnapshotError` if unusable."""
    data = path.read_bytes()
    if len(data) < HEADER_SIZE:
        raise SnapshotError(f"{path}: truncated ({len(data)} bytes, header needs {HEADER_SIZE})")
    magic, version, seq, crc = HEADER.unpack_from(data)
    if magic != MAGIC:
        raise SnapshotError(f"{path}: not a snapshot (bad magic)")
    if version != VERSION:
        raise SnapshotError(f"{path}: unsupported snapshot version {version}")
    state = data[HEADER_SIZE:]
    if zlib.crc32(state, zlib.crc32(_SEQ.pack(seq))) != crc:
        raise SnapshotError(f"{path}: CRC mismatch (damaged or incomplete)")
    m = _NAME.match(path.name)
    if m is not None and int(m.group(1)) != seq:
        raise SnapshotError(f"{path}: header says seq {seq}, name says {int(m.group(1))}")
    return Snapshot(seq, path, state)


def list_snapshots(data_dir: Path) -> list[tuple[int, Path]]:
    """``(seq, path)`` of every snapshot file by name, newest first (content unchecked)."""
    found: list[tuple[int, Path]] = []
    try:
        entries = list(os.scandir(data_dir))
    except FileNotFoundError:
        return []
    for entry in entries:
        m = _NAME.match(entry.name)
        if m is not None and entry.is_file():
            found.append((int(m.group(1)), Path(entry.path)))
    found.sort(reverse=True)
    return found


def latest_valid_snapshot(data_dir: Path) -> Snapshot | None:
    """The newest snapshot that verifies; damaged ones are logged and skipped."""
    for _seq, path in list_snapshots(data_dir):
        try:
            return read_snapshot(path)
        except (SnapshotError, OSError) as e:
            log.warning("snapshot skipped", path=str(path), error=str(e))
    return None


def write_snapshot(data_dir: Path, seq: int, state: bytes, *, keep: int = DEFAULT_KEEP) -> Path:
    """Writes the snapshot atomically, then keeps only the newest ``keep`` snapshots.

    The caller must make sure the journal is durable up to ``seq`` first, so that the
    snapshot never holds a command the journal could lose.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    final = data_dir / snapshot_name(seq)
    tmp = data_dir / f".{final.name}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    try:
        data = memoryview(encode_snapshot(seq, state))
        written = 0
        while written < len(data):
            written += os.write(fd, data[written:])
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, final)
    fsync_dir(data_dir)
    prune_snapshots(data_dir, keep)
    return final


def prune_snapshots(data_dir: Path, keep: int = DEFAULT_KEEP) -> list[Path]:
    """Deletes all but the newest ``keep`` snapshot files; returns what it deleted.

    Whoever truncates the journal later must keep it back to the oldest kept snapshot,
    since recovery falls back to an older snapshot when a newer one is damaged.
    """
    removed = [path for _seq, path in list_snapshots(data_dir)[keep:]]
    # Leftovers of writes a crash interrupted (there is one writer, and it is done).
    removed += [Path(e.path) for e in os.scandir(data_dir) if _TMP.match(e.name)]
    for path in removed:
        path.unlink(missing_ok=True)
    if removed:
        fsync_dir(data_dir)
    return removed
