"""A deposit carrying a ``ref`` (a chain watcher's ``network:txid:index``) is credited
once: the same ref again is rejected with ``duplicate_deposit`` and changes nothing, also
after a snapshot and restore, so a watcher that crashed between crediting and recording
can simply resubmit."""

from __future__ import annotations

from tests.unit.helpers import standard
from tradewind.core.engine import Core

U = "USDT"
REF = "ethereum:0xabc:0"


def deposit(user: int, amount: int, ref: str | None = None) -> dict[str, object]:
    cmd: dict[str, object] = {"op": "deposit", "user": user, "asset": U, "amount": amount}
    if ref is not None:
        cmd["ref"] = ref
    return cmd


def test_a_ref_is_credited_once() -> None:
    ex = standard()
    ex.run(
        [
            (deposit(9, 500, REF), [("deposited", 9, U, 500)], {(9, U): (500, 0)}),
            (deposit(9, 500, REF), [("rejected", "duplicate_deposit")], {(9, U): (500, 0)}),
            (deposit(8, 70, REF), [("rejected", "duplicate_deposit")], {(9, U): (500, 0)}),
            (deposit(9, 1, "ethereum:0xabc:1"), [("deposited", 9, U, 1)], {(9, U): (501, 0)}),
            (deposit(9, 5), [("deposited", 9, U, 5)], {(9, U): (506, 0)}),
            (deposit(9, 5), [("deposited", 9, U, 5)], {(9, U): (511, 0)}),
        ]
    )


def test_a_rejected_deposit_does_not_consume_its_ref() -> None:
    ex = standard()
    ex.reject(
        {"op": "deposit", "user": 9, "asset": "NOPE", "amount": 5, "ref": REF}, "unknown_asset"
    )
    ex.ok(deposit(9, 5, REF))


def test_refs_survive_a_snapshot_and_an_unused_ref_set_leaves_the_hash_as_before() -> None:
    ex = standard()
    before = ex.core.state_hash()
    assert "deposit_refs" not in ex.core.state()
    ex.ok(deposit(9, 5, REF))
    restored = Core.restore(ex.core.snapshot())
    assert restored.state_hash() == ex.core.state_hash() != before
    assert restored.deposit_refs == {REF}
