"""ISO 20022 camt.053 (bank-to-customer statement) reader: the booked credits of a file.

Accepted: ``urn:iso:std:iso:20022:tech:xsd:camt.053.001.02`` to ``.08`` (the versions
banks send today; the element names used here are the same in all of them, except
``Sts`` which became ``Sts/Cd`` in .06 and ``Dbtr`` which gained a ``Pty`` level in .08).

Invariants:
- a file is read whole or refused with a :class:`StatementError` whose message names
  the element path (``Stmt[1]/Ntry[3]/Amt``) and the file's line; nothing is returned
  from a file with any problem;
- only booked (``BOOK``) credit (``CRDT``) entries that are not reversals become lines;
  booked debits (``DBIT``) report their transactions' end-to-end ids (payments we sent);
- amounts stay decimal text (checked as ``digits[.digits]``), converted exactly by the
  service; currencies are three capitals;
- an entry is identified by the bank's ``AcctSvcrRef`` (else ``NtryRef``, else the
  single transaction's ``AcctSvcrRef``, else ``<statement id>#<entry number>``); a batch
  entry with several transactions becomes one line per transaction, ``<entry>/<n>``,
  whose amounts must add up to the entry's.
"""

from __future__ import annotations

import re
from decimal import Decimal
from xml.etree.ElementTree import Element

from tradewind.adapters.banks.safe_xml import Document, XmlRefused, parse
from tradewind.services.errors import ServiceError
from tradewind.services.fiat.bank_ids import validate_iban
from tradewind.services.fiat.ports import (
    Statement,
    StatementDebit,
    StatementError,
    StatementLine,
)

NS_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.053.001."
VERSIONS = tuple(f"{NS_PREFIX}{n:02d}" for n in range(2, 9))
_AMOUNT = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,5})?")
_CURRENCY = re.compile(r"[A-Z]{3}")


class _Reader:
    def __init__(self, doc: Document, ns: str) -> None:
        self.doc = doc
        self.ns = ns

    def q(self, path: str) -> str:
        return "/".join(f"{{{self.ns}}}{part}" for part in path.split("/"))

    def find(self, element: Element, path: str) -> Element | None:
        return element.find(self.q(path))

    def findall(self, element: Element, path: str) -> list[Element]:
        return element.findall(self.q(path))

    def text(self, element: Element, path: str) -> str | None:
        found = self.find(element, path)
        if found is None or found.text is None or not found.text.strip():
            return None
        return found.text.strip()

    def fail(self, where: str, element: Element, problem: str) -> StatementError:
        return StatementError(f"{where}: {problem} (line {self.doc.line(element)})")

    def need(self, element: Element, path: str, where: str) -> str:
        value = self.text(element, path)
        if value is None:
            return_element = self.find(element, path)
            raise self.fail(
                f"{where}/{path}",
                element if return_element is None else return_element,
                "missing" if return_element is None else "empty",
            )
        return value


class Camt053Reader:
    """The :class:`~tradewind.services.fiat.ports.StatementReader` for camt.053."""

    def read(self, data: bytes) -> Statement:
        try:
            doc = parse(data)
        except XmlRefused as exc:
            raise StatementError(str(exc)) from None
        root = doc.root
        ns, _, local = root.tag[1:].partition("}") if root.tag.startswith("{") else ("", "", "")
        if local != "Document" or not ns.startswith("urn:iso:std:iso:20022:tech:xsd:"):
            raise StatementError(
                f"Document: the root is not an ISO 20022 Document (line {doc.line(root)})"
            )
        if ns not in VERSIONS:
            name = ns.rsplit(":", 1)[-1]
            raise StatementError(
                f"Document: {name} is not supported (camt.053.001.02 to .08 are) "
                f"(line {doc.line(root)})"
            )
        r = _Reader(doc, ns)
        message = r.find(root, "BkToCstmrStmt")
        if message is None:
            raise r.fail("Document/BkToCstmrStmt", root, "missing")
        message_id = r.need(message, "GrpHdr/MsgId", "BkToCstmrStmt")
        statements = r.findall(message, "Stmt")
        if not statements:
            raise r.fail("BkToCstmrStmt/Stmt", message, "no statement in the file")
        credits: list[StatementLine] = []
        debits: list[StatementDebit] = []
        skipped = 0
        ibans: list[str] = []
        stmt_ids: list[str] = []
        for s, stmt in enumerate(statements, 1):
            where = f"Stmt[{s}]"
            stmt_id = r.need(stmt, "Id", where)
            iban_text = r.text(stmt, "Acct/Id/IBAN")
            if iban_text is None:
                raise r.fail(f"{where}/Acct/Id/IBAN", stmt, "missing (only IBAN accounts)")
            try:
                iban = validate_iban(iban_text)
            except ServiceError as exc:
                raise r.fail(f"{where}/Acct/Id/IBAN", stmt, exc.message) from None
            ibans.append(iban)
            stmt_ids.append(stmt_id)
            for n, entry in enumerate(r.findall(stmt, "Ntry"), 1):
                lines = self._entry(r, entry, f"{where}/Ntry[{n}]", iban, f"{stmt_id}#{n}", debits)
                if lines is None:
                    skipped += 1
                else:
                    credits.extend(lines)
        refs = [line.ref for line in credits]
        if len(set(refs)) != len(refs):
            dup = next(ref for ref in refs if refs.count(ref) > 1)
            raise StatementError(f"two entries have the same reference {dup}")
        return Statement(
            version=ns.rsplit(":", 1)[-1],
            message_id=message_id,
            statement_ids=tuple(stmt_ids),
            account_ibans=tuple(dict.fromkeys(ibans)),
            credits=tuple(credits),
            skipped=skipped,
            debits=tuple(debits),
        )

    def _amount(self, r: _Reader, element: Element, path: str, where: str) -> tuple[str, str]:
        amt = r.find(element, path)
        if amt is None:
            raise r.fail(f"{where}/{path}", element, "missing")
        text = (amt.text or "").strip()
        if not _AMOUNT.fullmatch(text):
            raise r.fail(f"{where}/{path}", amt, f"{text!r} is not a decimal amount")
        currency = amt.get("Ccy", "")
        if not _CURRENCY.fullmatch(currency):
            raise r.fail(f"{where}/{path}@Ccy", amt, f"{currency!r} is not a currency code")
        return text, currency

    def _entry(
        self,
        r: _Reader,
        entry: Element,
        where: str,
        iban: str,
        fallback: str,
        debits: list[StatementDebit],
    ) -> list[StatementLine] | None:
        amount, currency = self._amount(r, entry, "Amt", where)
        indicator = r.need(entry, "CdtDbtInd", where)
        if indicator not in ("CRDT", "DBIT"):
            raise r.fail(f"{where}/CdtDbtInd", entry, f"{indicator!r} is not CRDT or DBIT")
        status = r.text(entry, "Sts/Cd") or r.text(entry, "Sts")
        if status is None:
            raise r.fail(f"{where}/Sts", entry, "missing")
        reversal = (r.text(entry, "RvslInd") or "false").lower() in ("true", "1")
        if indicator == "DBIT" and status == "BOOK" and not reversal:
            self._debits(r, entry, where, amount, currency, fallback, debits)
        if indicator != "CRDT" or status != "BOOK" or reversal:
            return None
        booking = r.text(entry, "BookgDt/Dt") or (r.text(entry, "BookgDt/DtTm") or "")[:10]
        txs = r.findall(entry, "NtryDtls/TxDtls")
        entry_ref = (
            r.text(entry, "AcctSvcrRef")
            or r.text(entry, "NtryRef")
            or (r.text(txs[0], "Refs/AcctSvcrRef") if len(txs) == 1 else None)
            or fallback
        )
        if len(entry_ref) > 80:
            raise r.fail(f"{where}/AcctSvcrRef", entry, "longer than 80 characters")
        line_no = r.doc.line(entry)
        if len(txs) <= 1:
            tx = txs[0] if txs else None
            return [self._line(r, tx, iban, entry_ref, amount, currency, booking, line_no)]
        lines: list[StatementLine] = []
        total = Decimal(0)
        for t, tx in enumerate(txs, 1):
            tx_where = f"{where}/NtryDtls/TxDtls[{t}]"
            if r.find(tx, "AmtDtls/TxAmt/Amt") is not None:
                tx_amount, tx_currency = self._amount(r, tx, "AmtDtls/TxAmt/Amt", tx_where)
            else:
                tx_amount, tx_currency = self._amount(r, tx, "Amt", tx_where)
            if tx_currency != currency:
                raise r.fail(tx_where, tx, f"{tx_currency} in an entry of {currency}")
            total += Decimal(tx_amount)
            lines.append(
                self._line(
                    r, tx, iban, f"{entry_ref}/{t}", tx_amount, currency, booking, r.doc.line(tx)
                )
            )
        if total != Decimal(amount):
            raise r.fail(where, entry, f"its transactions add up to {total}, not {amount}")
        return lines

    def _debits(
        self,
        r: _Reader,
        entry: Element,
        where: str,
        amount: str,
        currency: str,
        fallback: str,
        debits: list[StatementDebit],
    ) -> None:
        """The end-to-end ids of a booked debit's transactions (a payment we sent)."""
        txs = r.findall(entry, "NtryDtls/TxDtls")
        entry_ref = r.text(entry, "AcctSvcrRef") or r.text(entry, "NtryRef") or fallback
        for t, tx in enumerate(txs, 1):
            e2e = r.text(tx, "Refs/EndToEndId")
            if not e2e or e2e == "NOTPROVIDED":
                continue
            tx_where = f"{where}/NtryDtls/TxDtls[{t}]"
            if r.find(tx, "AmtDtls/TxAmt/Amt") is not None:
                tx_amount, tx_currency = self._amount(r, tx, "AmtDtls/TxAmt/Amt", tx_where)
            elif len(txs) == 1:
                tx_amount, tx_currency = amount, currency
            else:
                tx_amount, tx_currency = self._amount(r, tx, "Amt", tx_where)
            debits.append(StatementDebit(e2e[:35], tx_amount, tx_currency, entry_ref[:80]))

    def _line(
        self,
        r: _Reader,
        tx: Element | None,
        iban: str,
        entry_ref: str,
        amount: str,
        currency: str,
        booking: str,
        line_no: int,
    ) -> StatementLine:
        remittance: list[str] = []
        debtor_name = debtor_iban = None
        if tx is not None:
            for info in r.findall(tx, "RmtInf/Strd/CdtrRefInf/Ref"):
                if info.text and info.text.strip():
                    remittance.append(info.text.strip())
            for info in r.findall(tx, "RmtInf/Ustrd"):
                if info.text and info.text.strip():
                    remittance.append(info.text.strip())
            debtor_name = r.text(tx, "RltdPties/Dbtr/Nm") or r.text(tx, "RltdPties/Dbtr/Pty/Nm")
            debtor_iban = r.text(tx, "RltdPties/DbtrAcct/Id/IBAN")
        return StatementLine(
            account_iban=iban,
            entry_ref=entry_ref,
            amount=amount,
            currency=currency,
            remittance=tuple(text[:500] for text in remittance),
            booking_date=booking[:10] or None,
            debtor_name=None if debtor_name is None else debtor_name[:140],
            debtor_iban=None if debtor_iban is None else debtor_iban[:34],
            line_no=line_no,
        )
