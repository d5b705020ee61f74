"""Ports and records of the withdrawal workflow (services/funding/withdrawals.py, the
payout processor in payouts.py and the signer in signer.py).

Why Protocols: the SQL store, the AML list, the EVM chain (web3) and the signer's HTTP
client plug in at the composition root; a custody provider (Fireblocks, BitGo) would
fill ``SignerClient`` and the chain ports without the workflow changing.

The states (``status``), in order of a normal life::

    holding -> pending_approval -> approved -> signing -> signed -> broadcast
            -> settling -> confirmed
    holding -> refused                        (the core would not lock the funds)
    pending_approval | approved -> releasing -> rejected | cancelled
    signing | signed | broadcast -> releasing -> failed
    approved -> releasing -> failed           (a Bitcoin payout that cannot be built)

``holding``, ``signing``, ``settling`` and ``releasing`` are intents written BEFORE
the external step they name (the core command, the signature), so the processor,
restarted anywhere, repeats the step and the core or the store tells it whether the
first attempt happened (ADR 0022).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

WithdrawalStatus = Literal[
    "holding",
    "refused",
    "pending_approval",
    "approved",
    "signing",
    "signed",
    "broadcast",
    "settling",
    "confirmed",
    "releasing",
    "failed",
    "cancelled",
    "rejected",
]
FINAL: frozenset[str] = frozenset({"refused", "confirmed", "failed", "cancelled", "rejected"})
"""States nothing leaves."""
CANCELLABLE: frozenset[str] = frozenset({"pending_approval", "approved"})
"""Before signing: the user may cancel, compliance may reject."""
NOT_COUNTED: frozenset[str] = frozenset({"refused", "failed", "cancelled", "rejected"})
"""States whose amount does not count against the daily limit (no money left)."""


@dataclass(frozen=True, slots=True)
class Withdrawal:
    id: int
    """Also the core's withdrawal id (``WithdrawHold(id=...)``)."""
    user_id: int
    asset: str
    network: str
    address: str
    """Canonical (EIP-55 on EVM chains)."""
    amount: int
    """Gross, minor units: what leaves the user's balance."""
    fee: int
    """Minor units kept by the exchange; the address receives ``amount - fee``."""
    memo: str | None
    status: WithdrawalStatus
    required_approvals: int
    created_at_ms: int
    updated_at_ms: int
    idempotency_key: str
    request_hash: str
    final_status: str | None = None
    """While ``releasing``: which of failed, cancelled or rejected it ends as."""
    reason: str | None = None
    tx: str | None = None
    """The unsigned transaction (JSON) fixed when signing began: retries sign the same."""
    raw_tx: str | None = None
    """The signed transaction (0x hex), written by the signer."""
    txid: str | None = None
    block_number: int | None = None

    @property
    def net_amount(self) -> int:
        return self.amount - self.fee


@dataclass(frozen=True, slots=True)
class WithdrawalEvent:
    withdrawal_id: int
    status: str
    at_ms: int
    actor_id: int | None
    note: str | None


@dataclass(frozen=True, slots=True)
class WhitelistedAddress:
    id: int
    user_id: int
    network: str
    address: str
    label: str
    created_at_ms: int
    usable_from_ms: int
    """The end of the cooling-off period: before it the address cannot be used."""


class IdempotencyConflict(Exception):
    """Another withdrawal already holds this (user, idempotency key)."""


class WithdrawalStore(Protocol):
    """Withdrawals, their timelines, approvals and the address book; every method is one
    transaction, and every status change is a compare-and-set from the expected status
    that also appends the timeline entry."""

    async def create(
        self,
        *,
        user_id: int,
        asset: str,
        network: str,
        address: str,
        amount: int,
        fee: int,
        memo: str | None,
        required_approvals: int,
        idempotency_key: str,
        request_hash: str,
        at_ms: int,
    ) -> Withdrawal:
        """A new withdrawal in ``holding``; :class:`IdempotencyConflict` when the user
        used ``idempotency_key`` before."""
        ...

    async def get(self, withdrawal_id: int) -> Withdrawal | None: ...

    async def by_key(self, user_id: int, idempotency_key: str) -> Withdrawal | None: ...

    async def list_for_user(
        self, user_id: int, *, limit: int, before_id: int | None
    ) -> Sequence[Withdrawal]:
        """Newest first."""
        ...

    async def list_by_status(
        self, statuses: Sequence[str], *, limit: int, network: str | None = None
    ) -> Sequence[Withdrawal]:
        """Oldest first (the processor's and the back office's queue)."""
        ...

    async def amount_since(self, user_id: int, asset: str, since_ms: int) -> int:
        """Sum of ``amount`` of the user's withdrawals of ``asset`` created at or after
        ``since_ms`` whose status is not in :data:`NOT_COUNTED`."""
        ...

    async def transition(
        self,
        withdrawal_id: int,
        from_statuses: Sequence[str],
        to_status: str,
        *,
        at_ms: int,
        actor_id: int | None = None,
        note: str | None = None,
        fields: Mapping[str, object] | None = None,
    ) -> bool:
        """Compare-and-set ``status`` from one of ``from_statuses`` to ``to_status``,
        setting ``fields`` (``final_status``, ``reason``, ``tx``, ``raw_tx``, ``txid``,
        ``block_number``) and appending a timeline entry; ``False`` (nothing written)
        when the status was not one of them."""
        ...

    async def timeline(self, withdrawal_id: int) -> Sequence[WithdrawalEvent]: ...

    async def add_approval(self, withdrawal_id: int, approver_id: int, at_ms: int) -> int | None:
        """Record an approver; the number of distinct approvers now, ``None`` when this
        approver had approved already."""
        ...

    async def approvers(self, withdrawal_id: int) -> Sequence[int]: ...

    async def highest_nonce(self, network: str, sender: str) -> int | None:
        """The highest nonce fixed in a withdrawal's ``tx`` from ``sender`` on
        ``network`` that is not ``failed`` (nonces the processor handed out)."""
        ...

    # -- the address book ------------------------------------------------------------

    async def add_address(
        self,
        *,
        user_id: int,
        network: str,
        address: str,
        label: str,
        at_ms: int,
        usable_from_ms: int,
    ) -> WhitelistedAddress | None:
        """``None`` when the user has this address on this network already."""
        ...

    async def addresses(self, user_id: int) -> Sequence[WhitelistedAddress]: ...

    async def find_address(
        self, user_id: int, network: str, address: str
    ) -> WhitelistedAddress | None: ...

    async def remove_address(self, user_id: int, address_id: int) -> bool: ...


@dataclass(frozen=True, slots=True)
class ScreeningResult:
    blocked: bool
    reason: str | None = None
    source: str = "list"


class Screening(Protocol):
    """AML screening of a destination address (a sanctions/blocklist provider later)."""

    async def screen(self, network: str, address: str) -> ScreeningResult: ...


# -- payouts ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PayoutTerms:
    """What a transaction pays, read back from its fields (the signer checks these
    against the withdrawal before signing)."""

    chain_id: int
    sender: str | None
    to: str
    """The beneficiary (for a token: the ``transfer`` recipient, not the contract)."""
    contract: str | None
    value: int
    """Chain units (wei, token base units)."""
    nonce: int


@dataclass(frozen=True, slots=True)
class SignedTx:
    raw: str
    """Hex of the signed transaction as the node takes it: 0x-prefixed for
    ``eth_sendRawTransaction``, bare for bitcoind's ``sendrawtransaction``."""
    txid: str


@dataclass(frozen=True, slots=True)
class TxState:
    """A transaction as the chain sees it now."""

    state: Literal["unknown", "pending", "succeeded", "reverted"]
    confirmations: int = 0
    block_number: int | None = None


class PayoutChain(Protocol):
    """One network's node, as the payout processor uses it."""

    async def build(
        self, sender: str, to: str, contract: str | None, value: int, nonce_floor: int
    ) -> Mapping[str, object]:
        """An unsigned transaction (JSON-able fields) from ``sender`` paying ``value``
        chain units to ``to`` (through ``contract``'s ``transfer`` for a token), with a
        nonce of at least ``nonce_floor`` and the chain's pending nonce."""
        ...

    async def broadcast(self, raw: str) -> str | None:
        """Send a signed transaction; ``None`` if the node took it (or knew it already),
        else the node's reason for refusing it. Raises ``ConnectionError`` (or another
        ``OSError``) when the node could not be asked: nothing is decided then."""
        ...

    async def state(self, txid: str) -> TxState: ...


class TxCodec(Protocol):
    """Encoding of one chain family's transactions (the signer's only chain knowledge)."""

    def terms(self, tx: Mapping[str, object]) -> PayoutTerms:
        """What ``tx`` pays; ``ValueError`` if it is not a plain payout."""
        ...

    def digest(self, tx: Mapping[str, object]) -> bytes:
        """The 32-byte hash that is signed."""
        ...

    def assemble(self, tx: Mapping[str, object], r: int, s: int, recovery_id: int) -> SignedTx: ...

    def sender_of(self, public_key: bytes) -> str:
        """The address of an uncompressed SEC1 public key."""
        ...


class SignerUnavailable(Exception):
    """The signer could not be reached or failed; ask again later."""


class SignerRefused(Exception):
    """The signer refused the request (the reason is the message); asking again with
    the same request gets the same answer."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SignerClient(Protocol):
    """The workflow's side of the signer (HTTP on loopback: adapters/signer_http.py)."""

    async def address(self, network: str) -> str:
        """The hot wallet's address on ``network``."""
        ...

    async def sign(self, withdrawal_id: int, network: str, tx: Mapping[str, object]) -> SignedTx:
        """Have the withdrawal's transaction signed; the signer stores the result on the
        withdrawal (``signing -> signed``) before answering."""
        ...


# -- UTXO payouts (Bitcoin) ------------------------------------------------------------


class HotWalletShort(Exception):
    """The hot wallet's spendable coins (confirmed, not reserved by another payout) do
    not cover the payout and its fee: the withdrawal waits, ``approved`` (cancellable),
    until coins are added or earlier payouts' change confirms."""


class PayoutImpossible(Exception):
    """The payout can never be built as asked (e.g. an amount below the destination's
    dust limit): the withdrawal fails and its funds are released."""


@dataclass(frozen=True, slots=True)
class UtxoInput:
    txid: str
    vout: int
    address: str
    value: int
    """Satoshi; BIP 143 signs it, so a wrong value makes the signature invalid."""

    @property
    def outpoint(self) -> str:
        return f"{self.txid}:{self.vout}"


@dataclass(frozen=True, slots=True)
class UtxoPayoutTerms:
    """What a UTXO transaction spends and pays, read back from its fields (the signer
    checks these against the withdrawal before signing)."""

    sender: str | None
    inputs: tuple[UtxoInput, ...]
    outputs: tuple[tuple[str, int], ...]
    """(canonical address, satoshi) in output order."""
    vsize: int
    """Virtual size of the signed transaction (signatures counted at their largest)."""

    @property
    def fee(self) -> int:
        return sum(i.value for i in self.inputs) - sum(v for _, v in self.outputs)


@runtime_checkable
class UtxoPayoutChain(Protocol):
    """A UTXO network's node as the payout processor uses it (bitcoind: the adapter in
    adapters/chain/bitcoind_payout.py)."""

    async def build_spend(
        self, sender: str, to: str, value: int, reserved: Collection[str]
    ) -> Mapping[str, object]:
        """An unsigned transaction paying ``value`` satoshi to ``to`` from ``sender``'s
        confirmed coins, none of the ``reserved`` outpoints (``txid:vout``) among them,
        change back to ``sender``. :class:`HotWalletShort` when the coins do not cover
        it, :class:`PayoutImpossible` when it cannot be paid at all."""
        ...

    async def broadcast(self, raw: str) -> str | None:
        """As :meth:`PayoutChain.broadcast`."""
        ...

    async def state(self, txid: str) -> TxState: ...


def spent_outpoints(tx_json: str | None) -> list[str]:
    """The ``txid:vout`` a stored UTXO transaction spends (none for other shapes)."""
    if not tx_json:
        return []
    try:
        tx = json.loads(tx_json)
    except ValueError:
        return []
    inputs = tx.get("inputs") if isinstance(tx, dict) else None
    if not isinstance(inputs, list):
        return []
    return [
        f"{i['txid']}:{i['vout']}"
        for i in inputs
        if isinstance(i, dict) and "txid" in i and "vout" in i
    ]


class UtxoTxCodec(Protocol):
    """Encoding of a UTXO network's transactions (the signer's Bitcoin knowledge)."""

    def utxo_terms(self, tx: Mapping[str, object]) -> UtxoPayoutTerms:
        """What ``tx`` spends and pays; ``ValueError`` if it is not a plain payout."""
        ...

    def digests(self, tx: Mapping[str, object]) -> list[bytes]:
        """The 32-byte hash each input's signature signs (BIP 143, SIGHASH_ALL)."""
        ...

    def assemble_signed(
        self, tx: Mapping[str, object], signatures: Sequence[tuple[int, int]], public_key: bytes
    ) -> SignedTx:
        """The transaction with each input's witness (``(r, s)`` low-S, in input order)."""
        ...

    def sender_of(self, public_key: bytes) -> str:
        """The P2WPKH address of an uncompressed SEC1 public key."""
        ...
