"""The journal's fsync helper process (ADR 0048): a group is reported durable only after
the helper's fsync of it returned; a failed fsync fails the journal; a helper that dies
leaves the writer fsyncing by itself; a killed writer's helper does not keep the journal
locked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from tradewind.journal.journal import (
    JOURNAL_FILE,
    JournalWriteError,
    JournalWriter,
    read_journal,
)
from tradewind.journal.syncer import Syncer, SyncerGone


def gone(pid: int, timeout: float = 5.0) -> bool:
    """Whether process ``pid`` has exited (a zombie counts: it holds no files)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().split(") ", 1)[1].startswith("Z"):
                    return True
        except FileNotFoundError:
            return True
        time.sleep(0.01)
    return False


def test_the_helper_answers_the_highest_seq_asked_after_its_fsync(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    s = Syncer(path)
    try:
        assert s.poll() == 0
        s.request(3)
        s.request(7)
        assert s.wait(7) == 7
        assert s.poll() == 7
    finally:
        s.close()
    assert gone(s.pid, 0.1)


def test_a_failed_fsync_is_reported_with_its_errno() -> None:
    s = Syncer("/dev/null")  # fsync of a character device: EINVAL
    try:
        s.request(1)
        with pytest.raises(OSError, match="fsync of /dev/null") as e:
            s.wait(1)
        assert e.value.errno == 22
    finally:
        s.close()


def test_a_killed_helper_is_reported_gone(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x")
    s = Syncer(path)
    try:
        os.kill(s.pid, signal.SIGSTOP)
        s.request(1)
        os.kill(s.pid, signal.SIGKILL)
        with pytest.raises(SyncerGone):
            s.wait(1)
    finally:
        s.close()


def test_start_commit_is_durable_only_once_the_helper_answered(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    with JournalWriter(path) as w:
        w.append(1, b"one")
        assert w.commit() == 1
        pid = w.start_syncer()
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)
        w.append_command(2, b"\xc0")  # msgpack nil, as a raw payload would be
        w.append(3, b"three")
        assert w.start_commit() == 3
        assert [seq for _, seq, _ in read_journal(path)] == [1, 2, 3]  # written ...
        time.sleep(0.05)
        assert not w.commit_done()  # ... not durable: the helper is stopped
        assert w.committed_seq == 1
        os.kill(pid, signal.SIGCONT)
        assert w.wait_commit() == 3
        assert w.commit_done() and w.committed_seq == 3
        w.append(4, b"four")
        w.start_commit()
    # close() made the last group durable and stopped the helper
    assert gone(pid)
    assert [seq for _, seq, _ in read_journal(path)] == [1, 2, 3, 4]


def test_a_dead_helper_leaves_the_writer_fsyncing_itself(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    with JournalWriter(path) as w:
        pid = w.start_syncer()
        assert pid is not None
        os.kill(pid, signal.SIGKILL)
        assert gone(pid)
        w.append(1, b"one")
        with capture_logs() as logs:
            assert w.start_commit() == 1
            assert w.commit_done()  # fsynced here, at once
        assert w.committed_seq == 1
        assert "journal fsync helper unavailable; fsyncing in the writer" in [
            e["event"] for e in logs
        ]
        # the next group gets a new helper
        w.append(2, b"two")
        w.start_commit()
        assert w.wait_commit() == 2
        assert w.start_syncer() not in (None, pid)


def test_a_failed_fsync_in_the_helper_fails_the_writer(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    with JournalWriter(path) as w:
        w.append(1, b"one")
        w.commit()
        w._syncer = Syncer("/dev/null")  # its fsyncs fail with EINVAL
        w.append(2, b"two")
        w.start_commit()
        with pytest.raises(JournalWriteError, match="Invalid argument"):
            w.wait_commit()
        assert w.committed_seq == 1
        with pytest.raises(JournalWriteError, match="an earlier write failed"):
            w.append(3, b"three")
    # the group whose fsync failed was cut again (best effort): 1 was durable
    assert [seq for _, seq, _ in read_journal(path)] == [1]


WRITER = """
import os, sys
from tradewind.journal.journal import JournalWriter
w = JournalWriter(sys.argv[1])
w.append(1, b"one")
w.start_commit()
w.wait_commit()
print("helper", w.start_syncer(), flush=True)
sys.stdin.read()
"""


def test_a_killed_writers_helper_exits_and_holds_no_lock(tmp_path: Path) -> None:
    path = tmp_path / JOURNAL_FILE
    proc = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        while not line.startswith("helper "):  # past the writer's log lines
            line = proc.stdout.readline()
        helper = int(line.split()[1])
        os.kill(helper, 0)  # running
        proc.kill()
        proc.wait()
        # a restarted writer can lock the journal at once, even if the helper is
        # still on its way out (it never held the lock) ...
        with JournalWriter(path) as w:
            assert w.committed_seq == 1
        # ... and the helper follows its writer (its request pipe closed)
        assert gone(helper)
    finally:
        proc.kill()
        proc.wait()
