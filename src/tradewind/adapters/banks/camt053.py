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
  whose amounts must add up to the entry's;
- each statement carries, per currency of its balances and booked entries, an opening
  booked balance (``OPBD``, else ``PRCD``) and a closing booked balance (``CLBD``), and
  the opening plus the booked entries (credits less debits, reversals by their own
  indicator) is the closing: a statement that does not add up is refused, since its
  closing balance is what reconciliation compares (ADR 0036).
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
    StatementBalance,
    StatementDebit,
    StatementError,
    StatementLine,
)

NS_PREFIX = "urn:iso:std:iso:20022:tech:xsd:camt.053.001."
VERSIONS = tuple(f"{NS_PREFIX}{n:02d}" for n in range(2, 9))
_AMOUNT = re.compile(r"[0-9]{1,18}(?:\.[0-9]{1,5})?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
OPENING = ("OPBD", "PRCD")
"""Opening booked balance, else the previous statement's closing (some banks send only
``PRCD``)."""
CLOSING = "CLBD"


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
        balances: list[StatementBalance] = []
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
            booked: dict[str, Decimal] = {}
            for n, entry in enumerate(r.findall(stmt, "Ntry"), 1):
                lines = self._entry(
                    r, entry, f"{where}/Ntry[{n}]", (iban, stmt_id), f"{stmt_id}#{n}", debits
                )
                if lines is None:
                    skipped += 1
                else:
                    credits.extend(lines)
                self._book(r, entry, booked)
            balances.extend(self._balances(r, stmt, where, iban, stmt_id, booked))
        keys = [(b.account_iban, b.statement_id, b.currency) for b in balances]
        if len(set(keys)) != len(keys):
            twice = next(k for k in keys if keys.count(k) > 1)
            raise StatementError(f"two statements {twice[1]} of {twice[0]} in {twice[2]}")
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
            balances=tuple(balances),
        )

    @staticmethod
    def _book(r: _Reader, entry: Element, booked: dict[str, Decimal]) -> None:
        """Add a booked entry (read and checked by :meth:`_entry`) to its currency's sum."""
        status = r.text(entry, "Sts/Cd") or r.text(entry, "Sts")
        if status != "BOOK":
            return
        amt = r.find(entry, "Amt")
        assert amt is not None and amt.text is not None  # checked by _entry
        currency = amt.get("Ccy", "")
        value = Decimal(amt.text.strip())
        sign = 1 if r.text(entry, "CdtDbtInd") == "CRDT" else -1
        booked[currency] = booked.get(currency, Decimal(0)) + sign * value

    def _balances(
        self,
        r: _Reader,
        stmt: Element,
        where: str,
        iban: str,
        stmt_id: str,
        booked: dict[str, Decimal],
    ) -> list[StatementBalance]:
        """The statement's opening and closing booked balances per currency, checked
        against its booked entries."""
        found: dict[tuple[str, str], tuple[str, str, Element]] = {}
        for b, bal in enumerate(r.findall(stmt, "Bal"), 1):
            bw = f"{where}/Bal[{b}]"
            code = r.text(bal, "Tp/CdOrPrtry/Cd")
            if code is None:
                if r.text(bal, "Tp/CdOrPrtry/Prtry") is not None:
                    continue  # a bank's own balance type: not one compared here
                raise r.fail(f"{bw}/Tp/CdOrPrtry/Cd", bal, "missing")
            if code not in (*OPENING, CLOSING):
                continue  # interim, available, forward balances
            amount, currency = self._amount(r, bal, "Amt", bw)
            indicator = r.need(bal, "CdtDbtInd", bw)
            if indicator not in ("CRDT", "DBIT"):
                raise r.fail(f"{bw}/CdtDbtInd", bal, f"{indicator!r} is not CRDT or DBIT")
            date = r.text(bal, "Dt/Dt") or (r.text(bal, "Dt/DtTm") or "")[:10]
            if not date:
                raise r.fail(f"{bw}/Dt", bal, "missing")
            if not _DATE.fullmatch(date):
                raise r.fail(f"{bw}/Dt", bal, f"{date!r} is not a date")
            if (code, currency) in found:
                raise r.fail(bw, bal, f"a second {code} balance in {currency}")
            negative = indicator == "DBIT" and Decimal(amount) != 0
            found[(code, currency)] = (f"-{amount}" if negative else amount, date, bal)
        out: list[StatementBalance] = []
        for currency in sorted({c for _, c in found} | set(booked)):
            closing = found.get((CLOSING, currency))
            opening = found.get((OPENING[0], currency)) or found.get((OPENING[1], currency))
            if closing is None:
                raise r.fail(
                    f"{where}/Bal", stmt, f"no closing booked balance (CLBD) in {currency}"
                )
            if opening is None:
                raise r.fail(
                    f"{where}/Bal", stmt, f"no opening booked balance (OPBD or PRCD) in {currency}"
                )
            moved = booked.get(currency, Decimal(0))
            if Decimal(opening[0]) + moved != Decimal(closing[0]):
                raise r.fail(
                    f"{where}/Bal",
                    closing[2],
                    f"the opening balance {opening[0]} {currency} and the booked entries "
                    f"({moved:+f}) make {Decimal(opening[0]) + moved:f}, not the closing "
                    f"balance {closing[0]}",
                )
            out.append(
                StatementBalance(
                    account_iban=iban,
                    statement_id=stmt_id[:35],
                    currency=currency,
                    opening=opening[0],
                    opening_date=opening[1],
                    closing=closing[0],
                    closing_date=closing[1],
                    created=(r.text(stmt, "CreDtTm") or "")[:32] or None,
                )
            )
        return out

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
        account: tuple[str, str],
        fallback: str,
        debits: list[StatementDebit],
    ) -> list[StatementLine] | None:
        """``account``: the statement's IBAN and id."""
        iban = account[0]
        amount, currency = self._amount(r, entry, "Amt", where)
        indicator = r.need(entry, "CdtDbtInd", where)
        if indicator not in ("CRDT", "DBIT"):
            raise r.fail(f"{where}/CdtDbtInd", entry, f"{indicator!r} is not CRDT or DBIT")
        status = r.text(entry, "Sts/Cd") or r.text(entry, "Sts")
        if status is None:
            raise r.fail(f"{where}/Sts", entry, "missing")
        reversal = (r.text(entry, "RvslInd") or "false").lower() in ("true", "1")
        booking = r.text(entry, "BookgDt/Dt") or (r.text(entry, "BookgDt/DtTm") or "")[:10]
        if indicator == "DBIT" and status == "BOOK" and not reversal:
            self._debits(r, entry, where, (amount, currency, booking), account, fallback, debits)
        if indicator != "CRDT" or status != "BOOK" or reversal:
            return None
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
        booked: tuple[str, str, str],
        account: tuple[str, str],
        fallback: str,
        debits: list[StatementDebit],
    ) -> None:
        """The end-to-end ids of a booked debit's transactions (a payment we sent).
        ``booked``: the entry's amount, currency and booking date."""
        amount, currency, booking = booked
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
            debits.append(
                StatementDebit(
                    e2e[:35],
                    tx_amount,
                    tx_currency,
                    entry_ref[:80],
                    account_iban=account[0],
                    statement_id=account[1][:35],
                    booking_date=booking[:10] or None,
                )
            )

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
