"""Deposit addresses derived from an account-level extended public key (BIP32/44/84).

Why an extended *public* key: the web-facing processes must be able to hand out a fresh
address per user without being able to spend from it. The operator keeps the seed
offline (or in the signer's HSM) and configures only the account's xpub/zpub, so a
breach of an API replica leaks who deposits, never the funds.

Invariants:
- a private extended key is refused at construction (:class:`DerivationError`): it must
  never be configured on a web-facing process;
- the address of user ``u`` is the external-chain child ``0/u`` of the account key
  (path ``m/84'/0'/0'/0/u`` for Bitcoin, ``m/44'/60'/0'/0/u`` for EVM when the xpub is the
  usual account 0): deterministic, so it is the same after a restart or on another
  replica, and stored only so watchers can map addresses back to users;
- Bitcoin addresses are native segwit P2WPKH (BIP 84) with the chain's prefix; EVM
  addresses are EIP-55 checksummed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tradewind.services.funding.addresses import SEGWIT_HRPS, eip55, keccak256, segwit_encode
from tradewind.services.funding.networks import Network

if TYPE_CHECKING:
    from bip_utils import Bip44, Bip84

MAX_INDEX = 2**31 - 1
"""The largest non-hardened BIP32 index: user ids above it get no derived address."""


class DerivationError(ValueError):
    """The extended key cannot be used (malformed, private, or of the wrong kind)."""


def _hash160(data: bytes) -> bytes:
    return hashlib.new("ripemd160", hashlib.sha256(data).digest()).digest()


@dataclass(frozen=True, slots=True)
class DerivedAddress:
    address: str
    path: str
    """The derivation below the account key, e.g. ``0/42`` (external chain, index 42)."""


class AddressDeriver:
    """Derives the deposit address of an index on one network from its xpub."""

    def __init__(self, network: Network) -> None:
        if network.xpub is None:
            raise DerivationError(f"{network.name}: no extended public key configured")
        self._network = network
        # imported here: bip_utils takes over a second to import, and a process without
        # deposit addresses configured never needs it
        from bip_utils import (
            Base58ChecksumError,
            Bip32KeyError,
            Bip44,
            Bip44Changes,
            Bip44Coins,
            Bip44Levels,
            Bip84,
            Bip84Coins,
        )

        try:
            if network.kind == "utxo":
                coin = (
                    Bip84Coins.BITCOIN if network.chain == "mainnet" else Bip84Coins.BITCOIN_TESTNET
                )
                ctx: Bip44 | Bip84 = Bip84.FromExtendedKey(network.xpub, coin)
            else:
                ctx = Bip44.FromExtendedKey(network.xpub, Bip44Coins.ETHEREUM)
        except (Base58ChecksumError, Bip32KeyError, ValueError, TypeError) as exc:
            raise DerivationError(
                f"{network.name}: the extended key is not valid for this network ({exc})"
            ) from None
        if not ctx.IsPublicOnly():
            raise DerivationError(
                f"{network.name}: a private extended key is configured; give the account's "
                "extended public key (xpub/zpub/vpub) instead"
            )
        if not ctx.IsLevel(Bip44Levels.ACCOUNT):
            raise DerivationError(
                f"{network.name}: expected an account-level extended key (depth 3)"
            )
        self._external = ctx.Change(Bip44Changes.CHAIN_EXT)

    def derive(self, index: int) -> DerivedAddress:
        if not 0 <= index <= MAX_INDEX:
            raise DerivationError(f"index {index} is outside 0..{MAX_INDEX}")
        key = self._external.AddressIndex(index).PublicKey()
        if self._network.kind == "utxo":
            program = _hash160(key.RawCompressed().ToBytes())
            address = segwit_encode(SEGWIT_HRPS[self._network.chain], 0, program)
        else:
            raw = key.RawUncompressed().ToBytes()
            address = eip55(keccak256(raw[-64:])[-20:].hex())
        return DerivedAddress(address, f"0/{index}")
