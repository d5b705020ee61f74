"""Bank deposits by reference code: deposit instructions, statement import, crediting,
and the review queue (docs/fiat.md, ADR 0024).

Invariants:
- each user has one reference for good (:mod:`.references`), stored the first time it
  is asked for; a transfer is matched to a user only by a valid reference found in its
  remittance information, never by name or amount;
- an import is all or nothing: a file that does not parse, is of an unsupported
  version, is for an account that is not the exchange's, does not add up to its
  closing balance, or reuses a stored statement id with other balances, changes
  nothing; otherwise its credit lines, balances and payout debits are stored in one
  transaction, lines keyed by their ref ``camt:<IBAN>:<entry ref>``, so importing the
  same statement (or an overlapping one) again adds nothing;
- a line is credited only through a core ``Deposit`` with that ref (applied once by
  the core, :mod:`.credit`), and only from ``matched``; whatever cannot be credited
  exactly (no, unknown, mistyped or several users' references; a currency that is not
  fiat here; more decimals than the asset; a core refusal) waits in ``review``;
- a person (compliance or admin) resolves a review line once (compare-and-set): assign
  it to an existing user (then it is credited like any matched line) or mark it
  ``returned``; every import and decision is in the audit log.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog

from tradewind.core.commands import MAX_INT
from tradewind.services.admin import Actor, RoleRequired, UserNotFound
from tradewind.services.audit import AuditLog
from tradewind.services.errors import ServiceError
from tradewind.services.fiat import references
from tradewind.services.fiat.config import FiatConfig
from tradewind.services.fiat.credit import CreditOutcome, credit_once
from tradewind.services.fiat.ports import (
    FiatLine,
    FiatStore,
    LineStatus,
    Statement,
    StatementError,
    StatementLine,
    StatementReader,
)
from tradewind.services.funding.networks import parse_amount
from tradewind.services.ports import Clock
from tradewind.services.trading import CommandBus, CoreFailure

log = structlog.get_logger(__name__)

DECIDERS = frozenset({"compliance", "admin"})
"""Who imports statements and resolves review lines (support may only read)."""
REVIEW_REASONS = (
    "no_reference",
    "reference_check_failed",
    "unknown_reference",
    "ambiguous_reference",
    "wrong_currency",
    "too_many_decimals",
    "invalid_amount",
)


class UnknownCurrency(ServiceError):
    code = "unknown_currency"
    status_hint = 400
    default_message = "not a fiat currency of this exchange"


class UnknownAccount(StatementError):
    code = "unknown_account"
    default_message = "the statement is not for the exchange's bank account"


class LineNotFound(ServiceError):
    code = "unknown_line"
    status_hint = 404
    default_message = "no such statement line"


class LineNotInReview(ServiceError):
    code = "line_not_in_review"
    status_hint = 409
    default_message = "the line is not waiting for review (decided already)"


class LineNotCreditable(ServiceError):
    code = "line_not_creditable"
    status_hint = 409
    default_message = (
        "the line's amount or currency cannot be credited exactly here; return it instead"
    )


@dataclass(frozen=True, slots=True)
class DepositInstructions:
    currency: str
    iban: str
    bic: str
    beneficiary: str
    reference: str


@dataclass(frozen=True, slots=True)
class ImportReport:
    version: str
    message_id: str
    lines: int
    """Credit lines in the file."""
    new: int
    already_imported: int
    matched: int
    review: int
    credited: int
    """Lines credited by the crediting pass that followed (this import's or older)."""
    skipped: int
    """Entries that are not booked credits (debits, pending, reversals)."""


class BankDeposits:
    def __init__(
        self,
        *,
        config: FiatConfig,
        store: FiatStore,
        reader: StatementReader,
        bus: CommandBus | None,
        audit: AuditLog,
        clock: Clock,
        decimals_of: Callable[[str], int | None],
        user_exists: Callable[[int], Awaitable[bool]],
        new_reference: Callable[[], str] = references.new_reference,
    ) -> None:
        """``decimals_of``: the core's decimals of a fiat asset (``None``: not known to
        the core). ``bus``: ``None`` where this process cannot reach the core (the
        command line): lines are stored and credited by a process that can."""
        self.config = config
        self._store = store
        self._reader = reader
        self._bus = bus
        self._audit = audit
        self._clock = clock
        self._decimals_of = decimals_of
        self._user_exists = user_exists
        self._new_reference = new_reference
        self._crediting = asyncio.Lock()
        self.on_debits: Callable[[Statement], Awaitable[object]] | None = None
        """Called with every imported statement that reports booked debits with
        end-to-end ids: fiat withdrawals the bank paid (services/fiat/withdrawals.py)."""

    # -- instructions --------------------------------------------------------------------

    def fiat_decimals(self, currency: str) -> int | None:
        """The decimals of ``currency`` if it is a fiat asset here and in the core."""
        if currency not in self.config.currencies:
            return None
        return self._decimals_of(currency)

    async def reference_for(self, user_id: int) -> str:
        stored = await self._store.reference_of(user_id)
        if stored is not None:
            return stored
        for _ in range(8):  # drew someone else's reference: draw again
            try:
                return await self._store.put_reference_if_absent(
                    user_id, self._new_reference(), self._clock.now_ms()
                )
            except ValueError:
                continue
        raise RuntimeError("could not draw an unused reference")

    async def instructions(self, user_id: int, currency: str) -> DepositInstructions:
        # the configuration decides (the core may not have added the asset yet at start;
        # a transfer takes days, and a line the core cannot credit waits for review)
        if currency not in self.config.currencies:
            known = ", ".join(sorted(self.config.currencies))
            raise UnknownCurrency(f"{currency!r} is not a fiat currency here (known: {known})")
        bank = self.config.bank
        reference = await self.reference_for(user_id)
        return DepositInstructions(currency, bank.iban, bank.bic, bank.beneficiary, reference)

    # -- import --------------------------------------------------------------------------

    async def import_statement(self, data: bytes, actor: Actor) -> ImportReport:
        await self._require(actor, "fiat.import")
        try:
            statement = self._reader.read(data)
            for iban in statement.account_ibans:
                if iban != self.config.bank.iban:
                    raise UnknownAccount(
                        f"the statement is for {iban}, not the exchange's account "
                        f"{self.config.bank.iban}"
                    )
        except StatementError as exc:
            await self._refused(exc, actor, len(data))
            raise
        now = self._clock.now_ms()
        scans = [references.scan(line.remittance) for line in statement.credits]
        wanted = sorted({ref for found in scans for ref in found.valid})
        owners = await self._store.owners_of(wanted) if wanted else {}  # one query
        lines = [
            self._classify(line, found, owners, now)
            for line, found in zip(statement.credits, scans, strict=True)
        ]
        try:  # the lines, the balances and the payouts' debits in one transaction
            new = await self._store.add_statement(lines, statement.balances, statement.debits, now)
        except StatementError as exc:  # a statement id stored with other balances
            await self._refused(exc, actor, len(data))
            raise
        matched = sum(1 for line in lines if line.status == "matched")
        await self._audit.record(
            "fiat.statement_imported",
            actor_id=actor.user_id,
            actor_role=actor.role,
            details={
                "message_id": statement.message_id[:64],
                "version": statement.version,
                "lines": len(lines),
                "new": new,
                "matched": matched,
            },
            ip=actor.ip,
        )
        credited = await self.credit_pending() if self._bus is not None else 0
        if statement.debits and self.on_debits is not None:
            await self.on_debits(statement)
        return ImportReport(
            statement.version,
            statement.message_id,
            len(lines),
            new,
            len(lines) - new,
            matched,
            len(lines) - matched,
            credited,
            statement.skipped,
        )

    async def _refused(self, exc: StatementError, actor: Actor, size: int) -> None:
        await self._audit.record(
            "fiat.statement_refused",
            actor_id=actor.user_id,
            actor_role=actor.role,
            details={"code": exc.code, "message": exc.message[:200], "bytes": size},
            ip=actor.ip,
        )

    def _classify(
        self, line: StatementLine, found: references.Scan, owners: dict[str, int], now: int
    ) -> FiatLine:
        reason: str | None = None
        amount: int | None = None
        user: int | None = None
        decimals = self.fiat_decimals(line.currency)
        if decimals is None:
            reason = "wrong_currency"
        else:
            try:
                amount = parse_amount(line.amount, decimals)
            except ValueError:
                reason = "too_many_decimals"
            else:
                if not 0 < amount <= MAX_INT:
                    reason, amount = "invalid_amount", None
        users = sorted({owners[ref] for ref in found.valid if ref in owners})
        if len(users) == 1:
            user = users[0]
        if reason is None:
            if len(users) > 1:
                reason = "ambiguous_reference"
            elif users:
                pass
            elif found.valid:
                reason = "unknown_reference"
            elif found.invalid:
                reason = "reference_check_failed"
            else:
                reason = "no_reference"
        status: LineStatus = "review" if reason is not None else "matched"
        return FiatLine(
            ref=line.ref,
            account_iban=line.account_iban,
            entry_ref=line.entry_ref,
            currency=line.currency,
            amount_text=line.amount,
            amount=amount,
            user_id=user if len(users) == 1 else None,
            status=status,
            reason=reason,
            remittance=" | ".join(line.remittance)[:1000],
            debtor_name=line.debtor_name,
            debtor_iban=line.debtor_iban,
            booking_date=line.booking_date,
            line_no=line.line_no,
            imported_at_ms=now,
        )

    # -- crediting -----------------------------------------------------------------------

    async def credit_pending(self, limit: int = 500, concurrency: int = 32) -> int:
        """Credit every matched line through the core; returns how many were credited
        now. Safe to run anywhere at any time (several processes at once included).
        Up to ``concurrency`` Deposits are in flight at once, so they share the
        journal's group commits instead of paying one fsync each; the SQL records
        follow one by one (SQLite has one writer)."""
        bus = self._bus
        if bus is None:
            return 0
        async with self._crediting:  # one pass at a time in this process
            return await self._credit_pending(bus, limit, concurrency)

    async def _credit_pending(self, bus: CommandBus, limit: int, concurrency: int) -> int:
        lines = await self._store.lines(status="matched", limit=limit)
        credited = 0
        for start in range(0, len(lines), concurrency):
            batch = [
                line
                for line in lines[start : start + concurrency]
                if line.user_id is not None and line.amount is not None  # matched has both
            ]
            outcomes = await asyncio.gather(
                *(
                    credit_once(
                        bus,
                        user=line.user_id,  # type: ignore[arg-type]
                        asset=line.currency,
                        amount=line.amount,  # type: ignore[arg-type]
                        ref=line.ref,
                    )
                    for line in batch
                ),
                return_exceptions=True,
            )
            failure: BaseException | None = None
            for line, outcome in zip(batch, outcomes, strict=True):
                if isinstance(outcome, CoreFailure):  # applied or not: the next pass finds out
                    log.warning(
                        "fiat credit postponed: the core is not answering", error=outcome.code
                    )
                elif isinstance(outcome, BaseException):
                    failure = failure or outcome
                else:  # the rest of the batch is recorded before a failure is raised
                    credited += await self._record(line, outcome)
            if failure is not None:
                raise failure
        return credited

    async def _record(self, line: FiatLine, outcome: CreditOutcome) -> int:
        if outcome.status == "credited":
            await self._store.settle_line(line.ref, "credited", seq=outcome.seq)
            log.info("bank deposit credited", ref=line.ref, seq=outcome.seq)
            return 1
        if outcome.status == "already":
            await self._store.settle_line(line.ref, "credited", reason="credited_before")
        else:
            await self._store.settle_line(line.ref, "review", reason=outcome.reason)
            log.error("bank deposit refused by the core", ref=line.ref, reason=outcome.reason)
        return 0

    # -- review queue --------------------------------------------------------------------

    async def _require(self, actor: Actor, action: str, roles: frozenset[str] = DECIDERS) -> None:
        if actor.role not in roles:
            await self._audit.record(
                "admin.denied",
                actor_id=actor.user_id,
                actor_role=actor.role,
                details={"attempted": action},
                ip=actor.ip,
            )
            raise RoleRequired(f"{action} needs the role compliance or admin")

    async def list_lines(
        self, actor: Actor, *, status: LineStatus | None, limit: int, after_id: int = 0
    ) -> Sequence[FiatLine]:
        await self._require(actor, "fiat.read", DECIDERS | {"support"})
        return await self._store.lines(status=status, limit=limit, after_id=after_id)

    async def assign(self, actor: Actor, line_id: int, user_id: int, note: str) -> FiatLine:
        """Credit a review line to ``user_id`` (after checking the transfer by hand)."""
        await self._require(actor, "fiat.assign")
        line = await self._line_in_review(line_id)
        if line.amount is None or self.fiat_decimals(line.currency) is None:
            raise LineNotCreditable()
        if not await self._user_exists(user_id):
            raise UserNotFound()
        if not await self._store.resolve_line(
            line_id,
            "matched",
            user_id=user_id,
            by=actor.user_id,
            at_ms=self._clock.now_ms(),
            note=note,
        ):
            raise LineNotInReview()
        await self._audit.record(
            "fiat.line_assigned",
            actor_id=actor.user_id,
            actor_role=actor.role,
            subject_id=user_id,
            details={
                "line": line_id,
                "ref": line.ref[:160],
                "asset": line.currency,
                "amount": line.amount_text,
                "note": note[:200],
            },
            ip=actor.ip,
        )
        await self.credit_pending()
        return await self._must(line_id)

    async def return_line(self, actor: Actor, line_id: int, note: str) -> FiatLine:
        """Mark a review line to be sent back to the payer; it is never credited."""
        await self._require(actor, "fiat.return")
        line = await self._line_in_review(line_id)
        if not await self._store.resolve_line(
            line_id,
            "returned",
            user_id=None,
            by=actor.user_id,
            at_ms=self._clock.now_ms(),
            note=note,
        ):
            raise LineNotInReview()
        await self._audit.record(
            "fiat.line_returned",
            actor_id=actor.user_id,
            actor_role=actor.role,
            details={
                "line": line_id,
                "ref": line.ref[:160],
                "asset": line.currency,
                "amount": line.amount_text,
                "note": note[:200],
            },
            ip=actor.ip,
        )
        return await self._must(line_id)

    async def _line_in_review(self, line_id: int) -> FiatLine:
        line = await self._must(line_id)
        if line.status != "review":
            raise LineNotInReview()
        return line

    async def _must(self, line_id: int) -> FiatLine:
        line = await self._store.line(line_id)
        if line is None:
            raise LineNotFound()
        return line


def statement_summary(statement: Statement) -> str:
    """One line for the command line and logs."""
    return (
        f"{statement.version} {statement.message_id}: {len(statement.credits)} credit "
        f"line(s), {statement.skipped} other entr(y/ies)"
    )
