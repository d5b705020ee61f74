"""The command file (JSON lines): parsing, error reporting by line, and ``tradewind replay``."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.naive_matcher import NaiveExchange, NaiveReject
from tradewind.core.commandfile import CommandFileError, parse_command_lines
from tradewind.core.commands import (
    AddAsset,
    AddSymbol,
    Amend,
    Cancel,
    CancelAll,
    Deposit,
    Place,
    SetFees,
)
from tradewind.core.engine import Core
from tradewind.core.events import Rejected, Trade

TRADEWIND = Path(sys.executable).with_name("tradewind")

# The example of DESIGN.md §2, verbatim.
DESIGN_EXAMPLE = """\
{"op":"asset","asset":"BTC","decimals":8}
{"op":"asset","asset":"USDT","decimals":6}
{"op":"symbol","symbol":"BTC-USDT","base":"BTC","quote":"USDT","tick_size":10000,"lot_size":10000}
{"op":"fees","maker_bps":10,"taker_bps":20}
{"op":"deposit","user":7,"asset":"USDT","amount":100000000000}
{"op":"place","id":1,"user":7,"symbol":"BTC-USDT","side":"buy","type":"limit","price":10012,"qty":5}
{"op":"place","id":2,"user":9,"symbol":"BTC-USDT","side":"sell","type":"limit","tif":"IOC","price":10000,"qty":3}
{"op":"place","id":3,"user":9,"symbol":"BTC-USDT","side":"sell","type":"market","qty":3}
{"op":"amend","id":1,"user":7,"symbol":"BTC-USDT","qty":4}
{"op":"cancel","id":1,"user":7,"symbol":"BTC-USDT"}
{"op":"cancel_all","user":7,"symbol":"BTC-USDT"}
"""

# A file with trades, a self-trade, an FOK rejection and an unknown cancel; only commands
# the naive reference matcher knows, so the expected tape can be computed independently.
TRADING_FILE = """\
{"op":"asset","asset":"BTC","decimals":8}
{"op":"asset","asset":"USDT","decimals":6}
{"op":"symbol","symbol":"BTC-USDT","base":"BTC","quote":"USDT","tick_size":10000,"lot_size":10000}
{"op":"fees","maker_bps":10,"taker_bps":20}
{"op":"deposit","user":1,"asset":"BTC","amount":1000000}
{"op":"deposit","user":2,"asset":"USDT","amount":100000000}
{"op":"deposit","user":2,"asset":"BTC","amount":50000}
{"op":"place","id":1,"user":1,"symbol":"BTC-USDT","side":"sell","price":10010,"qty":4}
{"op":"place","id":2,"user":1,"symbol":"BTC-USDT","side":"sell","price":10005,"qty":2}
{"op":"place","id":3,"user":2,"symbol":"BTC-USDT","side":"sell","price":10020,"qty":5}
{"op":"place","id":4,"user":2,"symbol":"BTC-USDT","side":"buy","price":10030,"qty":9,"stp":"none"}
{"op":"place","id":5,"user":2,"symbol":"BTC-USDT","side":"buy","price":10030,"qty":9,"tif":"FOK"}
{"op":"cancel","id":77,"user":2,"symbol":"BTC-USDT"}
{"op":"place","id":6,"user":2,"symbol":"BTC-USDT","side":"buy","price":10000,"qty":3}
{"op":"place","id":7,"user":1,"symbol":"BTC-USDT","side":"sell","price":9990,"qty":9,"tif":"IOC"}
"""


def lines_of(text: str) -> list[str]:
    return text.splitlines()


# ------------------------------------------------------------------ parsing


def test_design_example_parses_into_the_documented_commands() -> None:
    cmds = parse_command_lines(lines_of(DESIGN_EXAMPLE))
    assert [type(c) for c in cmds] == [
        AddAsset,
        AddAsset,
        AddSymbol,
        SetFees,
        Deposit,
        Place,
        Place,
        Place,
        Amend,
        Cancel,
        CancelAll,
    ]
    # seq is the line ordinal when not given.
    assert [c.seq for c in cmds] == list(range(1, 12))
    symbol = cmds[2]
    assert isinstance(symbol, AddSymbol)
    assert (symbol.tick_size, symbol.lot_size, symbol.min_qty) == (10_000, 10_000, None)
    buy, ioc, market = cmds[5], cmds[6], cmds[7]
    assert isinstance(buy, Place) and isinstance(ioc, Place) and isinstance(market, Place)
    assert (buy.side, buy.type, buy.price, buy.qty, buy.tif) == ("buy", "limit", 10_012, 5, "GTC")
    assert (ioc.tif, ioc.stp) == ("IOC", "cancel_taker")
    assert (market.type, market.price, market.qty) == ("market", None, 3)
    amend = cmds[8]
    assert isinstance(amend, Amend)
    assert (amend.id, amend.qty, amend.price) == (1, 4, None)


def test_explicit_seq_and_ts_are_kept() -> None:
    (cmd,) = parse_command_lines(['{"op":"tick","seq":42,"ts":1700000000000}'])
    assert (cmd.seq, cmd.ts) == (42, 1_700_000_000_000)


GOOD_1 = '{"op":"asset","asset":"USDT","decimals":6}'
GOOD_2 = '{"op":"deposit","user":7,"asset":"USDT","amount":5}'
PLACE = '"op":"place","id":1,"user":7,"symbol":"BTC-USDT","side":"buy","price":10'


@pytest.mark.parametrize(
    "bad_line",
    [
        pytest.param('{"op":"deposit","user":7,', id="truncated-json"),
        pytest.param("not json at all", id="not-json"),
        pytest.param('["op","deposit"]', id="not-an-object"),
        pytest.param('{"op":"frobnicate","user":7}', id="unknown-op"),
        pytest.param('{"user":7,"asset":"USDT","amount":5}', id="no-op"),
        pytest.param(
            '{"op":"deposit","user":7,"asset":"USDT","amount":5,"colour":"red"}',
            id="unknown-field",
        ),
        pytest.param('{"op":"deposit","user":7,"asset":"USDT","amount":"5"}', id="string-amount"),
        pytest.param('{"op":"deposit","user":7,"asset":"USDT","amount":1.5}', id="float-amount"),
        pytest.param('{"op":"deposit","user":"seven","asset":"USDT","amount":5}', id="str-user"),
        pytest.param("{" + PLACE + ',"qty":-3}', id="negative-qty"),
        pytest.param("{" + PLACE + ',"qty":0}', id="zero-qty"),
        pytest.param("{" + PLACE + ',"qty":3,"side":"long"}', id="bad-side"),
        pytest.param("{" + PLACE + ',"qty":3,"tif":"GTX"}', id="bad-tif"),
        pytest.param('{"op":"deposit","user":7,"asset":"USDT"}', id="missing-amount"),
        pytest.param('{"op":"cancel","user":7,"symbol":"BTC-USDT"}', id="missing-id"),
    ],
)
def test_malformed_line_raises_with_its_line_number(bad_line: str) -> None:
    with pytest.raises(CommandFileError) as info:
        parse_command_lines([GOOD_1, GOOD_2, bad_line, GOOD_2])
    assert info.value.line == 3
    assert "3" in str(info.value)


def test_first_malformed_line_is_the_one_reported() -> None:
    with pytest.raises(CommandFileError) as info:
        parse_command_lines([GOOD_1, "{oops", GOOD_2, "{oops"])
    assert info.value.line == 2


# ------------------------------------------------------------------ tradewind replay


def replay(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(TRADEWIND), "replay", str(path), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def in_process(text: str) -> tuple[Core, list[list[object]]]:
    core = Core()
    return core, [list(core.apply(c)) for c in parse_command_lines(lines_of(text))]


def test_replay_prints_the_summary_of_the_design_example(tmp_path: Path) -> None:
    path = tmp_path / "design.jsonl"
    path.write_text(DESIGN_EXAMPLE)
    done = replay(path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert {"commands", "rejected", "trades", "traded_qty", "tape_digest", "state_hash"} <= set(
        summary
    )
    core, events = in_process(DESIGN_EXAMPLE)
    assert summary["commands"] == 11
    # User 9 has no BTC: both of its sells are rejected; nothing trades.
    assert summary["rejected"] == sum(any(isinstance(e, Rejected) for e in ev) for ev in events)
    assert summary["rejected"] >= 2
    assert (summary["trades"], summary["traded_qty"]) == (0, 0)
    assert summary["tape_digest"] == hashlib.sha256(b"").hexdigest()
    assert summary["state_hash"] == core.state_hash()


def test_replay_summary_matches_the_reference_matcher(tmp_path: Path) -> None:
    path = tmp_path / "trading.jsonl"
    path.write_text(TRADING_FILE)
    done = replay(path)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)

    naive = NaiveExchange()
    rejected = 0
    for cmd in parse_command_lines(lines_of(TRADING_FILE)):
        rejected += any(isinstance(o, NaiveReject) for o in naive.apply(cmd))
    tape = "".join(f"{t.maker_id},{t.taker_id},{t.price},{t.qty}\n" for t in naive.trades)
    assert len(naive.trades) == 4
    assert summary["commands"] == 15
    assert summary["rejected"] == rejected == 2  # the FOK and the unknown cancel
    assert summary["trades"] == len(naive.trades)
    assert summary["traded_qty"] == sum(t.qty for t in naive.trades)
    assert summary["tape_digest"] == hashlib.sha256(tape.encode()).hexdigest()

    core, events = in_process(TRADING_FILE)
    assert summary["state_hash"] == core.state_hash()
    engine_tape = "".join(
        f"{e.maker_id},{e.taker_id},{e.price},{e.qty}\n"
        for ev in events
        for e in ev
        if isinstance(e, Trade)
    )
    assert engine_tape == tape


def test_replay_is_deterministic(tmp_path: Path) -> None:
    path = tmp_path / "trading.jsonl"
    path.write_text(TRADING_FILE)
    first, second = replay(path), replay(path)
    assert first.returncode == second.returncode == 0
    assert json.loads(first.stdout) == json.loads(second.stdout)


@pytest.mark.parametrize(
    ("bad_line", "line_no"),
    [
        ('{"op":"deposit","user":1,"asset":"BTC","amount":-5}', 6),
        ('{"op":"deposit","user":1,', 6),
        ('{"op":"launch","user":1}', 6),
    ],
)
def test_replay_of_a_malformed_file_fails_naming_the_line(
    tmp_path: Path, bad_line: str, line_no: int
) -> None:
    lines = lines_of(TRADING_FILE)
    lines.insert(line_no - 1, bad_line)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    done = replay(path)
    assert done.returncode != 0
    assert f"line {line_no}" in done.stderr
    assert "Traceback" not in done.stderr
