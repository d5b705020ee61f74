"""A crash during a liquidation cascade: recovery from the journal (and a snapshot taken
with open margin positions) gives exactly the state of an uninterrupted run.

Forty leveraged isolated longs at staggered liquidation prices; then marks step down, so
that each mark liquidates a batch of them (a cascade of liquidation orders, trades,
repayments and insurance takeovers within one command). Hypothesis picks the group
commit boundaries, the snapshot interval and where the crash hits: the last group is
lost or its write torn. After recovery the exchange goes on with the rest of the
commands; its final state hash must equal the uninterrupted run's, and a second
recovery must agree.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import msgspec
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewind.core import commands as C
from tradewind.core.engine import Core
from tradewind.core.events import LiquidationStarted
from tradewind.core.invariants import check_invariants
from tradewind.journal import JOURNAL_FILE, JournaledCore, recover

SYM = "BTC-USDT"
WALLETS = 40


def stream() -> list[C.Command]:
    cmds: list[C.Command] = [
        C.AddAsset(asset="BTC", decimals=8),
        C.AddAsset(asset="USDT", decimals=6),
        C.AddSymbol(symbol=SYM, base="BTC", quote="USDT", tick_size=10_000, lot_size=10_000),
        C.Deposit(user=1000, asset="BTC", amount=10**12),
        C.Deposit(user=1000, asset="USDT", amount=10**12),
        C.MarginAsset(asset="USDT", hourly_rate=1000, borrow_limit=10**9),
        C.MarginSymbol(
            symbol=SYM,
            max_leverage=10,
            margin_call_level=11_050,
            liquidation_level=10_500,
            liquidation_fee_bps=50,
            liquidation_band_bps=2000,
            mark_max_move_bps=500,
        ),
        C.PoolFund(user=1000, asset="USDT", amount=10**10),
        C.InsuranceFund(user=1000, asset="USDT", amount=50_000),
        C.Mark(symbol=SYM, feeds=((1000, 0),)),
        # the market maker sells to the longs at 1000 and bids down to 700
        C.Place(id=1, user=1000, symbol=SYM, side="sell", price=1000, qty=10**6),
    ]
    for u in range(1, WALLETS + 1):
        collateral = 10_000 + 250 * u  # more collateral: a lower liquidation price
        cmds.append(C.Deposit(user=u, asset="USDT", amount=collateral))
        cmds.append(
            C.MarginTransfer(
                user=u,
                asset="USDT",
                amount=collateral,
                direction="in",
                wallet="isolated",
                symbol=SYM,
            )
        )
        cmds.append(
            C.Place(
                id=100 + u,
                user=u,
                symbol=SYM,
                side="buy",
                price=1000,
                qty=80,
                tif="IOC",
                wallet="isolated",
                auto_borrow=True,
            )
        )
    cmds.extend(
        C.Place(id=200 + p, user=1000, symbol=SYM, side="buy", price=p, qty=400)
        for p in range(700, 1000, 10)
    )
    for price in (990, 970, 950, 930, 910, 890, 870, 850, 830, 810, 790, 770, 750):
        cmds.append(C.Mark(symbol=SYM, feeds=((price, 0), (price, 0))))
    out = []
    for i, c in enumerate(cmds, 1):
        if isinstance(c, C.Mark):  # feeds stamped now: fresh
            c = msgspec.structs.replace(c, feeds=tuple((p, i * 1000) for p, _ in c.feeds))
        out.append(msgspec.structs.replace(c, seq=i, ts=i * 1000))
    return out


CMDS = stream()


def reference(cmds: list[C.Command]) -> str:
    core = Core()
    for cmd in cmds:
        core.apply(cmd)
    return core.state_hash()


FULL = reference(CMDS)


def test_the_stream_is_a_cascade() -> None:
    core = Core()
    per_mark = []
    for cmd in CMDS:
        events = core.apply(cmd)
        if isinstance(cmd, C.Mark):
            per_mark.append(sum(isinstance(e, LiquidationStarted) for e in events))
    assert sum(per_mark) == WALLETS  # every long goes
    assert max(per_mark) >= 5  # several in one command
    assert check_invariants(core) == []


@settings(max_examples=25, deadline=None)
@given(
    cuts=st.lists(st.integers(1, len(CMDS) - 1), max_size=6),
    every=st.integers(1, 40),
    torn=st.booleans(),
    tail=st.integers(1, 12),
    data=st.data(),
)
def test_crash_in_a_cascade_recovers_to_the_same_state(
    cuts: list[int], every: int, torn: bool, tail: int, data: st.DataObject
) -> None:
    # The crash hits a group that holds the last ``tail`` commands (the marks).
    last = len(CMDS) - tail
    bounds = sorted({c for c in cuts if c < last} | {last})
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        jc = JournaledCore(data_dir, snapshot_every=every)
        done = 0
        for bound in bounds:
            for cmd in CMDS[done:bound]:
                jc.submit(cmd)
            assert jc.flush() == bound
            done = bound
        acked = done
        for cmd in CMDS[done:]:
            jc.submit(cmd)
        journal = data_dir / JOURNAL_FILE
        if torn:
            jc.snapshot_every = 10**9
            start = journal.stat().st_size
            jc.flush()
            jc.close()
            end = journal.stat().st_size
            cut = data.draw(st.integers(start, end), label="cut")
            with open(journal, "r+b") as f:
                f.truncate(cut)
            # Some prefix of the last group's records survives (whole records only).
            survived = recover(data_dir).last_seq
            assert acked <= survived <= len(CMDS)
            assert survived == len(CMDS) or cut < end
        else:
            jc.abandon()
            survived = acked

        result = recover(data_dir)
        assert result.last_seq == survived
        assert result.core.state_hash() == reference(CMDS[:survived])
        assert check_invariants(result.core) == []
        with JournaledCore(data_dir, snapshot_every=every) as again:
            for cmd in CMDS[survived:]:
                again.submit(cmd)
            live = again.core.state_hash()
        assert live == FULL == recover(data_dir).core.state_hash()
