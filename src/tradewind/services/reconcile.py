"""Reconciliation: the core's balances against every other record of the same money.

Invariants a clean report proves (each difference is a :class:`Finding` with the
numbers, never a silent pass):
- **core**: the core's own invariants hold (money conserved per asset, nothing negative,
  every lock explained; margin claims balanced);
- **ledger**: at the same seq, the SQL ledger's ``available`` and ``locked`` legs per
  ``(account, asset)`` equal the core's balances, and minus its ``external`` legs per
  asset equals the core's deposits less withdrawals and expenses (network fees booked,
  ADR 0034). The two are compared at one seq
  only: a projector that lags is not a difference, a projector that disagrees is;
- **custody** (per asset, when holdings are given): what the exchange holds outside
  (on chain, at the bank) covers what the core owes, i.e. the sum of every account's
  balance in that asset. More is reported as a surplus (withdrawal fees kept, deposits
  not yet credited), less as a **shortfall**, the one finding that means lost money;
- **bank** (per fiat currency, when the fiat rails are configured): the newest closing
  booked balance of the exchange's bank account equals what the core owes in that
  currency, adjusted by exactly what is legitimately between the two records: transfers
  on a statement the core has not credited (review queue, not yet credited, returned
  but not yet paid back), card payments the core credited (the card processor holds
  that money), fiat withdrawals settled in the core but not yet debited on a statement,
  and withdrawals a statement shows paid that the core has not settled (ADR 0036).

Pure: the caller reads the core, the ledger, the holdings and the bank's records; this
module only compares.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from tradewind.core.engine import Core
from tradewind.core.invariants import check_invariants
from tradewind.services.fiat.ports import CardIntent, FiatLine, StatementBalance, StatementDebit
from tradewind.services.funding.withdrawal_ports import Withdrawal
from tradewind.services.projectors.ports import LedgerBalance

Severity = Literal["critical", "warning", "info"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One difference. ``expected`` is the core's figure, ``actual`` the other record's
    (minor units of ``asset``); ``difference = actual - expected``."""

    check: str
    severity: Severity
    message: str
    asset: str | None = None
    account: int | None = None
    expected: int | None = None
    actual: int | None = None

    @property
    def difference(self) -> int | None:
        if self.expected is None or self.actual is None:
            return None
        return self.actual - self.expected


@dataclass(frozen=True, slots=True)
class Holdings:
    """What the exchange holds of ``asset`` outside the core, and where it was read."""

    asset: str
    amount: int
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class BankPosition:
    """The bank side of one fiat currency, in its minor units: the newest statements'
    closing balance and what is in flight between the bank and the core."""

    currency: str
    decimals: int
    closing: int | None
    """The sum over the configured accounts of each one's newest closing booked balance
    (signed); ``None`` when no statement with balances was imported."""
    statements: tuple[str, ...] = ()
    """``IBAN statement-id closing-date`` of the balances summed."""
    uncredited: int = 0
    """On a statement, not credited by the core at the seq (review queue, matched but not
    yet credited, returned) less what a statement shows paid back (``RET-<line>``)."""
    card_credits: int = 0
    """Card payments the core credited: the card processor holds that money."""
    settled_not_on_statement: int = 0
    """Net amounts of fiat withdrawals settled in the core that no statement shows paid."""
    paid_not_settled: int = 0
    """What statements show paid (``WD-<id>`` debits) for withdrawals the core has not
    settled (the pass settles them within seconds; returned ones are released)."""
    notes: tuple[str, ...] = ()
    """Amounts that could not be counted (more decimals than the currency has)."""
    gaps: tuple[str, ...] = ()
    """A newest statement whose opening is not the closing of the one stored before it:
    a statement between them was not imported (its transfers and payouts are unknown)."""

    def expected(self, owed: int) -> int:
        """What the bank should hold given that the core owes ``owed``."""
        return (
            owed
            + self.uncredited
            - self.card_credits
            + self.settled_not_on_statement
            - self.paid_not_settled
        )


@dataclass(frozen=True, slots=True)
class Report:
    seq: int
    checks: tuple[str, ...]
    findings: tuple[Finding, ...] = field(default=())
    liabilities: Mapping[str, int] = field(default_factory=dict)
    holdings: Mapping[str, Holdings] = field(default_factory=dict)
    bank: Mapping[str, BankPosition] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """No critical or warning finding (a custody surplus is information)."""
        return not any(f.severity != "info" for f in self.findings)


def liabilities(core: Core) -> dict[str, int]:
    """Per asset, everything the core's accounts hold (users, margin wallets, the fee
    account, the lending pool and the insurance fund): what custody must cover."""
    out: dict[str, int] = {}
    for held in core.accounts.values():
        for asset, b in held.items():
            out[asset] = out.get(asset, 0) + b.available + b.locked
    return out


def check_core(core: Core) -> list[Finding]:
    return [Finding("core", "critical", line) for line in check_invariants(core)]


def check_ledger(core: Core, ledger: Mapping[tuple[int, str], LedgerBalance]) -> list[Finding]:
    """The ledger's sums against the core, both at the core's seq."""
    found: list[Finding] = []
    keys = {
        (account, asset)
        for account, held in core.accounts.items()
        for asset, b in held.items()
        if b.available or b.locked
    } | {k for k, b in ledger.items() if b.available or b.locked}
    for account, asset in sorted(keys):
        b = core.accounts.get(account, {}).get(asset)
        have = (0, 0) if b is None else (b.available, b.locked)
        lb = ledger.get((account, asset))
        legs = (0, 0) if lb is None else (lb.available, lb.locked)
        for bucket, want, got in (
            ("available", have[0], legs[0]),
            ("locked", have[1], legs[1]),
        ):
            if want != got:
                found.append(
                    Finding(
                        "ledger",
                        "critical",
                        f"account {account} {asset} {bucket}: core {want}, ledger {got}",
                        asset,
                        account,
                        want,
                        got,
                    )
                )
    external: dict[str, int] = {}
    for (_, asset), lb in ledger.items():
        external[asset] = external.get(asset, 0) - lb.external
    assets = set(external) | set(core.deposited) | set(core.withdrawn) | set(core.expensed)
    for asset in sorted(assets):
        want = (
            core.deposited.get(asset, 0)
            - core.withdrawn.get(asset, 0)
            - core.expensed.get(asset, 0)
        )
        got = external.get(asset, 0)
        if want != got:
            found.append(
                Finding(
                    "ledger",
                    "critical",
                    f"{asset}: deposits less withdrawals and expenses are {want} in the "
                    f"core, {got} in the ledger's external legs",
                    asset,
                    None,
                    want,
                    got,
                )
            )
    return found


def check_custody(owed: Mapping[str, int], holdings: Mapping[str, Holdings]) -> list[Finding]:
    found: list[Finding] = []
    for asset in sorted(holdings):
        h = holdings[asset]
        want = owed.get(asset, 0)
        where = ", ".join(h.sources) or "nowhere"
        if h.amount < want:
            found.append(
                Finding(
                    "custody",
                    "critical",
                    f"{asset}: SHORTFALL of {want - h.amount}: the core owes {want}, "
                    f"custody holds {h.amount} ({where})",
                    asset,
                    None,
                    want,
                    h.amount,
                )
            )
        elif h.amount > want:
            found.append(
                Finding(
                    "custody",
                    "info",
                    f"{asset}: surplus of {h.amount - want}: the core owes {want}, custody "
                    f"holds {h.amount} ({where}); fees kept and deposits not yet credited "
                    "show here",
                    asset,
                    None,
                    want,
                    h.amount,
                )
            )
    return found


_DECIMAL = re.compile(r"(-?)([0-9]+)(?:\.([0-9]+))?")


def minor_units(text: str, decimals: int) -> int | None:
    """``"-12.50"`` with 2 decimals is ``-1250``; ``None`` when it is not a decimal or
    has non-zero digits beyond ``decimals`` (never rounded)."""
    m = _DECIMAL.fullmatch(text.strip())
    if m is None:
        return None
    sign: str = m.group(1)
    whole: str = m.group(2)
    frac: str = m.group(3) or ""
    if frac[decimals:].strip("0"):
        return None
    scale: int = 10**decimals
    value = int(whole) * scale + int(frac[:decimals].ljust(decimals, "0") or "0")
    return -value if sign else value


def units(amount: int, decimals: int) -> str:
    """Minor units as the currency's decimal text (``-1250`` -> ``"-12.50"``)."""
    scale: int = 10**decimals
    whole, frac = divmod(abs(amount), scale)
    text = f"{whole}.{frac:0{decimals}d}" if decimals else str(whole)
    return f"-{text}" if amount < 0 else text


SETTLED = frozenset({"settling", "confirmed"})
"""Withdrawal states after the bank paid; settled in the core unless it still holds it."""


def bank_position(
    currency: str,
    decimals: int,
    *,
    balances: Sequence[StatementBalance],
    first_import_ms: int | None,
    lines: Sequence[FiatLine],
    debits: Sequence[StatementDebit],
    withdrawals: Sequence[Withdrawal],
    card_intents: Sequence[CardIntent],
    applied_refs: Collection[str],
    held: Collection[int],
    previous: Sequence[StatementBalance] = (),
) -> BankPosition:
    """The bank side of ``currency`` from the stored records and the core at one seq.

    ``balances``: the newest statement balance of each configured account in
    ``currency``; ``first_import_ms``: when the first of those accounts' balances was
    imported (statements before kept no debits, so payouts made before it are taken as
    paid); ``lines``: statement lines that may not be credited at the seq;
    ``withdrawals``: fiat withdrawals the bank may have paid (settled ones and those a
    debit names); ``applied_refs``/``held``: the core's deposit refs and the withdrawals
    it still holds, at the seq; ``previous``: the statement stored before each newest
    one (its closing must be the newest's opening)."""
    notes: list[str] = []

    def count(text: str, what: str) -> int:
        value = minor_units(text, decimals)
        if value is None:
            notes.append(f"{what}: {text} {currency} is not an amount in {decimals} decimals")
            return 0
        return value

    closing: int | None = None
    shown: list[str] = []
    for b in balances:
        if b.currency != currency:
            continue
        closing = (closing or 0) + count(b.closing, f"statement {b.statement_id}")
        shown.append(f"{b.account_iban} {b.statement_id} {b.closing_date}")
    gaps: list[str] = []
    for b in balances:
        before = next(
            (x for x in previous if (x.account_iban, x.currency) == (b.account_iban, currency)),
            None,
        )
        if before is not None and minor_units(before.closing, decimals) != minor_units(
            b.opening, decimals
        ):
            gaps.append(
                f"{b.account_iban}: {before.statement_id} closes at {before.closing} on "
                f"{before.closing_date}, {b.statement_id} opens at {b.opening} on "
                f"{b.opening_date}"
            )
    cutoff = first_import_ms if first_import_ms is not None else -1
    paid: dict[str, int] = {}
    for d in debits:
        if d.currency == currency:
            key = d.end_to_end_id
            paid[key] = paid.get(key, 0) + count(d.amount, f"debit {d.entry_ref}")
    uncredited = 0
    for line in lines:
        if line.currency != currency or line.ref in applied_refs:
            continue
        amount = line.amount if line.amount is not None else count(line.amount_text, line.ref)
        back = paid.get(f"RET-{line.id}", 0)
        decided = line.resolved_at_ms if line.resolved_at_ms is not None else line.imported_at_ms
        if line.status == "return_sent" and not back and decided < cutoff:
            continue  # paid back before the bank's debits were kept
        uncredited += amount - back
    settled_not_paid = paid_not_settled = 0
    for w in withdrawals:
        if w.asset != currency:
            continue
        out = paid.get(f"WD-{w.id}", 0)
        settled = w.id not in held and w.status in SETTLED
        if settled and not out and w.created_at_ms >= cutoff:
            settled_not_paid += w.net_amount
        elif not settled and out:
            paid_not_settled += out
    cards = sum(i.amount for i in card_intents if i.currency == currency and i.ref in applied_refs)
    return BankPosition(
        currency,
        decimals,
        closing,
        tuple(shown),
        uncredited,
        cards,
        settled_not_paid,
        paid_not_settled,
        tuple(notes),
        tuple(gaps),
    )


def check_unbooked_fees(
    unbooked: Mapping[str, int], holdings: Mapping[str, Holdings]
) -> list[Finding]:
    """Network fees the chain took that the core has not booked yet (ADR 0034: pending
    rows, e.g. while the fee account is short), per asset custody was read for: a
    shortfall up to that amount is those fees, not a loss."""
    return [
        Finding(
            "custody",
            "info",
            f"{asset}: {amount} of network fees left custody and are not booked in the core "
            "yet (network_fees pending, alert custody.network_fee_unbooked): a shortfall "
            "up to that much is those fees",
            asset,
            None,
            None,
            amount,
        )
        for asset, amount in sorted(unbooked.items())
        if amount > 0 and asset in holdings
    ]


def check_bank(owed: Mapping[str, int], bank: Mapping[str, BankPosition]) -> list[Finding]:
    found: list[Finding] = []
    for currency in sorted(bank):
        p = bank[currency]
        for note in p.notes:
            found.append(Finding("bank", "warning", f"{currency}: not counted: {note}", currency))
        for gap in p.gaps:
            found.append(
                Finding(
                    "bank",
                    "warning",
                    f"{currency}: a statement is missing: {gap}; import it (its transfers "
                    "and payouts are not known here)",
                    currency,
                )
            )
        d = p.decimals
        owes = owed.get(currency, 0)
        want = p.expected(owes)
        if p.closing is None:
            if want:
                found.append(
                    Finding(
                        "bank",
                        "warning",
                        f"{currency}: no camt.053 statement with balances was imported: the "
                        f"bank should hold {units(want, d)} {currency} and is not compared",
                        currency,
                        None,
                        want,
                        None,
                    )
                )
            continue
        why = (
            f"the bank should hold {units(want, d)} {currency} (the core owes "
            f"{units(owes, d)}, + {units(p.uncredited, d)} received and not credited, "
            f"- {units(p.card_credits, d)} card payments at the processor, "
            f"+ {units(p.settled_not_on_statement, d)} withdrawals settled and not yet on a "
            f"statement, - {units(p.paid_not_settled, d)} paid and not yet settled); the "
            f"statements close at {units(p.closing, d)} ({', '.join(p.statements)})"
        )
        if p.closing < want:
            short = units(want - p.closing, d)
            found.append(
                Finding(
                    "bank",
                    "critical",
                    f"{currency}: bank SHORTFALL of {short} {currency}: {why}",
                    currency,
                    None,
                    want,
                    p.closing,
                )
            )
        elif p.closing > want:
            more = units(p.closing - want, d)
            found.append(
                Finding(
                    "bank",
                    "info",
                    f"{currency}: bank surplus of {more} {currency}: {why}; the exchange's own "
                    "money in the account shows here",
                    currency,
                    None,
                    want,
                    p.closing,
                )
            )
    return found


def reconcile(
    core: Core,
    ledger: Mapping[tuple[int, str], LedgerBalance] | None = None,
    holdings: Mapping[str, Holdings] | None = None,
    bank: Mapping[str, BankPosition] | None = None,
    unbooked_fees: Mapping[str, int] | None = None,
) -> Report:
    """Compare ``core`` (at its seq) with the ledger read at that seq, with custody and
    with the bank. ``unbooked_fees``: per asset, network fees recorded but not booked
    yet, named next to custody (information)."""
    checks = ["core"]
    findings = check_core(core)
    if ledger is not None:
        checks.append("ledger")
        findings += check_ledger(core, ledger)
    owed = liabilities(core)
    if holdings is not None:
        checks.append("custody")
        findings += check_custody(owed, holdings)
        findings += check_unbooked_fees(unbooked_fees or {}, holdings)
    if bank is not None:
        checks.append("bank")
        findings += check_bank(owed, bank)
    return Report(
        core.seq, tuple(checks), tuple(findings), owed, dict(holdings or {}), dict(bank or {})
    )
