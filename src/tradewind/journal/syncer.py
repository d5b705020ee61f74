"""A helper process that fsyncs the journal, so that the core's thread never shares the
GIL with the fsync (ADR 0048).

Invariant kept: :meth:`Syncer.poll` reports seq ``S`` durable only after an ``fsync``
that *started after* the writer asked for ``S`` returned 0. The writer asks for ``S``
only once its ``write`` of every byte up to ``S`` returned, so the bytes are in the
file's page cache before that fsync begins, and ``fsync`` flushes the file (the inode),
whichever descriptor it is called on. The helper holds its own read-only descriptor of
the journal (not the writer's, which carries the ``flock``: a helper outliving a killed
writer by a few milliseconds must not keep a restarted one out).

Why a process and not a thread: a thread needs the GIL each time its write, fsync or
queue wait returns, and a core thread that never blocks hands it over only at the
interpreter's switch interval, so every group commit cost several forced switches
(docs/performance.md). The helper needs no GIL of ours: the core thread writes the group
(page cache, microseconds), sends eight bytes down a pipe and reads the answer when the
pipe is readable.

Protocol: requests are 8-byte little-endian seqs; the helper reads whatever requests are
queued, fsyncs once, and answers the highest as ``seq u64, errno u32`` (errno 0: durable).
Writes of 8 and 12 bytes to a pipe are atomic, so reads always hold whole messages. After
a failed fsync the helper answers once and exits (the journal is failed for good). The
helper exits when its request pipe closes, which a killed writer's does too.
"""

from __future__ import annotations

import contextlib
import os
import select
import subprocess
import sys
from pathlib import Path

_CHILD = r"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is for the writer's shutdown
fd = int(sys.argv[1])
while True:
    b = os.read(0, 4096)
    if not b:
        break
    seq = max(int.from_bytes(b[i:i + 8], "little") for i in range(0, len(b), 8))
    try:
        os.fsync(fd)
        err = 0
    except OSError as e:
        err = e.errno or 5
    os.write(1, seq.to_bytes(8, "little") + err.to_bytes(4, "little"))
    if err:
        break
"""

_REPLY = 12


class SyncerGone(Exception):
    """The helper process is no longer there (killed, or it could not start)."""


class Syncer:
    """One helper process fsyncing one journal file; used from one thread."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            self._proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", _CHILD, str(fd)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                pass_fds=(fd,),
                bufsize=0,
            )
        finally:
            os.close(fd)
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._req = self._proc.stdin.fileno()
        self._rep = self._proc.stdout.fileno()
        os.set_blocking(self._rep, False)
        self.requested = 0
        """The highest seq asked for."""
        self.synced = 0
        """The highest seq the helper reported durable."""

    @property
    def pid(self) -> int:
        return self._proc.pid

    def fileno(self) -> int:
        """Readable when the helper has answered (or gone): for an event loop's reader."""
        return self._rep

    def request(self, seq: int) -> None:
        """Asks for an fsync covering everything written so far, reported as ``seq``."""
        try:
            os.write(self._req, seq.to_bytes(8, "little"))
        except OSError as e:  # EPIPE: the helper is gone
            raise SyncerGone(f"journal fsync helper (pid {self.pid}) is gone: {e}") from e
        self.requested = seq

    def poll(self) -> int:
        """The highest seq known durable, reading any answers without blocking.

        Raises :class:`OSError` with the helper's errno if its fsync failed, and
        :class:`SyncerGone` if it exited with requests unanswered."""
        try:
            data = os.read(self._rep, _REPLY * 256)
        except BlockingIOError:
            return self.synced
        if not data:
            if self.synced >= self.requested:
                return self.synced
            raise SyncerGone(f"journal fsync helper (pid {self.pid}) exited")
        for i in range(0, len(data), _REPLY):
            seq = int.from_bytes(data[i : i + 8], "little")
            err = int.from_bytes(data[i + 8 : i + _REPLY], "little")
            if err:
                raise OSError(err, f"fsync of {self.path}: {os.strerror(err)}")
            if seq > self.synced:
                self.synced = seq
        return self.synced

    def wait(self, seq: int) -> int:
        """Blocks until ``seq`` is durable; returns the highest seq known durable."""
        while self.poll() < seq:
            select.select([self._rep], [], [])
        return self.synced

    def close(self) -> None:
        """Lets the helper finish its fsync and exit (or kills it after a grace period)."""
        proc = self._proc
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
