"""The bank check of reconciliation: the newest statement's closing balance against
what the core owes, adjusted by exactly what is in flight between them (ADR 0036)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from tradewind.services.fiat.ports import CardIntent, FiatLine, StatementBalance, StatementDebit
from tradewind.services.funding.withdrawal_ports import Withdrawal
from tradewind.services.reconcile import (
    BankPosition,
    bank_position,
    check_bank,
    minor_units,
    units,
)

IBAN = "DE89370400440532013000"
CUTOFF = 1_000  # when the first statement balance was imported


def line(n: int, amount: str, status: str = "review", decided_at: int = 5_000) -> FiatLine:
    return FiatLine(
        ref=f"camt:{IBAN}:L-{n}",
        account_iban=IBAN,
        entry_ref=f"L-{n}",
        currency="EUR",
        amount_text=amount,
        amount=minor_units(amount, 2),
        user_id=None,
        status=status,  # type: ignore[arg-type]
        reason=None,
        remittance="",
        debtor_name=None,
        debtor_iban=None,
        booking_date=None,
        line_no=1,
        imported_at_ms=decided_at,
        id=n,
        resolved_at_ms=decided_at,
    )


def withdrawal(wid: int, amount: int, fee: int, status: str, created: int = 5_000) -> Withdrawal:
    return Withdrawal(
        id=wid,
        user_id=1,
        asset="EUR",
        network="sepa",
        address=IBAN,
        amount=amount,
        fee=fee,
        memo="Jane",
        status=status,  # type: ignore[arg-type]
        required_approvals=1,
        created_at_ms=created,
        updated_at_ms=created,
        idempotency_key=f"k{wid}",
        request_hash="h",
    )


def debit(e2e: str, amount: str) -> StatementDebit:
    return StatementDebit(e2e, amount, "EUR", f"D-{e2e}", account_iban=IBAN)


def card(pi: str, amount: int) -> CardIntent:
    return CardIntent(pi, 1, "EUR", amount, amount, "credited", 0, 0)


@dataclass
class Records:
    lines: list[FiatLine] = field(default_factory=list)
    debits: list[StatementDebit] = field(default_factory=list)
    withdrawals: list[Withdrawal] = field(default_factory=list)
    cards: list[CardIntent] = field(default_factory=list)
    applied: set[str] = field(default_factory=set)
    held: set[int] = field(default_factory=set)


def position(r: Records, closing: str = "1000.00") -> BankPosition:
    return bank_position(
        "EUR",
        2,
        balances=[
            StatementBalance(IBAN, "S-2", "EUR", "0.00", "2026-11-26", closing, "2026-11-26")
        ],
        first_import_ms=CUTOFF,
        lines=r.lines,
        debits=r.debits,
        withdrawals=r.withdrawals,
        card_intents=r.cards,
        applied_refs=r.applied,
        held=r.held,
    )


# (what is in flight, the records, uncredited, card credits, settled not on a statement,
#  paid not settled)
TABLE = [
    ("nothing", Records(), 0, 0, 0, 0),
    (
        "a review line: at the bank, owed to nobody yet",
        Records(lines=[line(1, "6.00")]),
        600,
        0,
        0,
        0,
    ),
    (
        "a matched line the core applied: owed like any balance",
        Records(lines=[line(1, "6.00", "matched")], applied={f"camt:{IBAN}:L-1"}),
        0,
        0,
        0,
        0,
    ),
    ("a matched line not applied yet", Records(lines=[line(1, "6.00", "matched")]), 600, 0, 0, 0),
    (
        "a returned line paid back on a statement",
        Records(lines=[line(1, "6.00", "return_sent")], debits=[debit("RET-1", "6.00")]),
        0,
        0,
        0,
        0,
    ),
    (
        "a return sent, not yet on a statement",
        Records(lines=[line(1, "6.00", "return_sent")]),
        600,
        0,
        0,
        0,
    ),
    (
        "a return sent before balances were kept: taken as paid",
        Records(lines=[line(1, "6.00", "return_sent", decided_at=10)]),
        0,
        0,
        0,
        0,
    ),
    (
        "a card payment the core credited: the processor holds it",
        Records(cards=[card("pi_1", 2_500)], applied={"stripe:pi_1"}),
        0,
        2_500,
        0,
        0,
    ),
    ("a card payment not credited", Records(cards=[card("pi_1", 2_500)]), 0, 0, 0, 0),
    (
        "a withdrawal settled in the core, not yet paid by the bank: the net amount",
        Records(withdrawals=[withdrawal(7, 25_050, 50, "confirmed")]),
        0,
        0,
        25_000,
        0,
    ),
    (
        "settled and on a statement",
        Records(
            withdrawals=[withdrawal(7, 25_050, 50, "confirmed")], debits=[debit("WD-7", "250.00")]
        ),
        0,
        0,
        0,
        0,
    ),
    (
        "paid by the bank, still held in the core",
        Records(
            withdrawals=[withdrawal(7, 25_050, 50, "settling")],
            debits=[debit("WD-7", "250.00")],
            held={7},
        ),
        0,
        0,
        0,
        25_000,
    ),
    (
        "paid, then returned by the bank (released) with the credit in review",
        Records(
            withdrawals=[withdrawal(7, 25_050, 50, "failed")],
            debits=[debit("WD-7", "250.00")],
            lines=[line(3, "250.00")],
        ),
        25_000,
        0,
        0,
        25_000,
    ),
    (
        "settled before balances were kept: taken as on a statement",
        Records(withdrawals=[withdrawal(7, 25_050, 50, "confirmed", created=10)]),
        0,
        0,
        0,
        0,
    ),
]


@pytest.mark.parametrize(
    ("what", "records", "uncredited", "cards", "settled", "paid"),
    TABLE,
    ids=[row[0] for row in TABLE],
)
def test_what_is_in_flight(
    what: str, records: Records, uncredited: int, cards: int, settled: int, paid: int
) -> None:
    p = position(records)
    assert (p.uncredited, p.card_credits, p.settled_not_on_statement, p.paid_not_settled) == (
        uncredited,
        cards,
        settled,
        paid,
    ), what
    assert p.closing == 100_000 and p.statements == (f"{IBAN} S-2 2026-11-26",)
    assert p.expected(90_000) == 90_000 + uncredited - cards + settled - paid


@pytest.mark.parametrize(
    ("closing", "owed", "severity", "difference"),
    [
        ("1006.00", 100_000, None, None),  # balanced: the review line is the 6.00
        ("996.00", 100_000, "critical", -1_000),  # 10.00 EUR below
        ("1010.00", 100_000, "info", 400),  # the exchange's own money
        ("-4.00", 0, "critical", -1_000),  # an overdrawn account
    ],
)
def test_a_shortfall_is_critical_with_both_figures_and_a_surplus_information(
    closing: str, owed: int, severity: str | None, difference: int | None
) -> None:
    p = position(Records(lines=[line(1, "6.00")]), closing=closing)
    found = check_bank({"EUR": owed}, {"EUR": p})
    if severity is None:
        assert found == []
        return
    (f,) = found
    assert (f.check, f.severity, f.asset, f.difference) == ("bank", severity, "EUR", difference)
    assert f.expected == owed + 600 and f.actual == minor_units(closing, 2)
    if severity == "critical":
        assert f"bank SHORTFALL of {units(-difference, 2)} EUR" in f.message  # type: ignore[operator]
        assert f"should hold {units(owed + 600, 2)} EUR" in f.message
        assert f"close at {closing} ({IBAN} S-2 2026-11-26)" in f.message


def test_no_statement_is_a_warning_only_when_the_bank_should_hold_something() -> None:
    empty = BankPosition("EUR", 2, None)
    assert check_bank({"EUR": 0}, {"EUR": empty}) == []
    (f,) = check_bank({"EUR": 1_250}, {"EUR": empty})
    assert f.severity == "warning" and "no camt.053 statement" in f.message
    assert "12.50 EUR" in f.message


def test_an_amount_the_currency_cannot_carry_is_named_not_rounded() -> None:
    p = position(Records(lines=[line(1, "1.005")]))
    assert p.uncredited == 0
    (f,) = [f for f in check_bank({"EUR": 100_000}, {"EUR": p}) if f.severity == "warning"]
    assert "1.005 EUR is not an amount in 2 decimals" in f.message


def test_a_statement_not_imported_between_two_is_named() -> None:
    newest = StatementBalance(IBAN, "S-3", "EUR", "990.00", "2026-11-27", "1000.00", "2026-11-27")
    before = StatementBalance(IBAN, "S-1", "EUR", "0.00", "2026-11-25", "980.00", "2026-11-25")
    p = bank_position(
        "EUR",
        2,
        balances=[newest],
        first_import_ms=CUTOFF,
        lines=[],
        debits=[],
        withdrawals=[],
        card_intents=[],
        applied_refs=set(),
        held=set(),
        previous=[before],
    )
    found = check_bank({"EUR": 100_000}, {"EUR": p})
    assert [f.severity for f in found] == ["warning"]
    assert "S-1 closes at 980.00 on 2026-11-25, S-3 opens at 990.00" in found[0].message


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("12.50", 1_250),
        ("-12.5", -1_250),
        ("7", 700),
        ("1.000", 100),
        ("0", 0),
        ("1.005", None),
        ("1,00", None),
        ("", None),
    ],
)
def test_amounts_convert_exactly(text: str, value: int | None) -> None:
    assert minor_units(text, 2) == value
    if value is not None:
        assert minor_units(units(value, 2), 2) == value
