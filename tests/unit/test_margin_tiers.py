"""Leverage caps per fee tier (docs/margin.md, ADR 0020): a wallet's max leverage is the
least of its symbol's (or cross) and its owner's tier's cap, and its initial level, the
one borrows and transfers out are held to, follows from that. Worked examples on a 10x
BTC-USDT (initial level 11112) where tier 1 is capped at 3x (initial level 15000).
"""

from __future__ import annotations

from tests.unit.helpers import SYM, Exchange
from tests.unit.margin_setup import borrow, into, margin_market, out, wallet_id
from tradewind.core import commands as C
from tradewind.core.engine import Core
from tradewind.core.events import MarginTierSet
from tradewind.core.margin_ops import max_borrowable, wallet_view

VIP = 1  # fee tier 1, capped at 3x
PLAIN = 3  # fee tier 0, no cap


def capped() -> Exchange:
    ex = margin_market(max_leverage=10, margin_call_level=11_050, liquidation_level=10_500)
    ex.ok({"op": "fees", "tier": 1, "maker_bps": 5, "taker_bps": 8})
    ex.ok({"op": "tier", "user": VIP, "tier": 1})
    events = ex.ok({"op": "margin_tier", "tier": 1, "max_leverage": 3})
    assert events == [MarginTierSet(1, 3, 15_000)]
    return ex


def test_a_capped_tier_borrows_up_to_its_own_initial_level() -> None:
    ex = capped()
    into(ex, VIP, "USDT", 1000)
    # 3x: 10000 * (1000 + x) >= 15000 * x  ->  x <= 2000
    assert max_borrowable(ex.core, VIP, "isolated", SYM, "USDT") == 2000
    ex.reject(borrow(VIP, "USDT", 2001), "below_initial_margin")
    ex.ok(borrow(VIP, "USDT", 2000))  # 3000 / 2000 = 1.5 exactly
    view = wallet_view(ex.core, wallet_id(ex, VIP))
    assert (view["max_leverage"], view["initial_level"], view["level"]) == (3, 15_000, 15_000)
    # margin-call and liquidation levels stay the symbol's
    assert (view["margin_call_level"], view["liquidation_level"]) == (11_050, 10_500)
    ex.reject(out(VIP, "USDT", 1), "below_initial_margin")


def test_a_tier_without_a_cap_gets_the_symbols_10x() -> None:
    ex = capped()
    into(ex, PLAIN, "USDT", 1000)
    # 10x: initial 11112; 10000 * (1000 + x) >= 11112 * x  ->  x <= 10**7 // 1112 = 8992
    assert max_borrowable(ex.core, PLAIN, "isolated", SYM, "USDT") == 8992
    ex.reject(borrow(PLAIN, "USDT", 8993), "below_initial_margin")
    ex.ok(borrow(PLAIN, "USDT", 8992))
    view = wallet_view(ex.core, wallet_id(ex, PLAIN))
    assert (view["max_leverage"], view["initial_level"]) == (10, 11_112)


def test_a_cap_above_the_symbols_leaves_it_and_cross_is_capped_too() -> None:
    ex = capped()
    ex.ok({"op": "margin_tier", "tier": 1, "max_leverage": 10})
    into(ex, VIP, "USDT", 1000)
    assert wallet_view(ex.core, wallet_id(ex, VIP))["max_leverage"] == 10
    ex.ok({"op": "margin_tier", "tier": 1, "max_leverage": 2})
    into(ex, VIP, "USDT", 1000, wallet="cross")  # cross is 3x, the cap 2x: initial 20000
    assert max_borrowable(ex.core, VIP, "cross", None, "USDT") == 1000
    assert wallet_view(ex.core, wallet_id(ex, VIP, ""))["initial_level"] == 20_000


def test_the_cap_follows_the_users_tier_and_clearing_it() -> None:
    ex = capped()
    into(ex, PLAIN, "USDT", 1000)
    ex.ok({"op": "tier", "user": PLAIN, "tier": 1})  # the wallet takes the owner's tier
    assert max_borrowable(ex.core, PLAIN, "isolated", SYM, "USDT") == 2000
    assert ex.ok({"op": "margin_tier_clear", "tier": 1}) == [MarginTierSet(1, None, None)]
    assert max_borrowable(ex.core, PLAIN, "isolated", SYM, "USDT") == 8992


def test_bad_input_changes_nothing() -> None:
    ex = capped()
    before = ex.core.state_hash()
    ex.reject({"op": "margin_tier", "tier": 1, "max_leverage": 11}, "leverage_too_high")
    ex.reject({"op": "margin_tier", "tier": 1, "max_leverage": 1}, "invalid_margin_terms")
    ex.reject({"op": "margin_tier", "tier": 7, "max_leverage": 3}, "unknown_tier")
    ex.reject({"op": "margin_tier_clear", "tier": 7}, "unknown_tier")
    assert ex.core.state_hash() == before


def test_snapshot_restore_keeps_the_caps_and_none_leaves_the_state_unchanged() -> None:
    ex = capped()
    into(ex, VIP, "USDT", 1000)
    again = Core.restore(ex.core.snapshot())
    assert again.state_hash() == ex.core.state_hash()
    assert again.state()["margin"]["tier_caps"] == [[1, 3]]
    assert max_borrowable(again, VIP, "isolated", SYM, "USDT") == 2000
    # without caps the margin state has no such key (older snapshots and hashes hold)
    ex.ok({"op": "margin_tier_clear", "tier": 1})
    assert "tier_caps" not in ex.core.state()["margin"]


def test_a_cap_on_a_spot_only_core_is_refused_and_the_state_is_spot_only() -> None:
    plain = margin_market()
    spot = Core()
    assert "margin" not in spot.state()
    cmd = C.MarginTier(seq=1, ts=1, tier=5, max_leverage=3)
    spot.apply(cmd)  # unknown tier: rejected, nothing enabled
    assert "margin" not in spot.state()
    assert "tier_caps" not in plain.core.state()["margin"]
