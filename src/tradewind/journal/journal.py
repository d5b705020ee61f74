"""Append-only command journal with group commit.

Invariant kept: ``journal.twj`` is a run of records of two kinds (little-endian), each
covering a run of consecutive seqs, each run starting exactly one after the previous
record's last seq:

- a **command record** (format 1, every journal before ADR 0026):
  ``[length u32][seq u64][crc u32]`` then ``length`` payload bytes, the msgpack of one
  command; ``crc`` is the CRC32 of the eight seq bytes followed by the payload;
- a **batch record** (format 2, ADR 0026): ``[0x80000000 | length u32][first_seq u64]
  [count u32][crc u32]`` then ``length`` payload bytes, a msgpack array of ``count``
  commands with seqs ``first_seq .. first_seq + count - 1``; ``crc`` is the CRC32 of the
  seq and count bytes followed by the payload. A group commit writes its commands as one
  batch record (more if it holds over ``MAX_BATCH`` commands).

The top bit of the first word tells the kinds apart (a command record's length is at most
``MAX_PAYLOAD``, 2**24), so old journals read as before and a journal may mix both.
Everything up to the last ``commit()`` that returned is durable (written and fsynced),
and so is what ``start_commit()`` wrote once ``commit_done()`` says so (the fsync runs in
a helper process, :mod:`tradewind.journal.syncer`).
Only the tail after the last commit may be damaged by a crash; a damaged tail is cut off
with a warning (a torn batch record goes as a whole: none of its commands was
acknowledged), while damage that a valid record follows means data that was once
acknowledged is broken, and that raises :class:`JournalCorruptError` naming the byte
offset; it is never skipped.

The first record may carry any seq >= 1, so a journal can later be restarted after a
snapshot; recovery checks that the snapshot and the journal leave no hole between them.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import fcntl
import os
import struct
import threading
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import NoReturn

import msgspec
import structlog

from tradewind.journal.syncer import Syncer, SyncerGone

JOURNAL_FILE = "journal.twj"
"""File name of the journal inside a data directory."""

HEADER = struct.Struct("<IQI")
"""Command record header: payload length, seq, CRC32 of seq bytes + payload."""
HEADER_SIZE = HEADER.size
MAX_PAYLOAD = 16 * 1024 * 1024
"""A length field above this is damage, not a command (commands are tens of bytes)."""
BATCH_HEADER = struct.Struct("<IQII")
"""Batch record header: BATCH_FLAG | payload length, first seq, count, CRC32 of the seq
and count bytes + payload."""
BATCH_HEADER_SIZE = BATCH_HEADER.size
BATCH_FLAG = 0x8000_0000
MAX_BATCH = 4096
"""Commands per batch record at most: a record stays far below ``MAX_PAYLOAD`` (a
command's strings are bounded by the schema, so it encodes to well under 1 KiB)."""

_SEQ = struct.Struct("<Q")
_SEQ_PACK = _SEQ.pack
_SEQ_COUNT = struct.Struct("<QI")
_SEQ_COUNT_PACK = _SEQ_COUNT.pack
_HEADER_PACK = HEADER.pack
_BATCH_HEADER_PACK = BATCH_HEADER.pack
_CRC32 = zlib.crc32
_ZEROS = bytes(65536)
_LENGTH_MASK = BATCH_FLAG - 1
_encode_batch = msgspec.msgpack.Encoder().encode
"""Encodes a list of command structs (and ``msgspec.Raw`` already-encoded ones) as one
msgpack array, in one C call."""
_split_batch = msgspec.msgpack.Decoder(list[msgspec.Raw]).decode
"""A batch payload as one ``Raw`` (the exact msgpack bytes) per command."""

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
    """One framed command record (format 1), as it is stored in the file."""
    return HEADER.pack(len(payload), seq, record_crc(seq, payload)) + payload


def encode_batch_record(first_seq: int, payloads: list[bytes]) -> bytes:
    """One framed batch record (format 2) of already-encoded commands, seqs from
    ``first_seq`` on."""
    payload = _encode_batch([msgspec.Raw(p) for p in payloads])
    n = len(payloads)
    crc = _CRC32(payload, _CRC32(_SEQ_COUNT_PACK(first_seq, n)))
    return _BATCH_HEADER_PACK(BATCH_FLAG | len(payload), first_seq, n, crc) + payload


class JournalReader:
    """Walks the records of a journal image held in memory.

    Iterating yields ``(offset, seq, payload)`` per command, ``payload`` being a
    memoryview of that command's msgpack bytes (no copy) and ``offset`` the byte offset
    of the record holding it (a batch record's commands share its offset).
    :meth:`records` yields whole records instead, which is what recovery decodes.
    Iteration stops at a torn tail and raises :class:`JournalCorruptError` for damage in
    the middle or :class:`JournalSeqError` for a seq gap or regression. After a complete
    iteration ``valid_end``, ``first_seq``, ``last_seq``, ``records`` (commands) and
    ``tail_bytes`` describe what was found.
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
        for offset, first, count, payload, batch in self.walk():
            if not batch:
                yield offset, first, payload
                continue
            try:
                items = _split_batch(payload)
            except msgspec.DecodeError as e:
                raise JournalCorruptError(
                    self.path, offset, f"batch record seq {first} is not a msgpack array: {e}"
                ) from e
            if len(items) != count:
                raise JournalCorruptError(
                    self.path, offset, f"batch record holds {len(items)} commands, not {count}"
                )
            seq = first
            for raw in items:
                yield offset, seq, memoryview(raw)
                seq += 1

    def walk(self) -> Iterator[tuple[int, int, int, memoryview, bool]]:
        """Yields ``(offset, first_seq, count, payload, is_batch)`` per verified record:
        a command record has ``count`` 1 and one command's msgpack as payload, a batch
        record the msgpack array of its ``count`` commands."""
        mv = memoryview(self._data)
        end = len(mv)
        unpack = HEADER.unpack_from
        unpack_batch = BATCH_HEADER.unpack_from
        crc32 = zlib.crc32
        pack_seq = _SEQ_PACK  # the seq's own 8 bytes: cheaper than a view of the file's
        pack_seq_count = _SEQ_COUNT_PACK
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
                if length & BATCH_FLAG:
                    if end - pos < BATCH_HEADER_SIZE:
                        reason = "incomplete record header"
                        break
                    length, seq, n, crc = unpack_batch(mv, pos)
                    length &= _LENGTH_MASK
                    body = pos + BATCH_HEADER_SIZE
                    batch = True
                else:
                    n = 1
                    body = pos + HEADER_SIZE
                    batch = False
                stop = body + length
                if length > MAX_PAYLOAD:
                    reason = f"record length {length} exceeds the maximum"
                    break
                if stop > end:
                    reason = "incomplete record payload"
                    break
                payload = mv[body:stop]
                if batch:
                    if crc32(payload, crc32(pack_seq_count(seq, n))) != crc:
                        reason = "record CRC mismatch"
                        break
                    if n < 1:
                        raise JournalCorruptError(self.path, pos, "batch record of no command")
                elif crc32(payload, crc32(pack_seq(seq))) != crc:
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
                yield pos, seq, n, payload, batch
                prev = seq + n - 1
                count += n
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
    hole in the middle. A candidate (of either kind) must pass its CRC and carry a seq
    that could follow ``prev_seq`` given the room between the damage and the candidate
    (a lost command takes at least one byte); runs of zero bytes, which never hold a
    header (seq >= 1), are skipped at C speed.
    """
    end = len(mv)
    limit = end - HEADER_SIZE
    unpack = HEADER.unpack_from
    unpack_batch = BATCH_HEADER.unpack_from
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
        if length & BATCH_FLAG:
            if pos + BATCH_HEADER_SIZE <= end:
                length, seq, n, crc = unpack_batch(mv, pos)
                length &= _LENGTH_MASK
                stop = pos + BATCH_HEADER_SIZE + length
                if (
                    n >= 1
                    and length <= MAX_PAYLOAD
                    and stop <= end
                    and (prev_seq is None or prev_seq < seq <= prev_seq + 1 + pos - bad_offset)
                    and crc32(mv[pos + BATCH_HEADER_SIZE : stop], crc32(mv[pos + 4 : pos + 16]))
                    == crc
                ):
                    return pos, seq
        else:
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
    for _ in reader.walk():
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

    ``append_command`` only buffers a command (a struct, or its msgpack as
    ``msgspec.Raw``); ``commit`` encodes the buffered commands as one batch record
    (format 2: one msgpack array, one CRC) and writes the whole group with one ``write``
    and one ``fsync``, so a group costs one disk flush and one framing however many
    commands it holds. ``append`` buffers one command record of format 1 (already-encoded
    bytes; tools and tests). A command may be acknowledged only after the ``commit`` that
    covers it returned. ``append_batch`` may run in one thread while ``commit`` writes
    the previous group in another (a group commit overlapping the next group's apply);
    the other methods belong to one thread. A command that fails to encode at commit (a
    struct built in Python with an int beyond 64 bits: callers must append decoded or
    checked commands) fails the writer like a failed write. The writer holds an exclusive
    ``flock`` on the file. After a failed write or fsync the file may hold a partial group
    and the page cache state is unknown, so the writer refuses further use (fail-stop):
    the process must restart and recover.

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
        self._durable_end = end
        self._committed_seq = last_seq
        self._written_seq = last_seq
        self._last_seq = last_seq
        # (last seq, end offset) of each group start_commit wrote and no fsync covers yet
        self._unsynced: collections.deque[tuple[int, int]] = collections.deque()
        self._syncer: Syncer | None = None
        self._retired: list[Syncer] = []  # helpers that died, to close
        self._buf = bytearray()
        self._batch: list[object] = []
        self._pending = 0
        self._commit_lock = threading.Lock()
        self._swap_lock = threading.Lock()
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

    def append_command(self, seq: int, cmd: object) -> None:
        """Buffers one command for the group's batch record: a command struct (encoded
        at commit, with the rest of the group, in one call) or ``msgspec.Raw`` of its
        msgpack. ``seq`` must be exactly the previous seq + 1 (>= 1 if first) and the
        command must carry it."""
        # Written out (no helper calls): with the journal on, this runs once per command.
        if self._failed is not None or self._closed:
            self._check_usable()
        last = self._last_seq
        if (seq != last + 1) if last is not None else (seq < 1):
            raise ValueError(f"journal append: seq {seq} does not follow seq {last}")
        batch = self._batch
        batch.append(cmd)  # seqs last_seq - len(batch) + 1 .. last_seq
        self._last_seq = seq
        self._pending += 1
        if len(batch) >= MAX_BATCH:
            self._seal()

    def append_batch(self, first_seq: int, cmds: list[object]) -> None:
        """Buffers consecutive commands with seqs ``first_seq ..`` (structs or
        ``msgspec.Raw``, each carrying its seq) as batch records, encoded now in one call
        per record (``MAX_BATCH`` commands per record at most). ``first_seq`` must be
        exactly the previous seq + 1 (>= 1 if first)."""
        with self._swap_lock:  # a commit in another thread may be taking the buffer
            if self._failed is not None or self._closed:
                self._check_usable()
            last = self._last_seq
            if (first_seq != last + 1) if last is not None else (first_seq < 1):
                raise ValueError(f"journal append: seq {first_seq} does not follow seq {last}")
            if self._batch:
                self._seal()
            n = len(cmds)
            for start in range(0, n, MAX_BATCH):
                self._frame(
                    first_seq + start, cmds[start : start + MAX_BATCH] if n > MAX_BATCH else cmds
                )
            if n:
                self._last_seq = first_seq + n - 1
                self._pending += n

    def _seal(self) -> None:
        """Frames the commands ``append_command`` buffered as one batch record."""
        batch = self._batch
        self._frame(self._last_seq - len(batch) + 1, batch)  # type: ignore[operator]
        batch.clear()

    def _frame(self, first: int, batch: list[object]) -> None:
        """Encodes ``batch`` (seqs ``first ..``) as one batch record at the buffer's end."""
        n = len(batch)
        try:
            payload = _encode_batch(batch)
            if len(payload) > MAX_PAYLOAD:
                raise ValueError(f"batch of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
        except (TypeError, ValueError, OverflowError, msgspec.EncodeError) as e:
            # The caller applied these commands already and can neither journal nor
            # take them back: fail-stop, as after a failed write.
            self._failed = e
            raise JournalWriteError(
                f"{self.path}: a command of seq {first}.. cannot be journaled: {e}"
            ) from e
        buf = self._buf
        buf += _BATCH_HEADER_PACK(
            BATCH_FLAG | len(payload), first, n, _CRC32(payload, _CRC32(_SEQ_COUNT_PACK(first, n)))
        )
        buf += payload

    def append(self, seq: int, payload: bytes | memoryview) -> None:
        """Buffers one command record (format 1) of already-encoded bytes. ``seq`` must be
        exactly the previous seq + 1 (>= 1 if first)."""
        if self._failed is not None or self._closed:
            self._check_usable()
        last = self._last_seq
        if (seq != last + 1) if last is not None else (seq < 1):
            raise ValueError(f"journal append: seq {seq} does not follow seq {last}")
        if self._batch:
            self._seal()
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
        """Writes and fsyncs the buffered group; returns the last durable seq.

        The group's buffer is taken over first, so another thread may ``append_batch``
        the next group (into a fresh buffer) while this one writes and fsyncs; commits
        run one at a time, in order. It also makes durable what :meth:`start_commit`
        wrote before."""
        with self._commit_lock:
            taken = self._take()
            if taken is None:
                if self._written_seq != self._committed_seq:
                    self._fsync_here()
                return self._committed_seq
            buf, upto = taken
            self._write(buf, upto)
            self._fsync_here()
            return upto

    def start_commit(self) -> int | None:
        """Writes the buffered group and asks the journal's helper process to fsync it
        (ADR 0048); returns its last seq. Nothing is durable until :meth:`commit_done`
        says so. The caller's thread only writes to the page cache and a pipe, so it
        goes on at once; call this, :meth:`commit_done` and :meth:`wait_commit` from
        one thread. Without a helper (it could not start, or died) the fsync runs here."""
        with self._commit_lock:
            taken = self._take()
            if taken is None:
                return self._written_seq
            buf, upto = taken
            self._write(buf, upto)
            self._close_retired()
            syncer = self._syncer or self._start_syncer()
            try:
                if syncer is None:
                    raise SyncerGone("no journal fsync helper")
                syncer.request(upto)
            except SyncerGone as e:
                self._no_syncer(e)
                self._fsync_here()
            return upto

    def start_syncer(self) -> int | None:
        """Starts the fsync helper process now rather than at the first
        :meth:`start_commit`; returns its pid, or None if it cannot start (fsyncs then
        run in the writer)."""
        with self._commit_lock:
            self._check_usable()
            syncer = self._syncer or self._start_syncer()
            return None if syncer is None else syncer.pid

    def _start_syncer(self) -> Syncer | None:
        try:
            self._syncer = Syncer(self.path)
        except OSError as e:
            self._no_syncer(e)
            return None
        log.info("journal fsync helper started", path=str(self.path), pid=self._syncer.pid)
        return self._syncer

    def commit_done(self) -> bool:
        """Whether everything written is durable; reads the helper's answers without
        blocking. Raises :class:`JournalWriteError` if its fsync failed."""
        if self._written_seq == self._committed_seq:
            return True
        with self._commit_lock:
            self._poll_syncer(block=False)
        return self._written_seq == self._committed_seq

    def wait_commit(self) -> int | None:
        """Blocks until everything written is durable; returns the durable seq."""
        with self._commit_lock:
            if self._written_seq != self._committed_seq:
                self._poll_syncer(block=True)
        return self._committed_seq

    def commit_fileno(self) -> int | None:
        """A descriptor that turns readable when the helper answers (None: no helper)."""
        return None if self._syncer is None else self._syncer.fileno()

    def _poll_syncer(self, *, block: bool) -> None:
        syncer = self._syncer
        if syncer is None:  # a commit() made everything durable meanwhile
            return
        try:
            seq = syncer.wait(self._written_seq) if block else syncer.poll()  # type: ignore[arg-type]
        except SyncerGone as e:
            self._no_syncer(e)
            self._fsync_here()
            return
        except OSError as e:
            self._fail_write(e)
        if seq:
            self._synced(seq)

    def _no_syncer(self, why: BaseException) -> None:
        log.warning(
            "journal fsync helper unavailable; fsyncing in the writer",
            path=str(self.path),
            reason=str(why),
        )
        syncer, self._syncer = self._syncer, None
        if syncer is not None:
            # Closed at the next start_commit or close, not now: an event loop may still
            # watch its answer pipe (uvloop must not see a watched descriptor closed).
            self._retired.append(syncer)

    def _close_retired(self) -> None:
        while self._retired:
            with contextlib.suppress(OSError):
                self._retired.pop().close()

    def _take(self) -> tuple[bytearray, int] | None:
        """The buffered group and its last seq, leaving a fresh buffer (None: nothing)."""
        with self._swap_lock:
            self._check_usable()
            if not self._pending:
                return None
            if self._batch:
                self._seal()
            buf, upto = self._buf, self._last_seq
            self._buf = bytearray()
            self._pending = 0
        return buf, upto  # type: ignore[return-value]

    def _write(self, buf: bytearray, upto: int) -> None:
        data = memoryview(buf)
        try:
            written = 0
            while written < len(data):
                written += os.write(self._fd, data[written:])
        except OSError as e:
            self._fail_write(e)
        finally:
            data.release()
        self._end += len(buf)
        self._written_seq = upto
        self._unsynced.append((upto, self._end))

    def _fsync_here(self) -> None:
        try:
            os.fsync(self._fd)
        except OSError as e:
            self._fail_write(e)
        self._synced(self._written_seq)  # type: ignore[arg-type]

    def _synced(self, seq: int) -> None:
        """Everything written up to ``seq`` is durable."""
        unsynced = self._unsynced
        while unsynced and unsynced[0][0] <= seq:
            self._durable_end = unsynced.popleft()[1]
        if self._committed_seq is None or seq > self._committed_seq:
            self._committed_seq = seq

    def _fail_write(self, e: OSError) -> NoReturn:
        self._failed = e
        # Best effort: leave nothing behind that was not durable. Recovery would cut a
        # partial group anyway.
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, self._durable_end)
        raise JournalWriteError(f"{self.path}: journal write failed: {e}") from e

    def discard(self) -> int:
        """Drops the uncommitted group (what a crash does); returns how many records."""
        dropped = self._pending
        self._buf = bytearray()  # not clear(): a failed write's traceback may still view it
        self._batch.clear()
        self._pending = 0
        self._last_seq = self._written_seq  # what start_commit wrote is in the file
        return dropped

    def close(self, *, commit: bool = True) -> None:
        """Commits what is pending (unless ``commit=False``) and releases the file."""
        if self._closed:
            return
        try:
            if (
                commit
                and self._failed is None
                and (self._pending or self._written_seq != self._committed_seq)
            ):
                self.commit()
        finally:
            self._closed = True
            if self._syncer is not None:
                self._retired.append(self._syncer)
                self._syncer = None
            self._close_retired()
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
