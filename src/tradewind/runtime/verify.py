"""``tradewind verify DATA_DIR``: rebuild the state from disk and check every invariant.

Read-only: the data directory is never changed (a torn journal tail is reported, not
cut), so it is safe on the directory of a running exchange. Exit codes: 0 all invariants
hold, 1 some invariant is violated, 2 the data cannot be read (corrupt journal or
snapshot, missing directory), with the reason on stderr and no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tradewind.core.invariants import check_invariants
from tradewind.journal.journal import JournalError
from tradewind.journal.recovery import recover
from tradewind.journal.snapshot import SnapshotError


def run_verify(data_dir: Path) -> int:
    if not data_dir.is_dir():
        print(f"error: {data_dir} is not a directory", file=sys.stderr)
        return 2
    try:
        result = recover(data_dir, repair=False)
    except (JournalError, SnapshotError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: cannot read {data_dir}: {e}", file=sys.stderr)
        return 2
    snapshot = "none" if result.snapshot_seq is None else str(result.snapshot_seq)
    print(f"{'snapshot seq':14} {snapshot}")
    print(f"{'replayed':14} {result.replayed}")
    print(f"{'last seq':14} {result.last_seq}")
    if result.truncated_bytes:
        j = result.journal
        print(
            f"{'journal tail':14} {result.truncated_bytes} bytes at offset {j.valid_end} "
            f"ignored ({j.tail_reason}); cut at the next start"
        )
    print(f"{'state hash':14} {result.core.state_hash()}")
    violations = check_invariants(result.core)
    if not violations:
        print("OK")
        return 0
    for v in violations:
        print(f"VIOLATION {v}")
    return 1
