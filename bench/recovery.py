"""Recovery speed: how fast a restart rebuilds the core from the journal alone.

Invariant measured: ``recover()`` from no snapshot replays every record of an
``n``-command journal (read, CRC check, msgpack decode, ``Core.apply``). The journal is
written once with the real writer; only ``recover()`` is timed. Commands come from
``random.Random(seed)``, so the same ``n`` and ``seed`` always give the same journal.

The journal is written as ``JournaledCore`` writes it (batch records, ADR 0026);
``--command-records`` writes one record per command instead, as journals before it were.

Run: ``.venv/bin/python bench/recovery.py [N] [--command-records]``; prints one JSON object.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec

from tradewind.core.codec import encode_command, trusted
from tradewind.core.commands import (
    AddAsset,
    AddSymbol,
    AnyCommand,
    Cancel,
    Deposit,
    Place,
    Side,
)
from tradewind.journal import JOURNAL_FILE, JournalReader, JournalWriter, recover

USERS = 1000
SYMBOL = "BTC-USDT"


def generate(n: int, seed: int = 1) -> Iterator[AnyCommand]:
    """``n`` stamped commands: setup, one deposit pair per user, then places and cancels.

    Places rest around a slowly drifting mid price on both sides (a share cross and
    trade); cancels aim at a random order still believed open.
    """
    rng = random.Random(seed)
    setup: list[AnyCommand] = [
        AddAsset(asset="BTC", decimals=8),
        AddAsset(asset="USDT", decimals=6),
        AddSymbol(symbol=SYMBOL, base="BTC", quote="USDT", tick_size=10_000, lot_size=10_000),
    ]
    for user in range(1, USERS + 1):
        setup.append(Deposit(user=user, asset="USDT", amount=10**15))
        setup.append(Deposit(user=user, asset="BTC", amount=10**13))
    seq = 0
    for cmd in setup[:n]:
        seq += 1
        yield msgspec.structs.replace(cmd, seq=seq)
    mid = 100_000
    open_ids: list[int] = []
    next_id = 1
    while seq < n:
        seq += 1
        ts = seq
        if open_ids and rng.random() < 0.35:
            oid = open_ids.pop(rng.randrange(len(open_ids)))
            user = oid % USERS + 1
            yield Cancel(seq=seq, ts=ts, id=oid, user=user, symbol=SYMBOL)
            continue
        mid += rng.choice((-1, 0, 0, 1))
        side: Side = "buy" if rng.random() < 0.5 else "sell"
        offset = rng.randint(-5, 60)
        price = mid - offset if side == "buy" else mid + offset
        oid = next_id
        next_id += 1
        open_ids.append(oid)
        if len(open_ids) > 20_000:
            open_ids.pop(0)
        yield Place(
            seq=seq,
            ts=ts,
            id=oid,
            user=oid % USERS + 1,
            symbol=SYMBOL,
            side=side,
            price=price,
            qty=rng.randint(1, 50),
        )


def write_journal(
    data_dir: Path, n: int, seed: int = 1, group: int = 10_000, batch: bool = True
) -> int:
    """Writes the journal with group commits of ``group`` commands, as batch records
    (what ``JournaledCore`` writes) or, with ``batch=False``, one command record per
    command (the format before ADR 0026); returns its size."""
    with JournalWriter(data_dir / JOURNAL_FILE) as writer:
        for cmd in generate(n, seed):
            if batch:
                writer.append_command(cmd.seq, cmd)
            else:
                writer.append(cmd.seq, encode_command(cmd))
            if writer.pending >= group:
                writer.commit()
        writer.commit()
    return (data_dir / JOURNAL_FILE).stat().st_size


def measure_recovery(n: int = 1_000_000, seed: int = 1, batch: bool = True) -> dict[str, Any]:
    """Times ``recover()`` of an ``n``-record journal with no snapshot.

    Besides the wall and CPU time of the whole recovery, two extra passes over the same
    file take the CPU time of the journal layer alone: reading + CRC + seq checks, then
    that plus msgpack decoding; the rest of a recovery is ``Core.apply``.
    """
    with tempfile.TemporaryDirectory(prefix="tw-bench-recovery-") as tmp:
        data_dir = Path(tmp)
        size = write_journal(data_dir, n, seed, batch=batch)
        path = data_dir / JOURNAL_FILE

        start = time.process_time()
        data = path.read_bytes()
        for _ in JournalReader(data, path).walk():
            pass
        scan = time.process_time() - start

        start = time.process_time()
        data = path.read_bytes()
        twins = trusted()  # what recovery decodes with (ADR 0037)
        decode_batch, decode_one = twins.decode_batch, twins.decode
        for _offset, _seq, _n, payload, batch in JournalReader(data, path).walk():
            decode_batch(payload) if batch else decode_one(payload)
        scan_decode = time.process_time() - start
        del data

        cpu = time.process_time()
        start = time.perf_counter()
        result = recover(data_dir)
        seconds = time.perf_counter() - start
        cpu = time.process_time() - cpu
        if result.last_seq != n or result.replayed != n:
            raise RuntimeError(f"recovered {result.replayed} of {n} records")
        return {
            "records": n,
            "format": "batch records" if batch else "command records (before ADR 0026)",
            "journal_bytes": size,
            "seconds": round(seconds, 3),
            "records_per_sec": round(n / seconds),
            "cpu_seconds": round(cpu, 3),
            "read_crc_cpu_seconds": round(scan, 3),
            "read_crc_decode_cpu_seconds": round(scan_decode, 3),
            "open_orders": len(result.core.orders),
        }


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    print(
        json.dumps(
            measure_recovery(
                int(args[0]) if args else 1_000_000, batch="--command-records" not in sys.argv
            )
        )
    )
