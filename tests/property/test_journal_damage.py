"""One flipped bit anywhere in a journal of mixed records is found, never read past.

Hypothesis draws a journal of command records (format 1) and batch records (format 2,
ADR 0026) in any order and a bit to flip. Damage in the last record is a torn tail: the
reader stops at that record's offset and yields exactly the commands before it. Damage
in any other record stops every reader with ``JournalCorruptError`` naming that
record's offset. Nothing after the damaged record is ever returned.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewind.core.codec import encode_command
from tradewind.core.commands import Deposit
from tradewind.journal.journal import (
    JournalCorruptError,
    encode_batch_record,
    encode_record,
    read_journal,
    scan_journal,
)

# one draw per record: 0 = a command record, n >= 1 = a batch record of n commands
layouts = st.lists(st.integers(0, 5), min_size=1, max_size=8)


def build(layout: list[int]) -> tuple[bytes, list[tuple[int, int, int]]]:
    """The file and ``(start, end, first_seq)`` of each record."""
    data, spans, seq = b"", [], 1
    for n in layout:
        cmds = [
            Deposit(seq=s, user=s, asset="USDT", amount=10 + s) for s in range(seq, seq + max(n, 1))
        ]
        payloads = [encode_command(c) for c in cmds]
        rec = encode_record(seq, payloads[0]) if n == 0 else encode_batch_record(seq, payloads)
        spans.append((len(data), len(data) + len(rec), seq))
        data += rec
        seq += len(cmds)
    return data, spans


@settings(max_examples=200, deadline=None)
@given(layout=layouts, where=st.floats(0, 1, exclude_max=True), bit=st.integers(0, 7))
def test_a_flipped_bit_is_a_torn_tail_or_an_error_naming_its_record(
    tmp_path_factory: pytest.TempPathFactory, layout: list[int], where: float, bit: int
) -> None:
    data, spans = build(layout)
    pos = int(where * len(data))
    damaged = bytearray(data)
    damaged[pos] ^= 1 << bit
    path = tmp_path_factory.mktemp("journal") / "journal.twj"
    path.write_bytes(bytes(damaged))
    index = next(i for i, (start, end, _) in enumerate(spans) if start <= pos < end)
    start, _, first = spans[index]
    if index == len(spans) - 1:
        assert [s for _, s, _ in read_journal(path)] == list(range(1, first))
        scan = scan_journal(path)
        assert (scan.valid_end, scan.last_seq) == (start, first - 1 if first > 1 else None)
    else:
        with pytest.raises(JournalCorruptError) as info:
            list(read_journal(path))
        assert info.value.offset == start
        with pytest.raises(JournalCorruptError):
            scan_journal(path)
