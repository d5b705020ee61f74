"""Ports of the fiat rails: statement files in, card processor, and what is kept in SQL.

Why Protocols: the camt.053 reader and pain.001 writer (adapters/banks), the Stripe
adapter (adapters/cards) and the SQL store plug in at the composition root; another
bank format (MT940) or card processor fills the same ports without the services
changing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from tradewind.services.errors import ServiceError
from tradewind.services.kyc import InvalidWebhook

# -- statements --------------------------------------------------------------------------


class StatementError(ServiceError):
    """The file is not a statement this exchange accepts; nothing was changed. The
    message names the element path and line of the problem."""

    code: ClassVar[str] = "invalid_statement"
    status_hint: ClassVar[int] = 400
    default_message: ClassVar[str] = "not a valid camt.053 statement"


@dataclass(frozen=True, slots=True)
class StatementLine:
    """One booked credit (a transfer received), as the bank reported it."""

    account_iban: str
    entry_ref: str
    """The bank's unique reference of the entry (``AcctSvcrRef``, else ``NtryRef``; with
    ``/n`` for the n-th transaction of a batch entry)."""
    amount: str
    """The decimal text of the file (``"100.50"``), converted exactly later."""
    currency: str
    remittance: tuple[str, ...]
    """Unstructured lines and structured creditor references, as sent by the payer."""
    booking_date: str | None = None
    debtor_name: str | None = None
    debtor_iban: str | None = None
    line_no: int = 0
    """Line of the entry in the file (for people reading the review queue)."""

    @property
    def ref(self) -> str:
        """The core Deposit's dedupe key: ``camt:<account IBAN>:<entry ref>``."""
        return f"camt:{self.account_iban}:{self.entry_ref}"


@dataclass(frozen=True, slots=True)
class StatementDebit:
    """One booked debit (a transfer the exchange sent) whose transaction carries the
    end-to-end id of the payment file's payout (``WD-<withdrawal id>`` for fiat
    withdrawals: services/fiat/withdrawals.py; ``RET-<line id>`` for a returned
    transfer: services/fiat/returns.py)."""

    end_to_end_id: str
    amount: str
    currency: str
    entry_ref: str
    account_iban: str = ""
    statement_id: str = ""
    booking_date: str | None = None


@dataclass(frozen=True, slots=True)
class StatementBalance:
    """A statement's booked balances in one currency (``OPBD``, else ``PRCD``, and
    ``CLBD``): signed decimal text as the bank wrote it (``"-12.50"`` for a debit
    balance). The reader checked that the opening plus the statement's booked entries
    in that currency is the closing."""

    account_iban: str
    statement_id: str
    currency: str
    opening: str
    opening_date: str
    closing: str
    closing_date: str
    created: str | None = None
    """The statement's ``CreDtTm`` (orders statements closing on the same day)."""


@dataclass(frozen=True, slots=True)
class Statement:
    version: str
    """The camt.053 message version, e.g. ``camt.053.001.02``."""
    message_id: str
    statement_ids: tuple[str, ...]
    account_ibans: tuple[str, ...]
    credits: tuple[StatementLine, ...]
    """Booked credit entries; debits and pending entries are not deposits."""
    skipped: int
    """Entries left out: debits, not booked, reversals."""
    debits: tuple[StatementDebit, ...] = ()
    """Booked debits with an end-to-end id, per transaction (they are also counted in
    ``skipped``: they are not deposits)."""
    balances: tuple[StatementBalance, ...] = ()
    """Per statement and currency, its opening and closing booked balances (kept for
    reconciliation: docs/reconcile.md, ADR 0036)."""


class BalanceConflict(StatementError):
    """A statement imported before (same account, statement id and currency) with other
    balances: a bank's statement id names one statement, so this file is refused."""

    default_message = "the statement was imported before with other balances"


class StatementReader(Protocol):
    def read(self, data: bytes) -> Statement:
        """Parse a whole file or raise :class:`StatementError`; never a partial result."""
        ...


# -- what is kept ------------------------------------------------------------------------

LineStatus = Literal["matched", "credited", "review", "returned", "return_sent"]
"""``matched``: a user was found (or assigned); waits for (or is in) its credit;
``credited``: the core applied the Deposit; ``review``: a person must decide (reason
kept); ``returned``: decided to send back to the payer, never credited;
``return_sent``: put in a return payment file (``tradewind fiat returns``)."""


@dataclass(frozen=True, slots=True)
class FiatLine:
    ref: str
    account_iban: str
    entry_ref: str
    currency: str
    amount_text: str
    amount: int | None
    """Minor units of the asset; ``None`` when the amount cannot be credited exactly
    (more decimals than the asset, not a fiat currency here)."""
    user_id: int | None
    status: LineStatus
    reason: str | None
    remittance: str
    debtor_name: str | None
    debtor_iban: str | None
    booking_date: str | None
    line_no: int
    imported_at_ms: int
    id: int = 0
    credited_seq: int | None = None
    resolved_by: int | None = None
    resolved_at_ms: int | None = None
    note: str | None = None


CardStatus = Literal["created", "credited", "failed", "mismatch"]


@dataclass(frozen=True, slots=True)
class CardIntent:
    id: str
    """The processor's id (a Stripe PaymentIntent ``pi_...``)."""
    user_id: int
    currency: str
    amount: int
    """Minor units of the core asset."""
    processor_amount: int
    """What the processor charges, in its own minor units of the currency."""
    status: CardStatus
    created_at_ms: int
    updated_at_ms: int
    credited_seq: int | None = None
    note: str | None = None

    @property
    def ref(self) -> str:
        return f"stripe:{self.id}"


class FiatStore(Protocol):
    # reference codes
    async def reference_of(self, user_id: int) -> str | None: ...

    async def put_reference_if_absent(self, user_id: int, reference: str, at_ms: int) -> str:
        """Store it unless the user has one; return the user's stored reference. A
        reference already given to someone else raises ``ValueError`` (draw again)."""
        ...

    async def owners_of(self, references: Sequence[str]) -> dict[str, int]: ...

    # statement lines
    async def add_lines(self, lines: Sequence[FiatLine]) -> int:
        """Insert, in one transaction, the lines whose ``ref`` is not stored yet;
        returns how many were new (a re-imported statement adds none)."""
        ...

    async def add_statement(
        self,
        lines: Sequence[FiatLine],
        balances: Sequence[StatementBalance],
        debits: Sequence[StatementDebit],
        at_ms: int,
    ) -> int:
        """:meth:`add_lines`, and the statement's balances and booked debits, in one
        transaction; balances and debits stored before are left as they are (a
        re-import adds nothing). Raises :class:`BalanceConflict`, storing nothing, when a
        statement id was stored with other balances."""
        ...

    async def lines(
        self, *, status: LineStatus | None, limit: int, after_id: int = 0
    ) -> Sequence[FiatLine]:
        """By id ascending, after ``after_id``."""
        ...

    async def line(self, line_id: int) -> FiatLine | None: ...

    async def settle_line(
        self,
        ref: str,
        status: LineStatus,
        *,
        seq: int | None = None,
        reason: str | None = None,
    ) -> bool:
        """``matched`` -> ``status`` (compare-and-set); ``False`` if it was not matched."""
        ...

    async def resolve_line(
        self,
        line_id: int,
        status: LineStatus,
        *,
        user_id: int | None,
        by: int | None,
        at_ms: int,
        note: str,
    ) -> bool:
        """``review`` -> ``status`` (compare-and-set), recording who and why."""
        ...

    async def move_lines(
        self, line_ids: Sequence[int], expect: LineStatus, status: LineStatus
    ) -> int:
        """``expect`` -> ``status`` for each line still in ``expect`` (compare-and-set, one
        transaction); returns how many moved."""
        ...

    # card payments
    async def add_intent(self, intent: CardIntent) -> None: ...

    async def intent(self, intent_id: str) -> CardIntent | None: ...

    async def settle_intent(
        self,
        intent_id: str,
        status: CardStatus,
        *,
        at_ms: int,
        seq: int | None = None,
        note: str | None = None,
    ) -> bool:
        """``created`` -> ``status`` (compare-and-set)."""
        ...


# -- card processor ----------------------------------------------------------------------


class WebhookRefused(InvalidWebhook):
    """The KYC callbacks' ``invalid_webhook_signature`` (401): one code, one meaning."""

    default_message = "the webhook signature is missing, wrong or too old"


@dataclass(frozen=True, slots=True)
class CreatedIntent:
    id: str
    client_secret: str
    amount: int
    currency: str
    """Lower case, as the processor spells it."""


@dataclass(frozen=True, slots=True)
class CardEvent:
    id: str
    type: str
    intent_id: str | None
    amount_received: int | None
    currency: str | None
    """Lower case."""


class CardProcessor(Protocol):
    async def create_intent(
        self, *, amount: int, currency: str, user_id: int, idempotency_key: str
    ) -> CreatedIntent:
        """Create a payment for ``amount`` (processor minor units) of ``currency``."""
        ...

    def verify_event(self, payload: bytes, signature: str | None) -> CardEvent:
        """The event of a webhook whose signature checks (right secret, recent enough);
        :class:`WebhookRefused` otherwise."""
        ...
