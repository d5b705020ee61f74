"""Recovery (newest valid snapshot + journal replay) and the journaled core.

Invariant kept: the state recovered from a data directory is exactly the state of a fresh
core that applied, in seq order, every command in the journal's valid prefix; that prefix
holds every command whose ``flush()`` returned. :class:`JournaledCore` keeps it by
buffering each command in the journal before applying it, and by making the journal
durable up to a seq before writing a snapshot of that seq. Any hole between snapshot and
journal, or damage inside the journal, stops recovery with a :class:`JournalCorruptError`
rather than producing a state that silently misses commands.
"""

from __future__ import annotations

import gc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import msgspec

from tradewind.core.codec import decode_command, encode_command_raw, trusted
from tradewind.core.commands import AnyCommand
from tradewind.core.engine import Core
from tradewind.core.events import Event
from tradewind.journal.journal import (
    JOURNAL_FILE,
    JournalCorruptError,
    JournalReader,
    JournalScan,
    JournalSeqError,
    JournalWriteError,
    JournalWriter,
    truncate_tail,
)
from tradewind.journal.snapshot import (
    DEFAULT_KEEP,
    SnapshotError,
    latest_valid_snapshot,
    write_snapshot,
)

DEFAULT_SNAPSHOT_EVERY = 100_000

_encode = encode_command_raw
_Raw = msgspec.Raw


@dataclass(frozen=True, slots=True)
class RecoveryResult:
    """What :func:`recover` rebuilt.

    ``last_seq`` is the seq of the last command in the recovered state (0 if none),
    ``replayed`` how many journal records were applied on top of the snapshot,
    ``truncated_bytes`` the size of the torn tail (cut off when ``repair`` was set,
    otherwise only found), ``snapshot_seq`` the seq of the snapshot used, None if none.
    """

    core: Core
    last_seq: int
    replayed: int
    truncated_bytes: int
    snapshot_seq: int | None
    journal: JournalScan


def recover(data_dir: Path, *, repair: bool = True) -> RecoveryResult:
    """Rebuilds the core from ``data_dir``: newest valid snapshot, then the journal after it.

    With ``repair`` a torn journal tail is truncated (and logged); without it the data
    directory is left untouched (for ``verify`` on a directory a live writer may hold).
    Raises :class:`JournalCorruptError` for damage in the middle of the journal, a seq
    gap, a record that does not decode, or a hole between snapshot and journal, and
    :class:`SnapshotError` for a snapshot that verifies but the core cannot restore.
    """
    snap = latest_valid_snapshot(data_dir)
    if snap is not None:
        try:
            core = Core.restore(snap.state)
        except (ValueError, TypeError, KeyError, msgspec.DecodeError) as e:
            raise SnapshotError(f"{snap.path}: the core cannot restore it: {e!r}") from e
        base = snap.seq
        if core.seq != base:
            raise SnapshotError(f"{snap.path}: state is at seq {core.seq}, file says {base}")
    else:
        core = Core()
        base = 0

    path = data_dir / JOURNAL_FILE
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        data = b""
    reader = JournalReader(data, path)
    snap_seq = snap.seq if snap is not None else None
    # Replay allocates nothing cyclic worth collecting, and with a large book the
    # collector's full passes walk every resting order again and again: it stays off
    # until the replay is over (and is back on whatever happens).
    gc_was_on = gc.isenabled()
    gc.disable()
    # Nobody reads the events of a replay: the hot paths skip building them, unless
    # margin is on (its settlement reads them; enabling margin turns them back on).
    core.events_on = core.margin_on
    try:
        expected = _replay(reader, core, base + 1, path, snap_seq)
    finally:
        core.events_on = True
        if gc_was_on:
            gc.enable()
    if reader.last_seq is not None and reader.last_seq < base:
        raise JournalSeqError(
            path,
            reader.valid_end,
            f"journal ends at seq {reader.last_seq}, before snapshot seq {base}: "
            "the journal lost commands the snapshot holds",
        )
    scan = JournalScan(
        str(path),
        reader.size,
        reader.valid_end,
        reader.first_seq,
        reader.last_seq,
        reader.records,
        reader.tail_reason,
    )
    if repair and scan.tail_bytes:
        truncate_tail(path, scan.valid_end, scan.file_size, scan.tail_reason)
        scan = JournalScan(
            scan.path, scan.valid_end, scan.valid_end, scan.first_seq, scan.last_seq, scan.records
        )
    return RecoveryResult(
        core=core,
        last_seq=expected - 1,
        replayed=expected - 1 - base,
        truncated_bytes=reader.tail_bytes,
        snapshot_seq=snap.seq if snap is not None else None,
        journal=scan,
    )


def _replay(
    reader: JournalReader, core: Core, expected: int, path: Path, snap_seq: int | None
) -> int:
    """Applies the reader's records from seq ``expected`` on; returns the next seq due.

    A batch record is decoded in one call (a msgpack array of commands: one decoder
    entry, no per-command framing); a command record of an old journal one by one. Both
    decode into the trusted twins (``tradewind.core.codec``): the CRC verified the
    record, and its constraints were checked when it was written.
    """
    twins = trusted()
    core.dispatch_as(twins.types)
    apply = core.apply
    decode = twins.decode
    decode_batch = twins.decode_batch
    for offset, first, count, payload, batch in reader.walk():
        if first != expected:
            if first + count <= expected:
                continue  # already in the snapshot
            if first > expected:
                raise JournalSeqError(
                    path,
                    offset,
                    f"journal resumes at seq {first} but the state is at seq {expected - 1} "
                    f"(snapshot seq {snap_seq}): commands are missing",
                )
        if batch:
            try:
                cmds = decode_batch(payload)
            except (msgspec.DecodeError, msgspec.ValidationError) as e:
                raise JournalCorruptError(
                    path, offset, f"batch record seq {first} does not decode: {e}"
                ) from e
            if len(cmds) != count:
                raise JournalCorruptError(
                    path, offset, f"batch record holds {len(cmds)} commands, not {count}"
                )
            if first < expected:  # a snapshot taken inside the batch
                del cmds[: expected - first]
            for cmd in cmds:
                if cmd.seq != expected:
                    raise JournalSeqError(
                        path, offset, f"record seq {expected} holds a command stamped seq {cmd.seq}"
                    )
                apply(cmd)
                expected += 1
            continue
        try:
            cmd = decode(payload)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise JournalCorruptError(
                path, offset, f"record seq {first} does not decode: {e}"
            ) from e
        if cmd.seq != first:
            raise JournalSeqError(
                path, offset, f"record seq {first} holds a command stamped seq {cmd.seq}"
            )
        apply(cmd)
        expected += 1
    return expected


class JournaledCore:
    """A :class:`Core` whose commands are journaled, with periodic snapshots.

    ``submit`` stamps the next seq (unless the command carries it already), buffers the
    command in the journal, applies it and returns its events. Those events must not
    leave the process, and the client must not hear "accepted", before a ``flush()``
    covering the command returned: ``flush`` is the group commit (one write + fsync).
    The caller stamps ``ts``: this layer reads no clock. If a journal write fails, the
    in-memory core is ahead of the disk, so every later call raises
    :class:`~tradewind.journal.journal.JournalWriteError` and the process must restart.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        snapshot_every: int = DEFAULT_SNAPSHOT_EVERY,
        keep_snapshots: int = DEFAULT_KEEP,
    ) -> None:
        if snapshot_every < 1:
            raise ValueError("snapshot_every must be at least 1")
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.snapshot_every = snapshot_every
        self.keep_snapshots = keep_snapshots
        self.recovery = recover(data_dir, repair=True)
        self._core = self.recovery.core
        self._writer = JournalWriter(data_dir / JOURNAL_FILE, expect=self.recovery.journal)
        self._snapshot_seq = self.recovery.snapshot_seq or 0
        # Commands submitted since the last flush, handed to the writer as one batch
        # record at the flush: a list append per command is all the journal costs
        # before it. After a failed flush, appending raises instead.
        self._batch: list[object] = []
        self._append: Callable[[object], None] = self._batch.append

    @property
    def core(self) -> Core:
        """The live core (read it, never ``apply`` to it directly)."""
        return self._core

    @property
    def last_seq(self) -> int:
        """Seq of the last submitted command (durable or not)."""
        return self._core.seq

    @property
    def durable_seq(self) -> int:
        """Seq of the last command that is on disk; only those may be acknowledged."""
        committed = self._writer.committed_seq
        return self._snapshot_seq if committed is None else max(committed, self._snapshot_seq)

    def submit(self, cmd: AnyCommand, *, validated: bool = False) -> list[Event]:
        """Journals (buffered) and applies one command; returns its events.

        Raises ValueError, changing nothing, for a command that is out of seq or fails
        the command schema (which the journal could not replay). ``validated=True`` says
        the command came out of a msgspec decoder (command file, bus message), which
        already enforced the schema, and skips the re-decode; such a command is encoded
        only at the ``flush``, with its group, so one that cannot be encoded after all
        fails that flush and the journal for good (fail-stop), never a replay.
        """
        core = self._core
        seq = core.seq + 1
        if validated and cmd.seq == seq:  # the hot path: a decoded command, stamped
            # Encoded at the flush with the rest of the group (one call for the batch).
            self._append(cmd)
            return core.apply(cmd)
        if cmd.seq != seq:
            if cmd.seq:
                raise ValueError(f"command seq {cmd.seq} is not the next seq {seq}")
            cmd = msgspec.structs.replace(cmd, seq=seq)
        if validated:
            self._append(cmd)
            return core.apply(cmd)
        try:
            payload = _encode(cmd)
        except (OverflowError, msgspec.EncodeError) as e:  # e.g. an int beyond 64 bits
            raise ValueError(f"invalid command: {e}") from e
        try:
            # Apply exactly what replay will decode; a struct built in Python skips
            # msgspec's checks, and a record that cannot decode would stop every restart.
            cmd = decode_command(payload)
        except msgspec.ValidationError as e:
            raise ValueError(f"invalid command: {e}") from e
        self._append(_Raw(payload))
        return core.apply(cmd)

    def flush(self) -> int:
        """Makes every submitted command durable (group commit); returns the durable seq.

        Takes a snapshot afterwards when ``snapshot_every`` commands passed since the last.
        """
        self._commit()
        if self._core.seq - self._snapshot_seq >= self.snapshot_every:
            self.snapshot_now()
        return self.durable_seq

    def _commit(self) -> None:
        """Hands the submitted batch to the writer and commits it (write + fsync)."""
        self.seal()
        try:
            self._writer.commit()
        except BaseException as e:
            self._fail(e)
            raise

    def seal(self) -> int:
        """Frames the commands submitted so far as the next group (one batch record, in
        the writer's buffer); returns their last seq."""
        batch = self._batch
        if batch:
            try:
                self._writer.append_batch(self._core.seq - len(batch) + 1, batch)
            except BaseException as e:
                self._fail(e)
                raise
            batch.clear()
        return self._core.seq

    def start_commit(self) -> int:
        """Starts the group commit of the commands submitted so far and returns their
        last seq: they are written now and fsynced by the journal's helper process
        (ADR 0048) while the caller goes on submitting the next group. They may be
        acknowledged once :meth:`commit_done` (non-blocking) or :meth:`wait_commit`
        says so; ``commit_fileno`` turns readable when that may have changed."""
        self.seal()
        try:
            self._writer.start_commit()
        except BaseException as e:
            self._fail(e)
            raise
        return self._core.seq

    def commit_done(self) -> bool:
        """Whether every started commit is durable (see :meth:`start_commit`)."""
        try:
            return self._writer.commit_done()
        except BaseException as e:
            self._fail(e)
            raise

    def wait_commit(self) -> int:
        """Blocks until every started commit is durable; returns the durable seq."""
        try:
            self._writer.wait_commit()
        except BaseException as e:
            self._fail(e)
            raise
        return self.durable_seq

    def start_syncer(self) -> int | None:
        """Starts the journal's fsync helper process (else the first ``start_commit``
        does); returns its pid, or None if it cannot start."""
        return self._writer.start_syncer()

    def commit_fileno(self) -> int | None:
        """Readable when the helper answered (None: no helper, nothing to wait for)."""
        return self._writer.commit_fileno()

    @property
    def snapshot_due(self) -> bool:
        """Whether ``snapshot_every`` commands passed since the last snapshot."""
        return self._core.seq - self._snapshot_seq >= self.snapshot_every

    def _fail(self, error: BaseException) -> None:
        """The core is ahead of the disk for good: every later submit raises."""
        self._batch.clear()
        path = self._writer.path

        def refuse(_cmd: object) -> None:
            raise JournalWriteError(f"{path}: an earlier journal write failed ({error})")

        self._append = refuse

    def snapshot_now(self) -> Path:
        """Commits the journal, then writes a snapshot of the current state."""
        self._commit()
        seq = self._core.seq
        path = write_snapshot(self.data_dir, seq, self._core.snapshot(), keep=self.keep_snapshots)
        self._snapshot_seq = seq
        return path

    def close(self) -> None:
        """Commits what is pending and releases the journal."""
        try:
            if self._batch:
                self._commit()
        finally:
            self._writer.close(commit=True)

    def abandon(self) -> int:
        """Releases the journal without committing (as a crash would); returns dropped count."""
        dropped = len(self._batch) + self._writer.discard()
        self._batch.clear()
        self._writer.close(commit=False)
        return dropped

    def __enter__(self) -> JournaledCore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()
