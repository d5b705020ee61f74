"""The deposit addresses' private keys, for the signer process only (ADR 0028; Bitcoin:
ADR 0035).

The account-level extended private key of a network (``m/44'/60'/0'`` on EVM networks,
``m/84'/0'/0'`` (BIP 84, ``zprv``/``vprv``) on Bitcoin, whose public half is the
``xpub`` the API replicas derive addresses from, ADR 0015) is sealed in the
signer's PKCS#11 token as a private data object (readable only in a session logged in
with the user PIN). The signer reads it at start-up and derives child ``0/<index>``
keys in its own memory when a sweep from that address is to be signed.

Invariants:
- a sealed key whose public half does not give the configured xpub's addresses is
  refused (:class:`DepositKeyError`): the signer would otherwise sign for nothing, or
  for another account's addresses;
- only paths of the form ``0/<index>`` (external chain, non-hardened) are derived, and
  a derived address must equal the address the request names;
- signatures are ECDSA over the 32-byte digest with libsecp256k1 (coincurve), low-S
  (libsecp256k1 always produces low S) with the recovery id; a Bitcoin child's address
  is the P2WPKH of its compressed key, as :class:`AddressDeriver` makes it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import coincurve
from bip_utils import (
    Base58ChecksumError,
    Bip32KeyError,
    Bip44,
    Bip44Changes,
    Bip44Coins,
    Bip84,
    Bip84Coins,
)

from tradewind.services.funding.addresses import SEGWIT_HRPS, segwit_encode
from tradewind.services.funding.derivation import MAX_INDEX, AddressDeriver
from tradewind.services.funding.networks import Network
from tradewind.services.funding.ports import Signature
from tradewind.services.funding.sweep_ports import SecretVault

CHECK_INDEXES = (0, 1, 2**31 - 1)


class DepositKeyError(ValueError):
    """The sealed key is missing, malformed, or not the configured xpub's."""


def _bip84_coin(network: Network) -> Bip84Coins:
    return Bip84Coins.BITCOIN if network.chain == "mainnet" else Bip84Coins.BITCOIN_TESTNET


def _utxo(network: Network | None) -> bool:
    return network is not None and network.kind == "utxo"


def new_account_key(network: Network | None = None) -> str:
    """A fresh random account-level extended private key (the signer's ``init``):
    BIP 44 Ethereum, or BIP 84 for a Bitcoin ``network`` (its chain's prefix)."""
    seed = secrets.token_bytes(64)
    if network is not None and _utxo(network):
        btc = Bip84.FromSeed(seed, _bip84_coin(network)).Purpose().Coin().Account(0)
        return str(btc.PrivateKey().ToExtended())
    ctx = Bip44.FromSeed(seed, Bip44Coins.ETHEREUM).Purpose().Coin().Account(0)
    return str(ctx.PrivateKey().ToExtended())


def account_xpub(xprv: str, network: Network | None = None) -> str:
    if network is not None and _utxo(network):
        return str(Bip84.FromExtendedKey(xprv, _bip84_coin(network)).PublicKey().ToExtended())
    ctx = Bip44.FromExtendedKey(xprv, Bip44Coins.ETHEREUM)
    return str(ctx.PublicKey().ToExtended())


@dataclass(frozen=True, slots=True)
class _Child:
    address: str
    key: coincurve.PrivateKey


class DepositKeyring:
    """Derives and uses the private keys of one network's deposit addresses (EVM, or
    Bitcoin P2WPKH)."""

    def __init__(self, network: Network, xprv: str) -> None:
        self._hrp = SEGWIT_HRPS[network.chain] if _utxo(network) and network.chain else None
        try:
            ctx: Bip44 | Bip84 = (
                Bip84.FromExtendedKey(xprv.strip(), _bip84_coin(network))
                if _utxo(network)
                else Bip44.FromExtendedKey(xprv.strip(), Bip44Coins.ETHEREUM)
            )
        except (Base58ChecksumError, Bip32KeyError, ValueError, TypeError) as exc:
            raise DepositKeyError(f"{network.name}: the sealed deposit key is invalid") from exc
        if ctx.IsPublicOnly():
            raise DepositKeyError(f"{network.name}: the sealed deposit key is not private")
        if ctx.Bip32Object().Depth() != 3:
            raise DepositKeyError(f"{network.name}: the sealed key is not account-level")
        self._external = ctx.Change(Bip44Changes.CHAIN_EXT)
        if network.xpub is not None:
            public = AddressDeriver(network)
            for i in CHECK_INDEXES:
                if public.derive(i).address != self._child(i).address:
                    raise DepositKeyError(
                        f"{network.name}: the sealed deposit key is not the account of the "
                        "configured xpub"
                    )
        self.network = network.name

    @classmethod
    def from_vault(cls, network: Network, vault: SecretVault, label: str) -> DepositKeyring:
        try:
            raw = vault.secret(label)
        except KeyError:
            raise DepositKeyError(
                f"{network.name}: no deposit key {label!r} in the token "
                "(tradewind signer-deposit-key --network NAME stores one)"
            ) from None
        return cls(network, raw.decode())

    def _child(self, index: int) -> _Child:
        node = self._external.AddressIndex(index)
        if self._hrp is not None:
            compressed = node.PublicKey().RawCompressed().ToBytes()
            program = hashlib.new("ripemd160", hashlib.sha256(compressed).digest()).digest()
            address = segwit_encode(self._hrp, 0, program)
        else:
            address = str(node.PublicKey().ToAddress())
        return _Child(address, coincurve.PrivateKey(node.PrivateKey().Raw().ToBytes()))

    def address_at(self, path: str) -> str:
        return self._child(_index(path)).address

    def public_key_at(self, path: str) -> bytes:
        """The compressed SEC1 public key at ``path`` (a P2WPKH witness carries it)."""
        return bytes(self._child(_index(path)).key.public_key.format(compressed=True))

    def sign_digest(self, path: str, address: str, digest: bytes) -> Signature:
        """Sign with the key at ``path``; ``DepositKeyError`` unless it is ``address``'s."""
        if len(digest) != 32:
            raise ValueError("sign a 32-byte digest")
        child = self._child(_index(path))
        if child.address.lower() != address.lower():
            raise DepositKeyError(f"the key at {path} is not the key of {address}")
        sig = child.key.sign_recoverable(digest, hasher=None)
        return Signature(
            int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
        )


def _index(path: str) -> int:
    chain, sep, index = path.partition("/")
    if chain != "0" or not sep or not index.isdigit():
        raise DepositKeyError(f"not a deposit path: {path!r}")
    value = int(index)
    if value > MAX_INDEX:
        raise DepositKeyError(f"not a deposit path: {path!r}")
    return value
