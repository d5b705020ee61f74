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
  not yet credited), less as a **shortfall**, the one finding that means lost money.

Pure: the caller reads the core, the ledger and the holdings; this module only compares.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from tradewind.core.engine import Core
from tradewind.core.invariants import check_invariants
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
class Report:
    seq: int
    checks: tuple[str, ...]
    findings: tuple[Finding, ...] = field(default=())
    liabilities: Mapping[str, int] = field(default_factory=dict)
    holdings: Mapping[str, Holdings] = field(default_factory=dict)

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


def reconcile(
    core: Core,
    ledger: Mapping[tuple[int, str], LedgerBalance] | None = None,
    holdings: Mapping[str, Holdings] | None = None,
) -> Report:
    """Compare ``core`` (at its seq) with the ledger read at that seq and with custody."""
    checks = ["core"]
    findings = check_core(core)
    if ledger is not None:
        checks.append("ledger")
        findings += check_ledger(core, ledger)
    owed = liabilities(core)
    if holdings is not None:
        checks.append("custody")
        findings += check_custody(owed, holdings)
    return Report(core.seq, tuple(checks), tuple(findings), owed, dict(holdings or {}))
