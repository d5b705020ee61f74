"""Journal replay decodes into trusted twins of the command types (``codec.trusted``).

What a restart relies on: a twin decodes every record the real decoder decodes into the
same fields and the same bytes, the core applies it as the real command, and a record
whose CRC verifies but whose types are wrong still stops recovery.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import get_args

import msgspec
import pytest

from tradewind.core import commands as C
from tradewind.core.codec import decode_command, encode_command, trusted
from tradewind.core.engine import Core
from tradewind.core.events import OrderCancelled
from tradewind.journal import JOURNAL_FILE, JournalCorruptError, JournaledCore, recover
from tradewind.journal.journal import encode_batch_record

SAMPLES: list[C.AnyCommand] = [
    C.AddAsset(asset="BTC", decimals=8, seq=1),
    C.AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=1, lot_size=2, seq=2),
    C.Place(
        id=7,
        user=3,
        symbol="BTC-USDT",
        side="sell",
        type="stop_limit",
        price=10,
        qty=2,
        tif="IOC",
        stop_price=9,
        stp="cancel_both",
        client_id="c-1",
        wallet="cross",
        auto_borrow=True,
        seq=3,
        ts=1_700_000_000_000,
    ),
    C.Cancel(id=7, user=3, symbol="BTC-USDT", seq=4),
    C.CancelAll(user=3, seq=5),
    C.Mark(symbol="BTC-USDT", feeds=((10, 1), (11, 2)), seq=6),
    C.Deposit(user=1, asset="BTC", amount=5, ref="btc:tx:0", seq=7),
    C.Tick(seq=8, ts=9),
    C.Expense(user=2**62 + 1, asset="BTC", amount=3, ref="network-fee:withdrawal:4", seq=10),
]


def test_every_command_type_has_a_twin_of_it() -> None:
    types = trusted().types
    assert set(types) == set(get_args(C.AnyCommand))
    for cls, twin in types.items():
        assert issubclass(cls, msgspec.Struct) and issubclass(twin, cls)
        assert twin.__struct_config__.tag == cls.__struct_config__.tag
        assert [(f.name, f.default) for f in msgspec.structs.fields(twin)] == [
            (f.name, f.default) for f in msgspec.structs.fields(cls)
        ]


@pytest.mark.parametrize("cmd", SAMPLES, ids=lambda c: type(c).__name__)
def test_a_twin_holds_what_the_record_holds(cmd: C.AnyCommand) -> None:
    blob = encode_command(cmd)
    twin = trusted().decode(blob)
    assert isinstance(twin, type(cmd)) and type(twin) is not type(cmd)
    assert msgspec.structs.asdict(twin) == msgspec.structs.asdict(decode_command(blob))
    assert encode_command(twin) == blob
    [again] = trusted().decode_batch(msgspec.msgpack.encode([cmd]))
    assert msgspec.structs.asdict(again) == msgspec.structs.asdict(cmd)
    # Outside the cyclic collector (ADR 0040): a replayed record costs no GC bookkeeping.
    assert not gc.is_tracked(twin) and not gc.is_tracked(again)


def test_the_core_applies_a_twin_as_the_command() -> None:
    setup: list[C.AnyCommand] = [
        C.AddAsset(asset="BTC", decimals=8, seq=1),
        C.AddAsset(asset="USDT", decimals=6, seq=2),
        C.AddSymbol(
            symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10_000, lot_size=10_000, seq=3
        ),
        C.Deposit(user=1, asset="USDT", amount=10**12, seq=4),
        C.Deposit(user=2, asset="BTC", amount=10**10, seq=5),
        C.Place(id=1, user=1, symbol="BTC-USDT", side="buy", price=100, qty=5, seq=6),
        C.Place(id=2, user=2, symbol="BTC-USDT", side="sell", price=99, qty=2, seq=7),
        C.Amend(id=1, user=1, symbol="BTC-USDT", qty=2, seq=8),
        C.Cancel(id=1, user=1, symbol="BTC-USDT", seq=9),
        C.Cancel(id=1, user=1, symbol="BTC-USDT", seq=10),  # rejected: already gone
    ]
    live, replayed = Core(), Core()
    replayed.dispatch_as(trusted().types)
    for cmd in setup:
        twin = trusted().decode(encode_command(cmd))
        assert replayed.apply(twin) == live.apply(cmd)
    assert replayed.state_hash() == live.state_hash()


def test_a_record_with_a_wrong_type_still_stops_recovery(tmp_path: Path) -> None:
    """The CRC verifies (the record was written so), the types do not: refused."""
    good = encode_command(C.AddAsset(asset="BTC", decimals=8, seq=1))
    bad = msgspec.msgpack.encode({"op": "asset", "asset": "ETH", "decimals": "8", "seq": 2})
    (tmp_path / JOURNAL_FILE).write_bytes(encode_batch_record(1, [good, bad]))
    with pytest.raises(JournalCorruptError, match="batch record seq 1 does not decode"):
        recover(tmp_path)


def test_after_recovery_the_core_reports_events_again(tmp_path: Path) -> None:
    """Replay skips building events (margin off); the live core after it does not."""
    cmds: list[C.AnyCommand] = [
        C.AddAsset(asset="BTC", decimals=8),
        C.AddAsset(asset="USDT", decimals=6),
        C.AddSymbol(symbol="BTC-USDT", base="BTC", quote="USDT", tick_size=10_000, lot_size=10_000),
        C.Deposit(user=1, asset="USDT", amount=10**12),
        C.Deposit(user=2, asset="BTC", amount=10**10),
        C.Place(id=1, user=1, symbol="BTC-USDT", side="buy", price=100, qty=5),
    ]
    with JournaledCore(tmp_path) as jc:
        for cmd in cmds:
            jc.submit(cmd)
    with JournaledCore(tmp_path) as jc:
        assert jc.recovery.replayed == 6
        events = jc.submit(C.Place(id=2, user=2, symbol="BTC-USDT", side="sell", price=99, qty=2))
        assert [type(e).__name__ for e in events] == ["OrderAccepted", "Trade"]
        events = jc.submit(C.Cancel(id=1, user=1, symbol="BTC-USDT"))
        assert events == [OrderCancelled(1, 1, "BTC-USDT", 3, 300, "user")]
