"""camt.053 statement balances: the opening and closing booked balances are read per
statement and currency, must add up with the booked entries, and a malformed or missing
balance refuses the file naming where (what reconciliation compares, ADR 0036)."""

from __future__ import annotations

import pytest

from tests.support.camt import EXCHANGE_IBAN, Entry, Tx, balance, camt053
from tradewind.adapters.banks.camt053 import Camt053Reader
from tradewind.services.fiat.ports import StatementBalance, StatementError

reader = Camt053Reader()
ENTRIES = [
    Entry("100.50", ustrd=["a"], ref="E-1"),
    Entry("20.00", indicator="DBIT", ref="E-2", txs=[Tx(end_to_end_id="WD-7")]),
    Entry("30.00", status="PDNG", ref="E-3"),  # not booked: not in the booked balance
    Entry("5.00", indicator="DBIT", reversal=True, ref="E-4"),  # counts by its indicator
]


@pytest.mark.parametrize("version", [2, 6, 8])
def test_balances_are_read_signed_per_statement_and_currency(version: int) -> None:
    data = camt053(ENTRIES, version=version, opening="-10.00", statement_id="S-9")
    statement = reader.read(data)
    assert statement.balances == (
        StatementBalance(
            EXCHANGE_IBAN,
            "S-9",
            "EUR",
            "-10.00",
            "2026-11-26",
            "65.50",
            "2026-11-26",
            "2026-11-27T06:00:00",
        ),
    )
    (paid,) = statement.debits
    assert (paid.end_to_end_id, paid.account_iban, paid.statement_id, paid.booking_date) == (
        "WD-7",
        EXCHANGE_IBAN,
        "S-9",
        "2026-11-26",
    )


def test_prcd_opens_when_there_is_no_opbd_and_other_currencies_have_their_own() -> None:
    entries = [Entry("1.00", ref="E-1"), Entry("8.00", currency="USD", ref="E-2")]
    bal = (
        balance("PRCD", "2.00")
        + balance("CLBD", "3.00")
        + balance("OPBD", "0", "USD")
        + balance("CLBD", "8.00", "USD")
        + balance("ITBD", "99.00")  # interim balances are not compared
    )
    got = {
        (b.currency, b.opening, b.closing)
        for b in reader.read(camt053(entries, balances=bal)).balances
    }
    assert got == {("EUR", "2.00", "3.00"), ("USD", "0", "8.00")}


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (
            camt053(ENTRIES, closing="55.50"),
            r"Stmt\[1\]/Bal: the opening balance 0.00 EUR and the booked entries \(\+75.50\) "
            r"make 75.50, not the closing balance 55.50 \(line 9\)",
        ),
        (
            camt053(ENTRIES, balances=balance("OPBD", "0.00")),
            r"Stmt\[1\]/Bal: no closing booked balance \(CLBD\) in EUR",
        ),
        (
            camt053(ENTRIES, balances=balance("CLBD", "75.50")),
            r"Stmt\[1\]/Bal: no opening booked balance \(OPBD or PRCD\) in EUR",
        ),
        (
            camt053(
                [Entry("1.00", currency="USD")],
                balances=balance("OPBD", "0") + balance("CLBD", "0"),
            ),
            r"no closing booked balance \(CLBD\) in USD",
        ),
        (
            camt053([], balances=balance("OPBD", "0").replace("0</Amt>", "1,00</Amt>")),
            r"Stmt\[1\]/Bal\[1\]/Amt: '1,00' is not a decimal amount",
        ),
        (
            camt053([], balances=balance("CLBD", "0").replace("CRDT", "PLUS")),
            r"Stmt\[1\]/Bal\[1\]/CdtDbtInd: 'PLUS' is not CRDT or DBIT",
        ),
        (
            camt053([], balances=balance("CLBD", "0").replace("<CdtDbtInd>CRDT</CdtDbtInd>", "")),
            r"Stmt\[1\]/Bal\[1\]/CdtDbtInd: missing",
        ),
        (
            camt053([], balances=balance("CLBD", "0", date="27.11.2026")),
            r"Stmt\[1\]/Bal\[1\]/Dt: '27.11.2026' is not a date",
        ),
        (
            camt053([], balances=balance("CLBD", "0").replace("<Dt><Dt>2026-11-26</Dt></Dt>", "")),
            r"Stmt\[1\]/Bal\[1\]/Dt: missing",
        ),
        (
            camt053([], balances=balance("CLBD", "0").replace("<Cd>CLBD</Cd>", "")),
            r"Stmt\[1\]/Bal\[1\]/Tp/CdOrPrtry/Cd: missing",
        ),
        (
            camt053([], balances=balance("OPBD", "0") + balance("CLBD", "0") * 2),
            r"Stmt\[1\]/Bal\[3\]: a second CLBD balance in EUR",
        ),
        (
            camt053([], balances=balance("CLBD", "0").replace('Ccy="EUR"', 'Ccy="eur"')),
            r"Stmt\[1\]/Bal\[1\]/Amt@Ccy: 'eur' is not a currency code",
        ),
    ],
    ids=[
        "does not add up",
        "no closing",
        "no opening",
        "entries in a currency without balances",
        "amount",
        "indicator",
        "no indicator",
        "date",
        "no date",
        "no type",
        "two closings",
        "currency",
    ],
)
def test_a_wrong_or_missing_balance_refuses_the_file_naming_where(data: bytes, where: str) -> None:
    with pytest.raises(StatementError, match=where):
        reader.read(data)
