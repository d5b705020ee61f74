"""camt.053 statements: booked credits are read in every accepted version; anything
malformed, hostile (XXE, billion laughs) or unsupported is refused naming where."""

from __future__ import annotations

import pytest

from tests.support.camt import EXCHANGE_IBAN, Entry, Tx, camt053
from tradewind.adapters.banks.camt053 import Camt053Reader
from tradewind.services.fiat.ports import StatementError

reader = Camt053Reader()


@pytest.mark.parametrize("version", [2, 4, 6, 8])
def test_booked_credits_are_read_in_each_version(version: int) -> None:
    data = camt053(
        [
            Entry("100.50", ustrd=["RF18 5390 0754 7034 thanks"], ref="E-1"),
            Entry("7", strd_ref="RF18539007547034", ref="E-2"),
            Entry("20.00", indicator="DBIT", ref="E-3"),  # money out: not a deposit
            Entry("30.00", status="PDNG", ref="E-4"),  # not booked yet
            Entry("40.00", reversal=True, ref="E-5"),  # a reversal
        ],
        version=version,
    )
    statement = reader.read(data)
    assert statement.version == f"camt.053.001.{version:02d}"
    assert statement.account_ibans == (EXCHANGE_IBAN,)
    assert statement.skipped == 3
    first, second = statement.credits
    assert first.ref == f"camt:{EXCHANGE_IBAN}:E-1"
    assert (first.amount, first.currency) == ("100.50", "EUR")
    assert first.remittance == ("RF18 5390 0754 7034 thanks",)
    assert first.debtor_name == "Jane Payer" and first.debtor_iban is not None
    assert first.booking_date == "2026-11-26" and first.line_no > 0
    assert second.remittance == ("RF18539007547034",)


def test_a_batch_entry_is_one_line_per_transaction() -> None:
    data = camt053(
        [
            Entry(
                "15.00",
                ref="B-1",
                txs=[Tx(amount="10.00", ustrd=["a"]), Tx(amount="5.00", ustrd=["b"])],
            )
        ]
    )
    lines = reader.read(data).credits
    assert [(x.entry_ref, x.amount, x.remittance) for x in lines] == [
        ("B-1/1", "10.00", ("a",)),
        ("B-1/2", "5.00", ("b",)),
    ]
    bad = camt053([Entry("16.00", ref="B-2", txs=[Tx(amount="10.00"), Tx(amount="5.00")])])
    with pytest.raises(StatementError, match=r"Stmt\[1\]/Ntry\[1\]: its transactions add up"):
        reader.read(bad)


def test_an_entry_without_bank_reference_gets_the_statement_position() -> None:
    line = reader.read(camt053([Entry("1.00", ref=None)], statement_id="S-9")).credits[0]
    assert line.entry_ref == "S-9#1"


@pytest.mark.parametrize(
    ("data", "where"),
    [
        (
            camt053([Entry("12,50")]),
            r"Stmt\[1\]/Ntry\[1\]/Amt: '12,50' is not a decimal amount \(line 11\)",
        ),
        (camt053([Entry("1.00", currency="euro")]), r"Ntry\[1\]/Amt@Ccy"),
        (camt053([Entry("1.00", indicator="CREDIT")]), r"Ntry\[1\]/CdtDbtInd"),
        (
            camt053([Entry("1.00")]).replace(b"<CdtDbtInd>CRDT</CdtDbtInd>\n<Sts>BOOK</Sts>", b""),
            r"Ntry\[1\]/CdtDbtInd: missing",
        ),
        (camt053([Entry("1.00")], iban="DE00370400440532013000"), r"Stmt\[1\]/Acct/Id/IBAN"),
        (
            camt053([Entry("1.00")]).replace(b"<MsgId>MSG-1</MsgId>", b""),
            r"BkToCstmrStmt/GrpHdr/MsgId: missing",
        ),
        (
            camt053([Entry("1.00")]).replace(b"</Ntry>", b"</Ntr>"),
            r"line \d+, column \d+: mismatched tag",
        ),
        (camt053([Entry("1.00")], version=9), r"camt.053.001.09 is not supported"),
        (
            camt053([Entry("1.00")]).replace(b"camt.053.001.02", b"camt.052.001.02"),
            r"camt.052.001.02 is not supported",
        ),
        (b"<html><body>hello</body></html>", r"not an ISO 20022 Document"),
        (b"", r"no element found"),
        (
            camt053([Entry("1.00", ref="X"), Entry("2.00", ref="X")]),
            r"two entries have the same reference",
        ),
    ],
)
def test_malformed_files_are_refused_naming_the_place(data: bytes, where: str) -> None:
    with pytest.raises(StatementError, match=where):
        reader.read(data)


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol9 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>&lol9;</MsgId></GrpHdr></BkToCstmrStmt></Document>"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE Document [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"><BkToCstmrStmt>
<GrpHdr><MsgId>&secret;</MsgId></GrpHdr></BkToCstmrStmt></Document>"""

EXTERNAL_DTD = b"""<?xml version="1.0"?>
<!DOCTYPE Document SYSTEM "http://127.0.0.1:9/evil.dtd">
<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.02"/>"""


@pytest.mark.parametrize("data", [BILLION_LAUGHS, XXE, EXTERNAL_DTD])
def test_hostile_xml_is_refused_before_any_entity_is_expanded(data: bytes) -> None:
    with pytest.raises(StatementError, match=r"line 2: a .* declaration is refused") as caught:
        reader.read(data)
    assert "root:" not in caught.value.message  # nothing of /etc/passwd


def test_a_huge_file_is_refused_unread() -> None:
    with pytest.raises(StatementError, match="larger than"):
        reader.read(b" " * (20 * 1024 * 1024 + 1))
