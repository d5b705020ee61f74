"""Append-only command journal with group commit.

Invariant kept: ``journal.twj`` is a run of records, each ``[length u32][seq u64][crc u32]``
(little-endian) followed by ``length`` payload bytes, where ``crc`` is the CRC32 of the
eight seq bytes followed by the payload, and each record's seq is exactly one more than
the previous record's. Everything up to the last ``commit()`` that returned is durable
(written and fsynced). Only the tail after the last commit may be damaged by a crash; a
damaged tail is cut off with a warning, while damage that a valid record follows means
data that was once acknowledged is broken, and that raises :class:`JournalCorruptError`
naming the byte offset; it is never skipped.

The first record may carry any seq >= 1, so a journal can later be restarted after a
snapshot; recovery checks that the snapshot and the journal leave no hole between them.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import structlog

JOURNAL_FILE = "journal.twj"
"""File name of the journal inside a data directory."""

HEADER = struct.Struct("<IQI")
"""Record header: payload length, seq, CRC32 of seq bytes + payload."""
HEADER_SIZE = HEADER.size
MAX_PAYLOAD = 16 * 1024 * 1024
"""A length field above this is damage, not a command (commands are tens of bytes)."""

_SEQ = struct.Struct("<Q")
_SEQ_PACK = _SEQ.pack
_HEADER_PACK = HEADER.pack
_CRC32 = zlib.crc32
_ZEROS = bytes(65536)

log = structlog.get_logger(__name__)


class JournalError(Exception):
    """Base of every journal failure."""


class JournalCorruptError(JournalError):
    """Damage that is not a torn tail: a record that cannot be trusted, with data after it.

    ``offset`` is the byte offset of the first record that does not verify.
    """

    def __init__(self, path: str | os.PathLike[str], offset: int, detail: str) -> None:
        self.path = str(path)
        self.offset = offset
        self.detail = detail
        super().__init__(f"{self.path}: corrupt journal at byte offset {offset}: {detail}")


class JournalSeqError(JournalCorruptError):
    """A record whose seq is not exactly one more than the previous record's."""


class JournalLockedError(JournalError):
    """Another writer holds the journal: two writers would interleave records."""


class JournalWriteError(JournalError):
    """A write or fsync failed. The writer is unusable; restart and recover from disk."""


def record_crc(seq: int, payload: bytes | memoryview) -> int:
    """CRC32 of the seq (u64 little-endian) followed by the payload."""
    return zlib.crc32(payload, zlib.crc32(_SEQ.pack(seq)))


def encode_record(seq: int, payload: bytes | memoryview) -> bytes:
    """One framed record, as it is stored in the file."""
    return HEADER.pack(len(payload), seq, record_crc(seq, payload)) + payload


class JournalReader:
    """Walks the records of a journal image held in memory.

    Iterating yields ``(offset, seq, payload)`` with ``payload`` a memoryview into the
    image (no copy: recovery decodes straight from it). Iteration stops at a torn tail and
    raises :class:`JournalCorruptError` for damage in the middle or :class:`JournalSeqError`
    for a seq gap or regression. After a complete iteration ``valid_end``, ``first_seq``,
    ``last_seq``, ``records`` and ``tail_bytes`` describe what was found.
    """

    def __init__(self, data: bytes | bytearray | memoryview, path: str | os.PathLike[str] = "-"):
        self._data = data
        self.path = str(path)
        self.size = len(data)
        self.valid_end = 0
        self.first_seq: int | None = None
        self.last_seq: int | None = None
        self.records = 0
        self.tail_bytes = 0
        self.tail_reason = ""

    def __iter__(self) -> Iterator[tuple[int, int, memoryview]]:
        mv = memoryview(self._data)
        end = len(mv)
        unpack = HEADER.unpack_from
        crc32 = zlib.crc32
        pack_seq = _SEQ_PACK  # the seq's own 8 bytes: cheaper than a view of the file's
        pos = 0
        prev: int | None = None
        count = 0
        reason = ""
        try:
            while pos < end:
                if end - pos < HEADER_SIZE:
                    reason = "incomplete record header"
                    break
                length, seq, crc = unpack(mv, pos)
                body = pos + HEADER_SIZE
                stop = body + length
                if length > MAX_PAYLOAD:
                    reason = f"record length {length} exceeds the maximum"
                    break
                if stop > end:
                    reason = "incomplete record payload"
                    break
                payload = mv[body:stop]
                if crc32(payload, crc32(pack_seq(seq))) != crc:
                    reason = "record CRC mismatch"
                    break
                if prev is None:
                    if seq < 1:
                        raise JournalSeqError(self.path, pos, "record seq 0 (seq starts at 1)")
                    self.first_seq = seq
                elif seq != prev + 1:
                    kind = "gap" if seq > prev else "regression"
                    raise JournalSeqError(
                        self.path, pos, f"seq {kind}: record seq {seq} follows seq {prev}"
                    )
                yield pos, seq, payload
                prev = seq
                count += 1
                pos = stop
        finally:
            self.valid_end = pos
            self.last_seq = prev
            self.records = count
        if pos < end:
            found = find_valid_record(mv, pos + 1, pos, prev)
            if found is not None:
                at, seq = found
                raise JournalCorruptError(
                    self.path,
                    pos,
                    f"{reason}, and a valid record (seq {seq}) follows at offset {at}",
                )
            self.tail_bytes = end - pos
            self.tail_reason = reason


def find_valid_record(
    mv: memoryview, start: int, bad_offset: int, prev_seq: int | None
) -> tuple[int, int] | None:
    """First position at or after ``start`` holding a record that verifies, or None.

    Decides whether damage at ``bad_offset`` is a torn tail (nothing valid after it) or a
    hole in the middle. A candidate must pass its CRC and carry a seq that could follow
    ``prev_seq`` given the room between the damage and the candidate; runs of zero bytes,
    which never hold a header (seq >= 1), are skipped at C speed.
    """
    end = len(mv)
    limit = end - HEADER_SIZE
    unpack = HEADER.unpack_from
    crc32 = zlib.crc32
    pos = start
    while pos <= limit:
        length, seq, crc = unpack(mv, pos)
        if seq == 0:
            nonzero = _next_nonzero(mv, pos + 4)
            if nonzero is None:
                return None
            pos = max(pos + 1, nonzero - 11)
            continue
        stop = pos + HEADER_SIZE + length
        if (
            length <= MAX_PAYLOAD
            and stop <= end
            and (
                prev_seq is None
                or prev_seq < seq <= prev_seq + 1 + (pos - bad_offset) // HEADER_SIZE
            )
            and crc32(mv[pos + HEADER_SIZE : stop], crc32(mv[pos + 4 : pos + 12])) == crc
        ):
            return pos, seq
        pos += 1
    return None


def _next_nonzero(mv: memoryview, pos: int) -> int | None:
    """Offset of the first non-zero byte at or after ``pos``; memcmp over 64 KiB chunks."""
    end = len(mv)
    while pos < end:
        chunk = bytes(mv[pos : pos + len(_ZEROS)])
        if chunk != _ZEROS[: len(chunk)]:
            return pos + len(chunk) - len(chunk.lstrip(b"\x00"))
        pos += len(chunk)
    return None


def read_journal(path: str | os.PathLike[str]) -> Iterator[tuple[int, int, bytes]]:
    """Yields ``(offset, seq, payload)`` for every valid record; a torn tail ends it.

    Read-only: the file is never changed (a writer or recovery truncates tails). Raises
    :class:`JournalCorruptError` at damage in the middle. A missing file has no records.
    """
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        return
    for offset, seq, payload in JournalReader(data, path):
        yield offset, seq, bytes(payload)


@dataclass(frozen=True, slots=True)
class JournalScan:
    """What a full read of a journal found: where valid data ends and its seq range."""

    path: str
    file_size: int
    valid_end: int
    first_seq: int | None
    last_seq: int | None
    records: int
    tail_reason: str = ""

    @property
    def tail_bytes(self) -> int:
        return self.file_size - self.valid_end


def scan_journal(path: str | os.PathLike[str]) -> JournalScan:
    """Verifies every record of the file (without changing it)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        data = b""
    return _scan(data, path)


def _scan(data: bytes, path: str | os.PathLike[str]) -> JournalScan:
    reader = JournalReader(data, path)
    for _ in reader:
        pass
    return JournalScan(
        str(path),
        reader.size,
        reader.valid_end,
        reader.first_seq,
        reader.last_seq,
        reader.records,
        reader.tail_reason,
    )


def _lock(fd: int, path: str | os.PathLike[str]) -> None:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise JournalLockedError(f"{path}: journal is open by another writer") from e
        raise


def truncate_tail(
    path: str | os.PathLike[str], valid_end: int, expected_size: int, reason: str = ""
) -> None:
    """Cuts a torn tail off a journal no writer holds, and makes the cut durable.

    ``expected_size`` guards against a file that changed since it was scanned: a writer
    appending meanwhile would otherwise lose records that it has acknowledged.
    """
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        _lock(fd, path)
        size = os.fstat(fd).st_size
        if size != expected_size:
            raise JournalError(
                f"{path}: journal changed while being recovered ({expected_size} -> {size} "
                "bytes); is another process writing it?"
            )
        os.ftruncate(fd, valid_end)
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock
    log.warning(
        "journal torn tail truncated",
        path=str(path),
        offset=valid_end,
        dropped_bytes=expected_size - valid_end,
        reason=reason,
    )


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Makes a directory entry (a created, renamed or removed file) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalWriter:
    """The single writer of a journal file: buffers records and commits them in groups.

    ``append`` only buffers; ``commit`` writes the whole group with one ``write`` and one
    ``fsync``, so a batch costs one disk flush however many commands it holds. A command
    may be acknowledged only after the ``commit`` that covers it returned. The writer holds
    an exclusive ``flock`` on the file. After a failed write or fsync the file may hold a
    partial group and the page cache state is unknown, so the writer refuses further use
    (fail-stop): the process must restart and recover.

    Opening scans the file: a torn tail is truncated (logged with offset and bytes
    dropped), damage in the middle raises :class:`JournalCorruptError`. ``expect`` skips
    the scan when the caller has just scanned the same file (recovery); the file size is
    checked against it under the lock.
    """

    def __init__(self, path: str | os.PathLike[str], *, expect: JournalScan | None = None):
        self.path = Path(path)
        existed = self.path.exists()
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            _lock(self._fd, self.path)
            if not existed:
                fsync_dir(self.path.parent)
            size = os.fstat(self._fd).st_size
            if expect is not None and expect.tail_bytes == 0:
                if size != expect.valid_end:
                    raise JournalError(
                        f"{self.path}: journal changed since it was recovered "
                        f"({expect.valid_end} -> {size} bytes); is another process writing it?"
                    )
                end, last_seq = expect.valid_end, expect.last_seq
            else:
                with open(self._fd, "rb", closefd=False) as f:
                    f.seek(0)
                    data = f.read()
                scan = _scan(data, self.path)
                if scan.tail_bytes:
                    os.ftruncate(self._fd, scan.valid_end)
                    os.fsync(self._fd)
                    log.warning(
                        "journal torn tail truncated",
                        path=str(self.path),
                        offset=scan.valid_end,
                        dropped_bytes=scan.tail_bytes,
                        reason=scan.tail_reason,
                    )
                end, last_seq = scan.valid_end, scan.last_seq
            os.lseek(self._fd, end, os.SEEK_SET)
        except BaseException:
            os.close(self._fd)
            raise
        self._end = end
        self._committed_seq = last_seq
        self._last_seq = last_seq
        self._buf = bytearray()
        self._pending = 0
        self._failed: BaseException | None = None
        self._closed = False

    @property
    def committed_seq(self) -> int | None:
        """Seq of the last durable record (None for an empty journal)."""
        return self._committed_seq

    @property
    def last_seq(self) -> int | None:
        """Seq of the last appended record, committed or not."""
        return self._last_seq

    @property
    def pending(self) -> int:
        """Records appended since the last commit."""
        return self._pending

    @property
    def end_offset(self) -> int:
        """Byte offset where the next committed group will start."""
        return self._end

    def _check_usable(self) -> None:
        if self._closed:
            raise JournalError(f"{self.path}: journal writer is closed")
        if self._failed is not None:
            raise JournalWriteError(
                f"{self.path}: an earlier write failed ({self._failed}); restart and recover"
            )

    def append(self, seq: int, payload: bytes | memoryview) -> None:
        """Buffers one record. ``seq`` must be exactly the previous seq + 1 (>= 1 if first)."""
        # Written out (no helper calls): with the journal on, this runs once per command.
        if self._failed is not None or self._closed:
            self._check_usable()
        last = self._last_seq
        if (seq != last + 1) if last is not None else (seq < 1):
            raise ValueError(f"journal append: seq {seq} does not follow seq {last}")
        n = len(payload)
        if n > MAX_PAYLOAD:
            raise ValueError(f"journal append: payload of {n} bytes exceeds {MAX_PAYLOAD}")
        buf = self._buf
        buf += _HEADER_PACK(n, seq, _CRC32(payload, _CRC32(_SEQ_PACK(seq))))
        buf += payload
        self._last_seq = seq
        self._pending += 1

    def append_many(self, records: Iterable[tuple[int, bytes | memoryview]]) -> None:
        """Buffers several ``(seq, payload)`` records; commit them with :meth:`commit`."""
        for seq, payload in records:
            self.append(seq, payload)

    def commit(self) -> int | None:
        """Writes and fsyncs the buffered group; returns the last durable seq."""
        self._check_usable()
        if not self._pending:
            return self._committed_seq
        data = memoryview(self._buf)
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
            os.fsync(self._fd)
        except OSError as e:
            self._failed = e
            # Best effort: leave no partial group behind. Recovery would cut it anyway.
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._end)
            raise JournalWriteError(f"{self.path}: journal write failed: {e}") from e
        finally:
            data.release()
        self._end += len(self._buf)
        self._buf.clear()
        self._pending = 0
        self._committed_seq = self._last_seq
        return self._committed_seq

    def discard(self) -> int:
        """Drops the uncommitted group (what a crash does); returns how many records."""
        dropped = self._pending
        self._buf.clear()
        self._pending = 0
        self._last_seq = self._committed_seq
        return dropped

    def close(self, *, commit: bool = True) -> None:
        """Commits what is pending (unless ``commit=False``) and releases the file."""
        if self._closed:
            return
        try:
            if commit and self._failed is None and self._pending:
                self.commit()
        finally:
            self._closed = True
            os.close(self._fd)

    def __enter__(self) -> JournalWriter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # On an exception, do not make a half-done batch durable.
        self.close(commit=exc_type is None)
