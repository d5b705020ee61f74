"""Journal layer: the durable record of every command, snapshots and recovery.

Invariant kept by the whole package: a command acknowledged to a client (its journal
group committed) is in the state that recovery rebuilds, and recovery never silently
skips a command: it rebuilds exactly the journal's valid prefix or it fails loudly.
"""

from tradewind.journal.journal import (
    JOURNAL_FILE,
    JournalCorruptError,
    JournalError,
    JournalLockedError,
    JournalReader,
    JournalScan,
    JournalSeqError,
    JournalWriteError,
    JournalWriter,
    read_journal,
    scan_journal,
)
from tradewind.journal.recovery import JournaledCore, RecoveryResult, recover
from tradewind.journal.snapshot import (
    Snapshot,
    SnapshotError,
    latest_valid_snapshot,
    read_snapshot,
    write_snapshot,
)

__all__ = [
    "JOURNAL_FILE",
    "JournalCorruptError",
    "JournalError",
    "JournalLockedError",
    "JournalReader",
    "JournalScan",
    "JournalSeqError",
    "JournalWriteError",
    "JournalWriter",
    "JournaledCore",
    "RecoveryResult",
    "Snapshot",
    "SnapshotError",
    "latest_valid_snapshot",
    "read_journal",
    "read_snapshot",
    "recover",
    "scan_journal",
    "write_snapshot",
]
