"""Reconciliation findings: the core against a ledger and custody, with the numbers."""

from __future__ import annotations

from tests.unit.helpers import buy, sell, standard
from tradewind.core.engine import Core
from tradewind.services.projectors.ports import LedgerBalance
from tradewind.services.reconcile import Holdings, liabilities, reconcile


def traded() -> Core:
    ex = standard()
    ex.ok(sell(1, 1, 100, 5))
    ex.ok(buy(2, 2, 100, 2))
    ex.ok({"op": "withdraw_hold", "id": 7, "user": 2, "asset": "USDT", "amount": 50})
    ex.ok({"op": "withdraw_settle", "id": 7})
    return ex.core


def ledger_of(core: Core) -> dict[tuple[int, str], LedgerBalance]:
    """A ledger that agrees: the balances, and external legs carrying the net inflow."""
    out = {
        (account, asset): LedgerBalance(b.available, b.locked, 0)
        for account, held in core.accounts.items()
        for asset, b in held.items()
    }
    for asset in core.assets:
        net = (
            core.deposited.get(asset, 0)
            - core.withdrawn.get(asset, 0)
            - core.expensed.get(asset, 0)
        )
        old = out.get((-999, asset), LedgerBalance(0, 0, 0))
        out[(-999, asset)] = LedgerBalance(old.available, old.locked, -net)
    return out


def test_agreeing_records_reconcile_clean() -> None:
    core = traded()
    report = reconcile(core, ledger_of(core))
    assert report.ok and report.findings == () and report.checks == ("core", "ledger")
    assert report.seq == core.seq


def test_a_ledger_that_disagrees_names_the_account_bucket_and_both_figures() -> None:
    core = traded()
    ledger = ledger_of(core)
    b = ledger[(1, "USDT")]
    ledger[(1, "USDT")] = LedgerBalance(b.available - 3, b.locked, b.external)
    ledger[(5, "BTC")] = LedgerBalance(0, 10, 0)  # an account the core does not have
    report = reconcile(core, ledger)
    assert not report.ok
    found = {(f.account, f.asset, f.expected, f.actual) for f in report.findings}
    assert (1, "USDT", b.available, b.available - 3) in found
    assert (5, "BTC", 0, 10) in found
    assert all(f.check == "ledger" and f.severity == "critical" for f in report.findings)
    assert any("account 1 USDT available" in f.message for f in report.findings)


def test_external_legs_must_equal_deposits_less_withdrawals() -> None:
    core = traded()
    ledger = ledger_of(core)
    ledger[(-999, "USDT")] = LedgerBalance(0, 0, ledger[(-999, "USDT")].external - 50)
    (finding,) = reconcile(core, ledger).findings
    assert finding.asset == "USDT" and finding.difference == 50


def test_external_legs_include_the_expenses_the_exchange_paid() -> None:
    """A network fee booked (``Expense``, ADR 0034) left the exchange: the ledger's
    external legs carry it, and a ledger that missed it is off by exactly the fee."""
    ex = standard()
    ex.ok({"op": "deposit", "user": 2**62 + 1, "asset": "BTC", "amount": 900})
    ex.ok({"op": "expense", "user": 2**62 + 1, "asset": "BTC", "amount": 300, "ref": "f:1"})
    core = ex.core
    assert reconcile(core, ledger_of(core)).findings == ()
    ledger = ledger_of(core)
    ledger[(-999, "BTC")] = LedgerBalance(0, 0, ledger[(-999, "BTC")].external - 300)
    (finding,) = reconcile(core, ledger).findings
    assert finding.asset == "BTC" and finding.expected == finding.actual - 300
    assert "deposits less withdrawals and expenses" in finding.message


def test_custody_shortfall_is_critical_and_surplus_is_information() -> None:
    core = traded()
    owed = liabilities(core)
    assert owed["USDT"] == core.deposited["USDT"] - core.withdrawn["USDT"]
    short = reconcile(core, None, {"USDT": Holdings("USDT", owed["USDT"] - 1, ("eth: 3",))})
    (f,) = short.findings
    assert not short.ok and f.severity == "critical" and f.difference == -1
    assert "SHORTFALL of 1" in f.message
    more = reconcile(core, None, {"BTC": Holdings("BTC", owed["BTC"] + 20, ("btc: 2",))})
    (g,) = more.findings
    assert more.ok and g.severity == "info" and g.difference == 20
    exact = reconcile(core, None, {"BTC": Holdings("BTC", owed["BTC"], ())})
    assert exact.ok and exact.findings == ()


def test_network_fees_not_booked_yet_are_named_next_to_the_shortfall() -> None:
    """A shortfall while fees wait for the fee account (ADR 0034) says how much of it is
    those fees; assets custody was not read for, and nothing unbooked, say nothing."""
    core = traded()
    owed = liabilities(core)
    held = {"USDT": Holdings("USDT", owed["USDT"] - 7, ("eth: 3",))}
    report = reconcile(core, None, held, None, {"USDT": 9, "BTC": 4, "ETH": 0})
    short, fees = report.findings
    assert (short.severity, short.difference) == ("critical", -7)
    assert (fees.check, fees.severity, fees.asset, fees.actual) == ("custody", "info", "USDT", 9)
    assert "not booked in the core yet" in fees.message and not report.ok
    assert reconcile(core, None, held, None, {}).findings == (short,)


def test_a_broken_core_invariant_is_a_finding() -> None:
    core = traded()
    core.accounts[1]["USDT"].available += 1  # money from nowhere
    report = reconcile(core)
    assert not report.ok
    assert report.findings[0].check == "core" and "USDT" in report.findings[0].message
