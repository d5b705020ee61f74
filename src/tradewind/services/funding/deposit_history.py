"""Deposit history: one list of a user's deposits across chain networks, bank transfers
and card payments, for the user (``GET /api/v1/deposits``) and for staff
(``GET /api/v1/admin/deposits``); docs/funding.md "Deposit history".

Read-only over what the crediting paths already keep: the chain watcher's
``chain_deposits``, the fiat statement lines (``fiat_lines``) and card payments
(``card_intents``). Nothing here changes a deposit.

Invariants:
- one public status vocabulary over the three sources (``pending``, ``credited``,
  ``orphaned``, ``returned``, ``failed``), mapped from each source's own statuses in
  one table (:data:`SOURCE_STATUSES`), so a filter and a row can never disagree;
- a deposit id names its source and its key (``chain:<network>:<txid>:<index>``,
  ``bank:<line id>``, ``card:<payment id>``); a user asking for an id that is not
  theirs gets the same :class:`UnknownDeposit` as for one that does not exist;
- pages are newest first by (time, source, key), a strict total order, so a cursor
  never repeats or skips a row even when several share a millisecond;
- confirmations come from the watcher's stored tip (no node is asked on a request):
  ``tip - block + 1``, 0 for an orphaned deposit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

from tradewind.services.errors import ServiceError
from tradewind.services.funding.networks import NetworkCatalog

DepositKind = Literal["chain", "bank", "card"]
PublicStatus = Literal["pending", "credited", "orphaned", "returned", "failed"]
PUBLIC_STATUSES: tuple[PublicStatus, ...] = (
    "pending",
    "credited",
    "orphaned",
    "returned",
    "failed",
)
BANK_NETWORK = "bank"
CARD_NETWORK = "card"

SOURCE_STATUSES: Mapping[DepositKind, Mapping[PublicStatus, tuple[str, ...]]] = {
    "chain": {
        "pending": ("pending",),
        "credited": ("credited",),
        "orphaned": ("orphaned",),
        "failed": ("below_minimum", "refused"),
    },
    "bank": {
        "pending": ("matched", "review"),
        "credited": ("credited",),
        "returned": ("returned", "return_sent"),
    },
    "card": {
        "pending": ("created",),
        "credited": ("credited",),
        "failed": ("failed", "mismatch"),
    },
}
"""Public status -> the source's statuses it covers (absent: none)."""

_RANK: Mapping[DepositKind, int] = {"chain": 2, "card": 1, "bank": 0}
"""Tie-break between sources at the same millisecond (higher first)."""


class UnknownDeposit(ServiceError):
    code: ClassVar[str] = "unknown_deposit"
    status_hint: ClassVar[int] = 404
    default_message: ClassVar[str] = "no such deposit"


class InvalidDepositFilter(ServiceError):
    code: ClassVar[str] = "invalid_filter"
    status_hint: ClassVar[int] = 400
    default_message: ClassVar[str] = "invalid filter"


class UnknownNetworkFilter(InvalidDepositFilter):
    code: ClassVar[str] = "unknown_network"


class InvalidStatusFilter(InvalidDepositFilter):
    code: ClassVar[str] = "invalid_status"


class InvalidCursor(InvalidDepositFilter):
    code: ClassVar[str] = "invalid_cursor"
    default_message: ClassVar[str] = "cursor must be a next_cursor of an earlier page"


Key = tuple[str, str, int] | tuple[int] | tuple[str]
"""A source's own key: chain ``(network, txid, index)``, bank ``(line id,)``, card
``(payment id,)``."""


@dataclass(frozen=True, slots=True)
class SourceDeposit:
    """A deposit as one source keeps it (the store's answer)."""

    kind: DepositKind
    key: Key
    user_id: int | None
    asset: str
    network: str
    amount: int | None
    """Minor units of the asset; None when it cannot be credited exactly (bank lines)."""
    amount_text: str | None
    """The bank's own decimal text (bank lines), else None."""
    status: str
    """The source's status (``SOURCE_STATUSES``)."""
    reason: str | None
    at_ms: int
    """When the exchange first saw it (0: unknown, rows older than migration 0017)."""
    updated_at_ms: int | None
    txid: str | None = None
    reference: str | None = None
    block_number: int | None = None
    credited_seq: int | None = None
    booking_date: str | None = None


@dataclass(frozen=True, slots=True)
class Before:
    """Rows strictly before a cursor in one source's order: ``at_ms < at`` or, with a
    key, ``(at_ms, key) < (at, key)``."""

    at_ms: int
    key: Key | None


@dataclass(frozen=True, slots=True)
class SourceQuery:
    user_id: int | None
    asset: str | None
    network: str | None
    """Chain sources only: one network."""
    statuses: tuple[str, ...] | None
    before: Before | None
    limit: int


class DepositHistoryStore(Protocol):
    """Read-only queries; each answers newest first by ``(at_ms, key)``."""

    async def chain_deposits(self, q: SourceQuery) -> Sequence[SourceDeposit]: ...

    async def bank_deposits(self, q: SourceQuery) -> Sequence[SourceDeposit]:
        """Statement lines; with ``q.user_id`` only lines credited (or to be) to them."""
        ...

    async def card_deposits(self, q: SourceQuery) -> Sequence[SourceDeposit]: ...

    async def chain_deposit(self, network: str, txid: str, index: int) -> SourceDeposit | None: ...

    async def bank_deposit(self, line_id: int) -> SourceDeposit | None: ...

    async def card_deposit(self, payment_id: str) -> SourceDeposit | None: ...

    async def tips(self) -> Mapping[str, int]:
        """The watcher's stored tip height of each network."""
        ...


@dataclass(frozen=True, slots=True)
class DepositView:
    id: str
    kind: DepositKind
    user_id: int | None
    asset: str
    network: str
    amount: int | None
    decimals: int | None
    """Of ``amount``; None when unknown here (then ``amount_text`` is what is known)."""
    amount_text: str | None
    status: PublicStatus
    source_status: str
    reason: str | None
    txid: str | None
    reference: str | None
    block_number: int | None
    confirmations: int | None
    confirmations_required: int | None
    created_at_ms: int | None
    updated_at_ms: int | None
    booking_date: str | None


@dataclass(frozen=True, slots=True)
class DepositFilter:
    user_id: int | None = None
    asset: str | None = None
    network: str | None = None
    statuses: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True)
class DepositPage:
    items: tuple[DepositView, ...]
    next_cursor: str | None


def public_status(kind: DepositKind, status: str) -> PublicStatus:
    for public, covered in SOURCE_STATUSES[kind].items():
        if status in covered:
            return public
    return "pending"  # a source status added later: shown as not final


def deposit_id(kind: DepositKind, key: Key) -> str:
    return f"{kind}:" + ":".join(str(part) for part in key)


def parse_deposit_id(text: str) -> tuple[DepositKind, Key] | None:
    """The source and key of a public id; None when it is not one (never raises)."""
    kind, _, rest = text.partition(":")
    if kind == "chain":
        if rest.count(":") != 2:
            return None
        network, txid, index = rest.split(":")
        if not network or not txid:
            return None
        if not txid.isalnum() or len(txid) > 80 or len(network) > 16:
            return None
        try:
            idx = int(index)
        except ValueError:
            return None
        if not -1 <= idx <= 2**31 - 1:
            return None
        return "chain", (network, txid, idx)
    if kind == "bank":
        if not rest.isdigit() or len(rest) > 18:
            return None
        return "bank", (int(rest),)
    if kind == "card":
        if not rest or len(rest) > 80 or not rest.replace("_", "").isalnum():
            return None
        return "card", (rest,)
    return None


def _sort_key(d: SourceDeposit) -> tuple[int, int]:
    """Time, then source; within a source the store's own order is kept (a stable
    sort), so keys are compared only by the database, with its collation, in the order
    and in the cursor's bound alike."""
    return (d.at_ms, _RANK[d.kind])


class DepositHistory:
    def __init__(
        self,
        store: DepositHistoryStore,
        networks: NetworkCatalog | None,
        fiat_decimals: Mapping[str, int],
    ) -> None:
        self.store = store
        self.networks = networks
        self.fiat_decimals = dict(fiat_decimals)

    def network_names(self) -> tuple[str, ...]:
        chain = () if self.networks is None else tuple(n.name for n in self.networks.networks)
        return (*chain, BANK_NETWORK, CARD_NETWORK)

    # -- lists ---------------------------------------------------------------------------

    async def page(
        self, f: DepositFilter, *, limit: int, cursor: str | None, staff: bool = False
    ) -> DepositPage:
        """A page newest first; ``staff`` shows the review queue's own reasons."""
        statuses = self._statuses(f.statuses)
        if f.network is not None and f.network not in self.network_names():
            raise UnknownNetworkFilter(
                f"unknown network {f.network!r}; one of {', '.join(self.network_names())}"
            )
        after = None if cursor is None else self._cursor(cursor)
        found: list[SourceDeposit] = []
        tips: Mapping[str, int] = {}
        for kind in ("chain", "card", "bank"):
            if not self._takes(kind, f.network):
                continue
            covered = self._covered(kind, statuses)
            if covered is not None and not covered:
                continue
            q = SourceQuery(
                user_id=f.user_id,
                asset=f.asset,
                network=f.network if kind == "chain" else None,
                statuses=covered,
                before=None if after is None else self._before(kind, after),
                limit=limit + 1,
            )
            if kind == "chain":
                rows = await self.store.chain_deposits(q)
                if rows:
                    tips = await self.store.tips()
            elif kind == "card":
                rows = await self.store.card_deposits(q)
            else:
                rows = await self.store.bank_deposits(q)
            found.extend(rows)
        found.sort(key=_sort_key, reverse=True)
        page = found[:limit]
        more = len(found) > limit
        items = tuple(self._view(d, tips, staff=staff) for d in page)
        next_cursor = None
        if more and page:
            last = page[-1]
            next_cursor = f"{last.at_ms}~{deposit_id(last.kind, last.key)}"
        return DepositPage(items, next_cursor)

    async def get(self, text: str, *, user_id: int | None) -> DepositView:
        """One deposit; ``user_id`` (a user's own request) must own it."""
        parsed = parse_deposit_id(text)
        if parsed is None:
            raise UnknownDeposit()
        kind, key = parsed
        found: SourceDeposit | None
        tips: Mapping[str, int] = {}
        if kind == "chain":
            network, txid, index = key  # type: ignore[misc]
            found = await self.store.chain_deposit(str(network), str(txid), int(index))
            tips = await self.store.tips()
        elif kind == "bank":
            found = await self.store.bank_deposit(int(key[0]))
        else:
            found = await self.store.card_deposit(str(key[0]))
        if found is None or (user_id is not None and found.user_id != user_id):
            raise UnknownDeposit()
        return self._view(found, tips, staff=user_id is None)

    # -- helpers -------------------------------------------------------------------------

    @staticmethod
    def _statuses(given: tuple[str, ...] | None) -> tuple[PublicStatus, ...] | None:
        if given is None:
            return None
        out: list[PublicStatus] = []
        for s in given:
            match = next((p for p in PUBLIC_STATUSES if p == s), None)
            if match is None:
                raise InvalidStatusFilter(
                    f"unknown status {s!r}; one or more of {', '.join(PUBLIC_STATUSES)}"
                )
            out.append(match)
        if not out:
            raise InvalidStatusFilter(f"status is one or more of {', '.join(PUBLIC_STATUSES)}")
        return tuple(out)

    @staticmethod
    def _covered(
        kind: DepositKind, statuses: tuple[PublicStatus, ...] | None
    ) -> tuple[str, ...] | None:
        if statuses is None:
            return None
        table = SOURCE_STATUSES[kind]
        return tuple(s for p in statuses for s in table.get(p, ()))

    @staticmethod
    def _takes(kind: DepositKind, network: str | None) -> bool:
        if network is None:
            return True
        if network == BANK_NETWORK:
            return kind == "bank"
        if network == CARD_NETWORK:
            return kind == "card"
        return kind == "chain"

    @staticmethod
    def _cursor(text: str) -> tuple[int, DepositKind, Key]:
        at, sep, rest = text.partition("~")
        parsed = parse_deposit_id(rest) if sep else None
        if parsed is None or not at.isdigit() or len(at) > 18:
            raise InvalidCursor()
        return int(at), parsed[0], parsed[1]

    @staticmethod
    def _before(kind: DepositKind, after: tuple[int, DepositKind, Key]) -> Before:
        at, cursor_kind, key = after
        mine, theirs = _RANK[kind], _RANK[cursor_kind]
        if mine > theirs:  # this source sorts before the cursor's at the same ms
            return Before(at, None)
        if mine < theirs:  # after it: the same millisecond is still to come
            return Before(at + 1, None)
        return Before(at, key)

    def _decimals(self, d: SourceDeposit) -> int | None:
        if d.kind == "chain":
            rules = None if self.networks is None else self.networks.asset_on(d.asset, d.network)
            return None if rules is None else rules.decimals
        return self.fiat_decimals.get(d.asset)

    def _view(self, d: SourceDeposit, tips: Mapping[str, int], *, staff: bool) -> DepositView:
        status = public_status(d.kind, d.status)
        confirmations = required = None
        if d.kind == "chain" and d.block_number is not None:
            rules = None if self.networks is None else self.networks.asset_on(d.asset, d.network)
            required = None if rules is None else rules.confirmations
            tip = tips.get(d.network)
            if status == "orphaned":
                confirmations = 0
            elif tip is not None:
                confirmations = max(0, tip - d.block_number + 1)
        reason = d.reason
        if not staff and d.kind == "bank" and d.status == "review":
            reason = "review"  # the queue's reason is for staff
        return DepositView(
            id=deposit_id(d.kind, d.key),
            kind=d.kind,
            user_id=d.user_id,
            asset=d.asset,
            network=d.network,
            amount=d.amount,
            decimals=self._decimals(d),
            amount_text=d.amount_text,
            status=status,
            source_status=d.status,
            reason=reason,
            txid=d.txid,
            reference=d.reference,
            block_number=d.block_number,
            confirmations=confirmations,
            confirmations_required=required,
            created_at_ms=d.at_ms or None,
            updated_at_ms=d.updated_at_ms or None,
            booking_date=d.booking_date,
        )
