"""The benchmark stream generator: deterministic, valid command files, the stated mix."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from tradewind.core.commandfile import parse_command_lines
from tradewind.core.commands import (
    AddAsset,
    AddSymbol,
    AnyCommand,
    Cancel,
    Deposit,
    Place,
    SetFees,
)
from tradewind.core.engine import Core
from tradewind.core.events import Rejected, Trade
from tradewind.core.invariants import check_invariants
from tradewind.runtime.streamgen import (
    SYMBOLS,
    StreamStats,
    generate_resting,
    generate_stream,
    setup_prefix_len,
    to_lines,
    write_command_file,
)

N = 20_000


def _kind(c: AnyCommand) -> str:
    if isinstance(c, Cancel):
        return "cancel"
    if isinstance(c, Place):
        if c.type == "market":
            return "market"
        return "ioc" if c.tif == "IOC" else "limit"
    return "setup"


@pytest.fixture(scope="module", params=[1, 10], ids=["1-symbol", "10-symbols"])
def stream(request: pytest.FixtureRequest) -> tuple[int, list[AnyCommand], StreamStats]:
    st = StreamStats()
    cmds = generate_stream(N, n_symbols=request.param, n_accounts=200, seed=11, stats=st)
    return request.param, cmds, st


def test_same_seed_same_stream_other_seed_other_stream() -> None:
    a = to_lines(generate_stream(3000, n_symbols=10, seed=5))
    b = to_lines(generate_stream(3000, n_symbols=10, seed=5))
    c = to_lines(generate_stream(3000, n_symbols=10, seed=6))
    assert a == b
    assert a != c
    assert to_lines(generate_resting(500, seed=3)) == to_lines(generate_resting(500, seed=3))


def test_lines_parse_back_into_the_same_commands(
    stream: tuple[int, list[AnyCommand], StreamStats], tmp_path: Path
) -> None:
    _, cmds, _ = stream
    assert parse_command_lines(to_lines(cmds)) == cmds
    path = tmp_path / "stream.jsonl"
    assert write_command_file(path, cmds) == len(cmds)
    with path.open("rb") as f:
        assert parse_command_lines(f) == cmds


def test_commands_are_stamped_in_order(stream: tuple[int, list[AnyCommand], StreamStats]) -> None:
    _, cmds, _ = stream
    assert [c.seq for c in cmds] == list(range(1, len(cmds) + 1))
    ts = [c.ts for c in cmds]
    assert ts == sorted(ts) and ts[0] > 0


def test_setup_funds_every_account_in_every_asset(
    stream: tuple[int, list[AnyCommand], StreamStats],
) -> None:
    n_symbols, cmds, st = stream
    n_setup = setup_prefix_len(cmds)
    assert n_setup == st.setup
    setup = cmds[:n_setup]
    assets = {c.asset: c.decimals for c in setup if isinstance(c, AddAsset)}
    symbols = [c for c in setup if isinstance(c, AddSymbol)]
    assert len(symbols) == n_symbols and len(assets) == n_symbols + 1
    for s in symbols:
        assert (s.tick_size * s.lot_size) % 10 ** assets[s.base] == 0
    btc = next(s for s in symbols if s.symbol == "BTC-USDT")
    assert (btc.tick_size, btc.lot_size, assets["BTC"], assets["USDT"]) == (10_000, 10_000, 8, 6)
    fees = [c for c in setup if isinstance(c, SetFees)]
    assert [(f.maker_bps, f.taker_bps) for f in fees] == [(10, 20)]
    funded = Counter((c.user, c.asset) for c in setup if isinstance(c, Deposit))
    assert len(funded) == 200 * len(assets) and set(funded.values()) == {1}


def test_mix_matches_the_stated_proportions(
    stream: tuple[int, list[AnyCommand], StreamStats],
) -> None:
    _, cmds, st = stream
    kinds = Counter(_kind(c) for c in cmds[st.setup :])
    assert sum(kinds.values()) == N and "setup" not in kinds
    assert (kinds["limit"], kinds["cancel"], kinds["ioc"], kinds["market"]) == (
        st.places,
        st.cancels,
        st.ioc,
        st.markets,
    )
    assert kinds["limit"] / N == pytest.approx(0.60, abs=0.02)
    assert kinds["cancel"] / N == pytest.approx(0.30, abs=0.02)
    assert (kinds["ioc"] + kinds["market"]) / N == pytest.approx(0.10, abs=0.01)
    assert kinds["ioc"] / (kinds["ioc"] + kinds["market"]) == pytest.approx(0.5, abs=0.05)
    assert st.crossing_places / st.places == pytest.approx(0.20, abs=0.02)
    assert st.stale_cancels / st.cancels < 0.03


def test_cancels_name_their_order_owner_and_ids_are_unique(
    stream: tuple[int, list[AnyCommand], StreamStats],
) -> None:
    _, cmds, _ = stream
    owner: dict[int, tuple[int, str]] = {}
    for c in cmds:
        if isinstance(c, Place):
            assert c.id not in owner
            owner[c.id] = (c.user, c.symbol)
        elif isinstance(c, Cancel):
            assert owner[c.id] == (c.user, c.symbol)


def test_the_core_agrees_with_the_shadow_book(
    stream: tuple[int, list[AnyCommand], StreamStats],
) -> None:
    n_symbols, cmds, st = stream
    markets = {c.id for c in cmds if isinstance(c, Place) and c.type == "market"}
    core = Core()
    trades = 0
    rejected: Counter[str] = Counter()
    for c in cmds:
        for e in core.apply(c):
            if isinstance(e, Trade):
                trades += 1
            elif isinstance(e, Rejected):
                rejected[e.op] += 1
                # Funds never run out: the only rejections are the stale cancels and, on
                # a thin young book, a market order that finds no liquidity.
                assert e.op == "cancel" or (e.op == "place" and e.id in markets), e
    assert check_invariants(core) == []
    assert rejected["cancel"] <= st.stale_cancels
    assert sum(rejected.values()) < 0.01 * N
    assert trades == pytest.approx(st.shadow_trades, rel=0.01)
    assert len(core.orders) == pytest.approx(st.open_orders, rel=0.01)
    # A realistic book: tens to hundreds of levels per side.
    for bids, asks in st.levels.values():
        assert 10 <= bids <= 1000 and 10 <= asks <= 1000
    assert len(st.levels) == n_symbols


def test_resting_orders_never_cross() -> None:
    cmds = generate_resting(5000, n_symbols=10, n_accounts=50, seed=2)
    n_setup = setup_prefix_len(cmds)
    assert len(cmds) - n_setup == 5000
    core = Core()
    for c in cmds:
        for e in core.apply(c):
            assert not isinstance(e, (Trade, Rejected)), e
    assert len(core.orders) == 5000
    assert check_invariants(core) == []


def test_symbol_table_keeps_the_units_rule() -> None:
    for s in SYMBOLS:
        assert (s.tick_size * s.lot_size) % 10**s.base_decimals == 0
        assert s.unit_lots >= 1


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError):
        generate_stream(10, n_symbols=0)
    with pytest.raises(ValueError):
        generate_stream(10, n_symbols=len(SYMBOLS) + 1)
    with pytest.raises(ValueError):
        generate_stream(-1)
