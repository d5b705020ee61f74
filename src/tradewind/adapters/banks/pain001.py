"""ISO 20022 pain.001.001.03 (customer credit transfer initiation): the payment file a
bank takes to pay out approved fiat withdrawals.

Invariants:
- only checked payouts go in (:mod:`tradewind.services.fiat.payouts`: IBAN mod-97 and
  structure, BIC shape, SEPA texts, exact decimal amounts); one ``PmtInf`` per currency
  (``SEPA`` service level for EUR), ``NbOfTxs`` and ``CtrlSum`` computed from the
  payouts, amounts written with exactly the currency's decimals;
- the writer is pure (the message id, creation time and execution date are given), so
  the same payouts always make the same bytes;
- :func:`read_pain001` is the check of what the writer emits: it parses a file with the
  same hardened parser as statements and verifies the structure, the counts and sums,
  and every IBAN/BIC, giving back the payouts; a file that fails names the element
  path and line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from xml.etree.ElementTree import Element, SubElement, indent, tostring

from tradewind.adapters.banks.safe_xml import Document, XmlRefused, parse
from tradewind.services.errors import ServiceError
from tradewind.services.fiat.bank_ids import validate_bic, validate_iban
from tradewind.services.fiat.config import BankAccount
from tradewind.services.fiat.payouts import InvalidPayout, Payout, currency_decimals, payout_from

NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.03"
_ID = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]{1,35}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}")


class PaymentFileError(ServiceError):
    code = "invalid_payment_file"
    status_hint = 400
    default_message = "not a valid pain.001.001.03 payment file"


@dataclass(frozen=True, slots=True)
class PaymentFile:
    message_id: str
    created_at: str
    execution_date: str
    debtor: BankAccount
    payouts: tuple[Payout, ...]


def _amount_text(amount: Decimal, currency: str) -> str:
    return f"{amount.quantize(Decimal(1).scaleb(-currency_decimals(currency))):f}"


def _sub(parent: Element, tag: str, text: str | None = None, **attrs: str) -> Element:
    element = SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def write_pain001(
    payouts: Sequence[Payout],
    *,
    debtor: BankAccount,
    message_id: str,
    created_at: str,
    execution_date: str,
) -> bytes:
    """The payment file of ``payouts`` (already checked) from ``debtor``'s account.
    ``created_at`` is ``YYYY-MM-DDThh:mm:ss``, ``execution_date`` ``YYYY-MM-DD``."""
    if not payouts:
        raise InvalidPayout("no payouts")
    if not _ID.fullmatch(message_id):
        raise InvalidPayout("message id: 1-35 characters of the SEPA set")
    if not _DATETIME.fullmatch(created_at) or not _DATE.fullmatch(execution_date):
        raise InvalidPayout("created_at is YYYY-MM-DDThh:mm:ss, execution_date YYYY-MM-DD")
    by_currency: dict[str, list[Payout]] = {}
    for p in payouts:
        by_currency.setdefault(p.currency, []).append(p)
    root = Element("Document", {"xmlns": NS})
    initiation = _sub(root, "CstmrCdtTrfInitn")
    header = _sub(initiation, "GrpHdr")
    _sub(header, "MsgId", message_id)
    _sub(header, "CreDtTm", created_at)
    _sub(header, "NbOfTxs", str(len(payouts)))
    _sub(header, "CtrlSum", f"{sum((p.amount for p in payouts), Decimal(0)):f}")
    _sub(_sub(header, "InitgPty"), "Nm", debtor.beneficiary)
    for n, (currency, group) in enumerate(sorted(by_currency.items()), 1):
        info = _sub(initiation, "PmtInf")
        _sub(info, "PmtInfId", f"{message_id[:31]}-{n}")
        _sub(info, "PmtMtd", "TRF")
        _sub(info, "NbOfTxs", str(len(group)))
        _sub(info, "CtrlSum", f"{sum((p.amount for p in group), Decimal(0)):f}")
        if currency == "EUR":
            _sub(_sub(_sub(info, "PmtTpInf"), "SvcLvl"), "Cd", "SEPA")
        _sub(info, "ReqdExctnDt", execution_date)
        _sub(_sub(info, "Dbtr"), "Nm", debtor.beneficiary)
        _sub(_sub(_sub(info, "DbtrAcct"), "Id"), "IBAN", debtor.iban)
        _sub(_sub(_sub(info, "DbtrAgt"), "FinInstnId"), "BIC", debtor.bic)
        _sub(info, "ChrgBr", "SLEV")
        for p in group:
            tx = _sub(info, "CdtTrfTxInf")
            _sub(_sub(tx, "PmtId"), "EndToEndId", p.end_to_end_id)
            _sub(_sub(tx, "Amt"), "InstdAmt", _amount_text(p.amount, currency), Ccy=currency)
            if p.bic is not None:
                _sub(_sub(_sub(tx, "CdtrAgt"), "FinInstnId"), "BIC", p.bic)
            _sub(_sub(tx, "Cdtr"), "Nm", p.name)
            _sub(_sub(_sub(tx, "CdtrAcct"), "Id"), "IBAN", p.iban)
            if p.remittance is not None:
                _sub(_sub(tx, "RmtInf"), "Ustrd", p.remittance)
    indent(root)
    body: bytes = tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


class _Check:
    def __init__(self, doc: Document) -> None:
        self.doc = doc

    def q(self, path: str) -> str:
        return "/".join(f"{{{NS}}}{part}" for part in path.split("/"))

    def fail(self, where: str, element: Element, problem: str) -> PaymentFileError:
        return PaymentFileError(f"{where}: {problem} (line {self.doc.line(element)})")

    def one(self, element: Element, path: str, where: str) -> Element:
        found = element.findall(self.q(path))
        if len(found) != 1:
            raise self.fail(f"{where}/{path}", element, "missing" if not found else "repeated")
        return found[0]

    def text(self, element: Element, path: str, where: str) -> str:
        found = self.one(element, path, where)
        if not found.text or not found.text.strip():
            raise self.fail(f"{where}/{path}", found, "empty")
        return found.text.strip()

    def decimal(self, element: Element, path: str, where: str) -> Decimal:
        text = self.text(element, path, where)
        if not re.fullmatch(r"[0-9]{1,18}(?:\.[0-9]{1,5})?", text):
            raise self.fail(f"{where}/{path}", element, f"{text!r} is not a decimal amount")
        return Decimal(text)

    def opt(self, element: Element, path: str) -> str | None:
        found = element.find(self.q(path))
        return None if found is None or not found.text else found.text.strip()


def read_pain001(data: bytes) -> PaymentFile:
    """Parse and check a pain.001.001.03 file as :func:`write_pain001` writes them."""
    try:
        doc = parse(data)
    except XmlRefused as exc:
        raise PaymentFileError(str(exc)) from None
    root = doc.root
    if root.tag != f"{{{NS}}}Document":
        raise PaymentFileError(f"Document: not a pain.001.001.03 document (line {doc.line(root)})")
    c = _Check(doc)
    init = c.one(root, "CstmrCdtTrfInitn", "Document")
    where = "CstmrCdtTrfInitn/GrpHdr"
    header = c.one(init, "GrpHdr", "CstmrCdtTrfInitn")
    message_id = c.text(header, "MsgId", where)
    created = c.text(header, "CreDtTm", where)
    count = c.text(header, "NbOfTxs", where)
    control = c.decimal(header, "CtrlSum", where)
    payouts: list[Payout] = []
    execution_date = ""
    debtor: BankAccount | None = None
    infos = init.findall(c.q("PmtInf"))
    if not infos:
        raise c.fail("CstmrCdtTrfInitn/PmtInf", init, "missing")
    for i, info in enumerate(infos, 1):
        w = f"PmtInf[{i}]"
        if c.text(info, "PmtMtd", w) != "TRF":
            raise c.fail(f"{w}/PmtMtd", info, "only TRF (credit transfers)")
        execution_date = c.text(info, "ReqdExctnDt", w)
        try:
            debtor = BankAccount(
                validate_iban(c.text(info, "DbtrAcct/Id/IBAN", w)),
                validate_bic(c.text(info, "DbtrAgt/FinInstnId/BIC", w)),
                c.text(info, "Dbtr/Nm", w),
            )
        except ServiceError as exc:
            if isinstance(exc, PaymentFileError):
                raise
            raise c.fail(f"{w}/DbtrAcct", info, exc.message) from None
        group: list[Payout] = []
        for t, tx in enumerate(info.findall(c.q("CdtTrfTxInf")), 1):
            tw = f"{w}/CdtTrfTxInf[{t}]"
            amt = c.one(tx, "Amt/InstdAmt", tw)
            item: dict[str, object] = {
                "id": c.text(tx, "PmtId/EndToEndId", tw),
                "name": c.text(tx, "Cdtr/Nm", tw),
                "iban": c.text(tx, "CdtrAcct/Id/IBAN", tw),
                "amount": (amt.text or "").strip(),
                "currency": amt.get("Ccy", ""),
            }
            bic = c.opt(tx, "CdtrAgt/FinInstnId/BIC")
            if bic is not None:
                item["bic"] = bic
            remittance = c.opt(tx, "RmtInf/Ustrd")
            if remittance is not None:
                item["remittance"] = remittance
            try:
                group.append(payout_from(item, tw))
            except ServiceError as exc:
                raise c.fail(tw, tx, exc.message) from None
        if not group:
            raise c.fail(f"{w}/CdtTrfTxInf", info, "missing")
        if c.text(info, "NbOfTxs", w) != str(len(group)):
            raise c.fail(
                f"{w}/NbOfTxs", info, f"says {c.text(info, 'NbOfTxs', w)}, has {len(group)}"
            )
        if c.decimal(info, "CtrlSum", w) != sum((p.amount for p in group), Decimal(0)):
            raise c.fail(f"{w}/CtrlSum", info, "is not the sum of its amounts")
        payouts.extend(group)
    if count != str(len(payouts)):
        raise c.fail(f"{where}/NbOfTxs", header, f"says {count}, the file has {len(payouts)}")
    if control != sum((p.amount for p in payouts), Decimal(0)):
        raise c.fail(f"{where}/CtrlSum", header, "is not the sum of the amounts")
    assert debtor is not None
    return PaymentFile(message_id, created, execution_date, debtor, tuple(payouts))
