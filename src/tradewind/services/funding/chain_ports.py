"""Ports of the chain watcher: what it reads from a chain and what it keeps in SQL.

Why Protocols: the watcher's rules (confirmations, reorgs, credit once) are tested
against a real in-process chain through the web3 adapter, and a Bitcoin reader (bitcoind
JSON-RPC) fills the same ``ChainReader`` later without the watcher changing.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

NATIVE_INDEX = -1
"""The index of a transaction's own value transfer (the native coin); token transfers
use their log index (>= 0) and Bitcoin outputs their output index."""

DepositStatus = Literal["pending", "orphaned", "credited", "below_minimum", "refused"]
"""``pending``: seen in a block of the tracked chain, waiting for confirmations;
``orphaned``: its block left the chain in a reorg before the credit (un-marked; it goes
back to ``pending`` if the transaction is mined again); ``credited``: the core applied
its Deposit; ``below_minimum``: under the asset's minimum deposit, never credited;
``refused``: the core rejected the Deposit (reason stored)."""


@dataclass(frozen=True, slots=True)
class ChainTransfer:
    """A transfer found in a block: native coin (``contract`` None) or a token log."""

    txid: str
    index: int
    to: str
    """Canonical address (EIP-55 on EVM chains)."""
    value: int
    """In the chain's smallest unit (wei, token base units)."""
    contract: str | None = None


@dataclass(frozen=True, slots=True)
class ChainBlock:
    number: int
    hash: str
    parent_hash: str
    transfers: tuple[ChainTransfer, ...]


class ChainReader(Protocol):
    """A node of one network."""

    async def head(self) -> int:
        """The number of the newest block."""
        ...

    async def block_hash(self, number: int) -> str | None:
        """The hash of the block at ``number`` on the node's chain, None above the head."""
        ...

    async def block(self, number: int) -> ChainBlock | None:
        """The block at ``number`` with its transfers to anyone (the watcher filters),
        None above the head."""
        ...


@dataclass(frozen=True, slots=True)
class ChainDeposit:
    network: str
    txid: str
    index: int
    user_id: int
    asset: str
    chain_amount: int
    amount: int
    """In the core's minor units of ``asset`` (chain units scaled down exactly; dust
    below the core's precision is not credited)."""
    block_number: int
    block_hash: str
    status: DepositStatus
    credited_seq: int | None = None
    note: str | None = None

    @property
    def ref(self) -> str:
        """The Deposit command's dedupe key: ``network:txid:index``."""
        return f"{self.network}:{self.txid}:{self.index}"


@dataclass(frozen=True, slots=True)
class WatchedBlock:
    number: int
    hash: str


class WatcherStore(Protocol):
    """The watcher's memory, one network at a time; every method is one transaction."""

    async def tip(self, network: str) -> WatchedBlock | None:
        """The highest block recorded (the height to resume from)."""
        ...

    async def block_at(self, network: str, number: int) -> WatchedBlock | None: ...

    async def record_block(
        self, network: str, block: WatchedBlock, deposits: list[ChainDeposit], keep: int
    ) -> None:
        """Record ``block`` and the deposits found in it, atomically. A deposit already
        known keeps its credited status and otherwise becomes pending at this block.
        Blocks more than ``keep`` below this one are forgotten."""
        ...

    async def roll_back(self, network: str, above: int) -> list[ChainDeposit]:
        """Forget the blocks above ``above``; their pending deposits become orphaned.
        Returns the deposits of those blocks as they were (credited ones included)."""
        ...

    async def pending(self, network: str) -> list[ChainDeposit]: ...

    async def deposit(self, network: str, txid: str, index: int) -> ChainDeposit | None: ...

    async def finish(
        self,
        network: str,
        txid: str,
        index: int,
        status: DepositStatus,
        *,
        seq: int | None = None,
        note: str | None = None,
    ) -> None: ...

    async def add_alert(
        self, network: str, kind: str, message: str, block_number: int, at_ms: int
    ) -> None: ...
