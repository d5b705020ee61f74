"""Ports and records of the custody moves: sweeps from deposit addresses to the hot
wallet, gas top-ups for token sweeps, and excess moves from the hot wallet to cold
(services/funding/sweeps.py, the signer's checks in sweep_signer.py; ADR 0028).

A custody transfer moves money the core already counts; no user balance changes.

Its states (``status``)::

    waiting_gas -> ready -> signing -> signed -> broadcast -> confirmed
    (a token sweep waits for its top-up)            \\-> failed (refused, reverted)
    ready -> signing -> ...                          (sweeps without top-up, top-ups, cold)

``ready`` is the decision (what, from where, to where, how much, with which gas budget),
``signing`` the intent with the whole unsigned transaction (nonce fixed) written BEFORE
the signature is asked for, like a withdrawal's (ADR 0022): every retry signs, and
broadcasts, the same transaction.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from tradewind.services.funding.withdrawal_ports import SignedTx, TxState

TransferKind = Literal["sweep", "topup", "cold"]
TransferStatus = Literal[
    "waiting_gas", "ready", "signing", "signed", "broadcast", "confirmed", "failed"
]
UNFINISHED: tuple[str, ...] = ("waiting_gas", "ready", "signing", "signed", "broadcast")


@dataclass(frozen=True, slots=True)
class CustodyTransfer:
    id: int
    kind: TransferKind
    network: str
    asset: str
    """The asset moved (a top-up moves the native coin; ``asset`` is then the native one)."""
    contract: str | None
    sender: str
    recipient: str
    amount: int
    """Chain units (wei, token base units)."""
    gas: int
    """The gas limit fixed when the move was decided."""
    max_fee: int
    """``maxFeePerGas`` fixed when decided: ``gas * max_fee`` is what a top-up pays."""
    priority_fee: int
    status: TransferStatus
    created_at_ms: int
    updated_at_ms: int
    parent_id: int | None = None
    """A top-up's token sweep."""
    tx: str | None = None
    raw_tx: str | None = None
    txid: str | None = None
    nonce: int | None = None
    block_number: int | None = None
    reason: str | None = None

    @property
    def gas_budget(self) -> int:
        return self.gas * self.max_fee


@dataclass(frozen=True, slots=True)
class NewTransfer:
    kind: TransferKind
    network: str
    asset: str
    contract: str | None
    sender: str
    recipient: str
    amount: int
    gas: int
    max_fee: int
    priority_fee: int
    status: TransferStatus
    parent_id: int | None = None
    tx: str | None = None
    """A Bitcoin move is decided with its whole transaction (its coins chosen), so it is
    stored in the same insert, ``signing`` (ADR 0035)."""


@dataclass(frozen=True, slots=True)
class DepositCoin:
    """A credited Bitcoin deposit (one output, ``txid:index``) at a deposit address."""

    txid: str
    vout: int
    address: str
    path: str

    @property
    def outpoint(self) -> str:
        return f"{self.txid}:{self.vout}"


@dataclass(frozen=True, slots=True)
class SweepCandidate:
    """An asset on a deposit address with credited deposits and none waiting."""

    address: str
    path: str
    asset: str


@dataclass(frozen=True, slots=True)
class CustodyAlert:
    id: int
    network: str
    asset: str
    kind: str
    message: str
    created_at_ms: int
    resolved_at_ms: int | None


class SweepStore(Protocol):
    """Custody transfers and alerts; every method is one transaction."""

    async def create(self, new: NewTransfer, *, at_ms: int) -> CustodyTransfer: ...

    async def get(self, transfer_id: int) -> CustodyTransfer | None: ...

    async def unfinished(self, network: str) -> Sequence[CustodyTransfer]:
        """Oldest first."""
        ...

    async def children(self, parent_id: int) -> Sequence[CustodyTransfer]: ...

    async def transition(
        self,
        transfer_id: int,
        from_statuses: Sequence[str],
        to_status: str,
        *,
        at_ms: int,
        fields: Mapping[str, object] | None = None,
    ) -> bool:
        """Compare-and-set of ``status`` (``fields``: tx, raw_tx, txid, nonce,
        block_number, reason); ``False`` and nothing written when it was not one of
        ``from_statuses``."""
        ...

    async def highest_nonce(self, network: str, sender: str) -> int | None:
        """The highest nonce handed out from ``sender`` on ``network`` by custody
        transfers AND withdrawal payouts that did not fail (they share the hot wallet)."""
        ...

    async def failed_since(self, network: str, since_ms: int) -> set[tuple[str, str]]:
        """(sender, asset) of sweeps that failed at or after ``since_ms``: not retried
        until later (a token whose transfer reverts would burn gas every step)."""
        ...

    async def candidates(self, network: str, limit: int) -> Sequence[SweepCandidate]:
        """(deposit address, asset) pairs with a credited deposit and no deposit still
        pending or orphaned (money not yet credited is not moved)."""
        ...

    async def credited_coins(self, network: str) -> Sequence[DepositCoin]:
        """UTXO networks: the outputs credited as deposits (``chain_deposits`` rows
        ``credited``) with their deposit address and its derivation path."""
        ...

    async def swept_outpoints(self, network: str, failed_since_ms: int) -> set[str]:
        """UTXO networks: ``txid:vout`` spent by sweeps that did not fail, or that failed
        at or after ``failed_since_ms`` (their coins rest before being tried again)."""
        ...

    async def reserved_outpoints(self, network: str) -> set[str]:
        """UTXO networks: ``txid:vout`` spent by unfinished transfers (a payout must not
        pick a hot-wallet coin a move to cold is spending)."""
        ...

    async def open_alert(self, network: str, asset: str, kind: str) -> CustodyAlert | None: ...

    async def raise_alert(
        self, network: str, asset: str, kind: str, message: str, at_ms: int
    ) -> CustodyAlert: ...

    async def resolve_alert(self, alert_id: int, at_ms: int) -> None: ...

    async def alerts(self, network: str) -> Sequence[CustodyAlert]: ...


class SweepChain(Protocol):
    """One EVM network's node, as the sweeper uses it."""

    async def balance(self, address: str, contract: str | None) -> int:
        """Chain units held at the latest block (native, or ERC-20 ``balanceOf``)."""
        ...

    async def fees(self) -> tuple[int, int]:
        """``(maxFeePerGas, maxPriorityFeePerGas)`` for a transaction sent now."""
        ...

    async def token_gas(self, sender: str, contract: str, to: str, amount: int) -> int:
        """A gas limit for ``transfer(to, amount)`` from ``sender`` (estimate + margin)."""
        ...

    async def nonce(self, address: str) -> int:
        """The node's pending transaction count of ``address``."""
        ...

    async def broadcast(self, raw: str) -> str | None:
        """As ``PayoutChain.broadcast``: None taken or known, else the refusal."""
        ...

    async def state(self, txid: str) -> TxState: ...


class SweepSignerClient(Protocol):
    async def address(self, network: str) -> str:
        """The hot wallet's address on ``network``."""
        ...

    async def sweep(self, transfer_id: int, network: str, tx: Mapping[str, object]) -> SignedTx:
        """Have a custody transfer's fixed transaction signed; the signer stores it on
        the transfer (``signing -> signed``) before answering."""
        ...


class SecretVault(Protocol):
    """Secrets sealed in the signer's token (the deposit account keys)."""

    def put_secret(self, label: str, value: bytes) -> None:
        """Store ``value`` as a private token object; ``ValueError`` if ``label`` exists."""
        ...

    def secret(self, label: str) -> bytes:
        """The value; ``KeyError`` when there is none."""
        ...


class OwnTransfers(Protocol):
    """The exchange's own transactions (the chain watcher asks, ADR 0028): a gas top-up
    pays a deposit address from the hot wallet and must never be credited to the user."""

    async def own_txids(self, network: str, txids: Collection[str]) -> set[str]:
        """Those of ``txids`` that are custody transfers' (stored before broadcast)."""
        ...
