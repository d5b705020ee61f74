"""camt.053 statements written by the tests (no downloaded fixtures): the shapes banks
send, in the versions the reader accepts, built from a few dataclasses."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from xml.sax.saxutils import escape

EXCHANGE_IBAN = "DE89370400440532013000"


@dataclass
class Tx:
    amount: str | None = None
    ustrd: list[str] = field(default_factory=list)
    strd_ref: str | None = None
    debtor_name: str | None = "Jane Payer"
    debtor_iban: str | None = "FR1420041010050500013M02606"
    acct_svcr_ref: str | None = None
    end_to_end_id: str | None = None


@dataclass
class Entry:
    amount: str
    ustrd: list[str] = field(default_factory=list)
    strd_ref: str | None = None
    currency: str = "EUR"
    indicator: str = "CRDT"
    status: str = "BOOK"
    ref: str | None = "E-1"
    reversal: bool = False
    txs: list[Tx] | None = None


def _tx(tx: Tx, currency: str, version: int) -> str:
    parts = ["<TxDtls>"]
    if tx.acct_svcr_ref or tx.end_to_end_id:
        parts.append("<Refs>")
        if tx.acct_svcr_ref:
            parts.append(f"<AcctSvcrRef>{escape(tx.acct_svcr_ref)}</AcctSvcrRef>")
        if tx.end_to_end_id:
            parts.append(f"<EndToEndId>{escape(tx.end_to_end_id)}</EndToEndId>")
        parts.append("</Refs>")
    if tx.amount is not None:
        parts.append(f'<AmtDtls><TxAmt><Amt Ccy="{currency}">{tx.amount}</Amt></TxAmt></AmtDtls>')
    if tx.debtor_name or tx.debtor_iban:
        parts.append("<RltdPties>")
        if tx.debtor_name:
            name = f"<Nm>{escape(tx.debtor_name)}</Nm>"
            parts.append(
                f"<Dbtr><Pty>{name}</Pty></Dbtr>" if version >= 8 else f"<Dbtr>{name}</Dbtr>"
            )
        if tx.debtor_iban:
            parts.append(f"<DbtrAcct><Id><IBAN>{tx.debtor_iban}</IBAN></Id></DbtrAcct>")
        parts.append("</RltdPties>")
    if tx.ustrd or tx.strd_ref:
        parts.append("<RmtInf>")
        parts.extend(f"<Ustrd>{escape(u)}</Ustrd>" for u in tx.ustrd)
        if tx.strd_ref:
            parts.append(
                "<Strd><CdtrRefInf><Tp><CdOrPrtry><Cd>SCOR</Cd></CdOrPrtry></Tp>"
                f"<Ref>{escape(tx.strd_ref)}</Ref></CdtrRefInf></Strd>"
            )
        parts.append("</RmtInf>")
    parts.append("</TxDtls>")
    return "".join(parts)


def _entry(e: Entry, version: int) -> str:
    status = f"<Sts><Cd>{e.status}</Cd></Sts>" if version >= 6 else f"<Sts>{e.status}</Sts>"
    txs = e.txs if e.txs is not None else [Tx(ustrd=e.ustrd, strd_ref=e.strd_ref)]
    body = "".join(_tx(t, e.currency, version) for t in txs)
    ref = f"<AcctSvcrRef>{escape(e.ref)}</AcctSvcrRef>" if e.ref else ""
    reversal = "<RvslInd>true</RvslInd>" if e.reversal else ""
    return (
        f'<Ntry>\n<Amt Ccy="{e.currency}">{e.amount}</Amt>\n<CdtDbtInd>{e.indicator}</CdtDbtInd>'
        f"{reversal}\n{status}\n<BookgDt><Dt>2026-11-26</Dt></BookgDt>\n"
        f"<ValDt><Dt>2026-11-26</Dt></ValDt>\n{ref}\n"
        "<BkTxCd><Domn><Cd>PMNT</Cd><Fmly><Cd>RCDT</Cd><SubFmlyCd>ESCT</SubFmlyCd></Fmly>"
        f"</Domn></BkTxCd>\n<NtryDtls>{body}</NtryDtls>\n</Ntry>\n"
    )


def balance(
    code: str, amount: Decimal | str, currency: str = "EUR", date: str = "2026-11-26"
) -> str:
    """One ``<Bal>`` (``OPBD``, ``PRCD``, ``CLBD``...) of a signed amount."""
    value = Decimal(amount)
    indicator = "DBIT" if value < 0 else "CRDT"
    return (
        f"<Bal><Tp><CdOrPrtry><Cd>{code}</Cd></CdOrPrtry></Tp>"
        f'<Amt Ccy="{currency}">{abs(value):f}</Amt><CdtDbtInd>{indicator}</CdtDbtInd>'
        f"<Dt><Dt>{date}</Dt></Dt></Bal>"
    )


def booked_total(entries: list[Entry], currency: str) -> Decimal:
    """What the booked entries in ``currency`` add to the balance (unreadable amounts
    count 0: the reader refuses those files before it checks balances)."""
    total = Decimal(0)
    for e in entries:
        if e.status != "BOOK" or e.currency != currency:
            continue
        try:
            value = Decimal(e.amount)
        except InvalidOperation:
            continue
        total += value if e.indicator == "CRDT" else -value
    return total


def camt053(
    entries: list[Entry],
    *,
    version: int = 2,
    iban: str = EXCHANGE_IBAN,
    message_id: str = "MSG-1",
    statement_id: str = "STMT-1",
    opening: str = "0.00",
    closing: str | None = None,
    date: str = "2026-11-26",
    balances: str | None = None,
) -> bytes:
    """A statement of ``entries``; its opening (``OPBD``) and closing (``CLBD``) booked
    balances per currency, the closing computed from the entries unless given (the
    opening and a given closing are for EUR; other currencies open at 0). ``balances``
    replaces the ``<Bal>`` elements as written (malformed ones). They stay on one line,
    so the line numbers of entries do not depend on them."""
    ns = f"urn:iso:std:iso:20022:tech:xsd:camt.053.001.{version:02d}"
    body = "".join(_entry(e, version) for e in entries)
    if balances is None:
        parts = []
        for currency in ["EUR", *sorted({e.currency for e in entries} - {"EUR"})]:
            start = Decimal(opening) if currency == "EUR" else Decimal("0.00")
            end = start + booked_total(entries, currency)
            if closing is not None and currency == "EUR":
                end = Decimal(closing)
            parts.append(balance("OPBD", start, currency, date))
            parts.append(balance("CLBD", end, currency, date))
        balances = "".join(parts)
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n<Document xmlns="{ns}">\n<BkToCstmrStmt>\n'
        f"<GrpHdr><MsgId>{message_id}</MsgId><CreDtTm>2026-11-27T06:00:00</CreDtTm></GrpHdr>\n"
        f"<Stmt>\n<Id>{statement_id}</Id>\n<CreDtTm>2026-11-27T06:00:00</CreDtTm>\n"
        f"<Acct><Id><IBAN>{iban}</IBAN></Id><Ccy>EUR</Ccy></Acct>\n"
        f"{balances}\n"
        f"{body}</Stmt>\n</BkToCstmrStmt>\n</Document>\n"
    ).encode()
