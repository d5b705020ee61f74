"""Ports of the funding services: the interfaces adapters fill (DESIGN §5).

Why Protocols: the SQL store, the HSM signer and later custody providers (Fireblocks,
BitGo) plug in at the composition root without the services importing any of them.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class StoredDepositAddress:
    user_id: int
    network: str
    address: str
    path: str
    """Derivation path below the network's account key, e.g. ``0/42``."""
    created_at_ms: int


class DepositAddressStore(Protocol):
    """One deposit address per (user, network), kept for good."""

    async def get(self, user_id: int, network: str) -> StoredDepositAddress | None: ...

    async def put_if_absent(self, record: StoredDepositAddress) -> StoredDepositAddress:
        """Store ``record`` unless the (user, network) pair has an address already;
        return the stored one either way (the first writer wins a race)."""
        ...

    async def owner_of(self, network: str, address: str) -> int | None:
        """The user an address was given to (watchers map deposits back with it)."""
        ...

    async def owners_of(self, network: str, addresses: Collection[str]) -> dict[str, int]:
        """The owners of those of ``addresses`` that are deposit addresses, in one
        look-up (a Bitcoin block has thousands of outputs)."""
        ...


@dataclass(frozen=True, slots=True)
class Signature:
    """An ECDSA secp256k1 signature as EVM and Bitcoin use it."""

    r: int
    s: int
    """Low-S normalised (``s <= n/2``), as both chains require of new transactions."""
    recovery_id: int
    """0 or 1: which of the candidate public keys signed (EVM ``v`` is built from it)."""


@dataclass(frozen=True, slots=True)
class CustodyKey:
    label: str
    public_key: bytes
    """Uncompressed SEC1 public key (65 bytes, ``04 || X || Y``)."""


class Custody(Protocol):
    """Where hot-wallet keys live and get used: the HSM signer now (adapters/hsm), a
    custody provider later. Keys never leave it; callers get public keys and signatures.
    """

    def create_key(self, label: str) -> CustodyKey:
        """Generate a new secp256k1 key pair inside the custody, under ``label``."""
        ...

    def public_key(self, label: str) -> CustodyKey:
        """The public key of an existing key; ``KeyError`` when there is none."""
        ...

    def sign_digest(self, label: str, digest: bytes) -> Signature:
        """Sign a 32-byte digest (a transaction's hash) with the key ``label``."""
        ...
