"""pain.001.001.03 payment files: what goes in is checked (IBAN mod-97, BIC, exact
amounts), what comes out reads back through the checking reader to the same payouts,
and a file whose counts, sums or IBANs were altered is refused."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tradewind.adapters.banks.pain001 import PaymentFileError, read_pain001, write_pain001
from tradewind.services.fiat.bank_ids import IbanChecksumMismatch, InvalidBic, InvalidIban
from tradewind.services.fiat.config import BankAccount
from tradewind.services.fiat.payouts import InvalidPayout, payouts_from

DEBTOR = BankAccount("DE89370400440532013000", "COBADEFFXXX", "Tradewind Ltd")
ITEMS: list[object] = [
    {
        "id": "W-1",
        "name": "Alice Müller",
        "iban": "DE89 3704 0044 0532 0130 00",
        "amount": "10.5",
        "currency": "EUR",
        "remittance": "Tradewind withdrawal W-1",
    },
    {
        "id": "W-2",
        "name": "Bob",
        "iban": "GB29NWBK60161331926819",
        "bic": "NWBKGB2L",
        "amount": "1250",
        "currency": "EUR",
    },
    {
        "id": "W-3",
        "name": "Carol",
        "iban": "GB29NWBK60161331926819",
        "amount": "0.01",
        "currency": "GBP",
    },
]


def write(items: list[object]) -> bytes:
    return write_pain001(
        payouts_from(items),
        debtor=DEBTOR,
        message_id="TW-20261127-1",
        created_at="2026-11-27T12:00:00",
        execution_date="2026-11-28",
    )


def test_a_payment_file_round_trips_through_the_checking_reader() -> None:
    payouts = payouts_from(ITEMS)
    data = write(ITEMS)
    assert data.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert b"urn:iso:std:iso:20022:tech:xsd:pain.001.001.03" in data
    parsed = read_pain001(data)
    assert parsed.payouts == tuple(payouts)
    assert parsed.debtor == DEBTOR and parsed.execution_date == "2026-11-28"
    assert parsed.message_id == "TW-20261127-1"
    assert payouts[0].amount == Decimal("10.50") and payouts[0].iban == "DE89370400440532013000"
    text = data.decode()
    assert '<InstdAmt Ccy="EUR">10.50</InstdAmt>' in text
    assert "<NbOfTxs>3</NbOfTxs>" in text and "<CtrlSum>1260.51</CtrlSum>" in text
    assert text.count("<PmtInf>") == 2 and "<Cd>SEPA</Cd>" in text  # per currency
    assert write(ITEMS) == data  # the same payouts, the same bytes


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"iban": "DE88370400440532013000"}, IbanChecksumMismatch, "check digits"),
        ({"iban": "DE8937040044053201300"}, InvalidIban, "payouts\\[0\\]"),
        ({"bic": "COBA-DE"}, InvalidBic, "payouts\\[0\\]"),
        ({"amount": "1.005"}, InvalidPayout, "EUR has 2 decimals"),
        ({"amount": 10.5}, InvalidPayout, "not a float"),
        ({"amount": "-1"}, InvalidPayout, "greater than zero"),
        ({"amount": "NaN"}, InvalidPayout, "greater than zero"),
        ({"name": ""}, InvalidPayout, "name"),
        ({"name": "x" * 71}, InvalidPayout, "name"),
        ({"id": "a" * 36}, InvalidPayout, "id"),
        ({"currency": "eur"}, InvalidPayout, "currency"),
        ({"iban_typo": "x"}, InvalidPayout, "unknown field"),
    ],
)
def test_bad_payouts_are_refused_naming_the_payout(
    change: dict[str, object], error: type[Exception], message: str
) -> None:
    item = {**ITEMS[0], **change}  # type: ignore[dict-item]
    with pytest.raises(error, match=message):
        payouts_from([item])


def test_a_list_with_a_repeated_id_or_nothing_is_refused() -> None:
    with pytest.raises(InvalidPayout, match="used twice"):
        payouts_from([ITEMS[0], ITEMS[0]])
    with pytest.raises(InvalidPayout, match="no payouts"):
        payouts_from([])


@pytest.mark.parametrize(
    ("old", "new", "where"),
    [
        (b"<NbOfTxs>3</NbOfTxs>", b"<NbOfTxs>4</NbOfTxs>", "GrpHdr/NbOfTxs"),
        (b"<CtrlSum>1260.51</CtrlSum>", b"<CtrlSum>1260.52</CtrlSum>", "GrpHdr/CtrlSum"),
        (b"<CtrlSum>1260.50</CtrlSum>", b"<CtrlSum>1260.40</CtrlSum>", r"PmtInf\[1\]/CtrlSum"),
        (
            b"GB29NWBK60161331926819",
            b"GB29NWBK60161331926818",
            r"PmtInf\[1\]/CdtTrfTxInf\[2\]: .*check digits",
        ),
        (b"<PmtMtd>TRF</PmtMtd>", b"<PmtMtd>CHK</PmtMtd>", "only TRF"),
        (b"pain.001.001.03", b"pain.001.001.09", "not a pain.001.001.03 document"),
    ],
)
def test_an_altered_file_is_refused(old: bytes, new: bytes, where: str) -> None:
    data = write(ITEMS)
    assert old in data, old
    with pytest.raises(PaymentFileError, match=where):
        read_pain001(data.replace(old, new, 1))
