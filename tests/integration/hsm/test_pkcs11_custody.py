"""The PKCS#11 signer over SoftHSM2: secp256k1 keys generated inside a token that will
not reveal them, signatures that Ethereum accepts (low S, recovery id), recovered by
eth_account to the key's own address, and keys that survive a restart."""

from __future__ import annotations

import hashlib

import pytest
from eth_account import Account
from eth_account._utils.legacy_transactions import (
    encode_transaction,
    serializable_unsigned_transaction_from_dict,
)
from eth_account.messages import _hash_eip191_message, encode_defunct
from pkcs11 import Attribute, ObjectClass
from pkcs11.exceptions import AttributeSensitive, PinIncorrect

from tests.support.softhsm import SoftToken
from tradewind.adapters.hsm.pkcs11_custody import SECP256K1_N, Pkcs11Custody
from tradewind.services.funding.addresses import evm_address
from tradewind.services.funding.ports import Custody


def test_signatures_recover_to_the_keys_address(custody: Pkcs11Custody) -> None:
    port: Custody = custody  # the adapter fills the port
    key = port.create_key("hot-ethereum")
    address = evm_address(key.public_key)
    for i in range(64):
        digest = hashlib.sha3_256(f"transaction {i}".encode()).digest()
        sig = port.sign_digest("hot-ethereum", digest)
        assert 0 < sig.r < SECP256K1_N and 0 < sig.s <= SECP256K1_N // 2  # low S
        assert sig.recovery_id in (0, 1)
        recovered = Account._recover_hash(digest, vrs=(27 + sig.recovery_id, sig.r, sig.s))
        assert recovered == address


def test_a_signed_transaction_recovers_to_the_sender(custody: Pkcs11Custody) -> None:
    key = custody.create_key("hot-tx")
    sender = evm_address(key.public_key)
    chain_id = 1337
    unsigned = serializable_unsigned_transaction_from_dict(
        {
            "nonce": 0,
            "gasPrice": 10**9,
            "gas": 21_000,
            "to": "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
            "value": 10**15,
            "data": b"",
            "chainId": chain_id,
        }
    )
    sig = custody.sign_digest("hot-tx", unsigned.hash())
    v = sig.recovery_id + 35 + 2 * chain_id  # EIP-155
    raw = encode_transaction(unsigned, vrs=(v, sig.r, sig.s))
    assert Account.recover_transaction(raw) == sender
    message = encode_defunct(text="withdrawal 42")
    digest = _hash_eip191_message(message)
    s2 = custody.sign_digest("hot-tx", digest)
    assert Account.recover_message(message, vrs=(27 + s2.recovery_id, s2.r, s2.s)) == sender


def test_the_private_key_never_leaves_the_token(custody: Pkcs11Custody) -> None:
    custody.create_key("hot-sealed")
    session = custody._session
    (private,) = session.get_objects(
        {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: "hot-sealed"}
    )
    assert private[Attribute.SENSITIVE] is True
    assert private[Attribute.EXTRACTABLE] is False
    assert private[Attribute.NEVER_EXTRACTABLE] is True
    assert private[Attribute.ALWAYS_SENSITIVE] is True
    assert private[Attribute.LOCAL] is True  # generated inside the token
    with pytest.raises(AttributeSensitive):
        private[Attribute.VALUE]


def test_keys_survive_a_restart_and_labels_are_unique(softhsm_token: SoftToken) -> None:
    with softhsm_token.open() as first:
        key = first.create_key("hot-persistent")
        with pytest.raises(ValueError, match="exists already"):
            first.create_key("hot-persistent")
    with softhsm_token.open() as second:
        assert second.public_key("hot-persistent") == key
        digest = hashlib.sha256(b"after restart").digest()
        sig = second.sign_digest("hot-persistent", digest)
        recovered = Account._recover_hash(digest, vrs=(27 + sig.recovery_id, sig.r, sig.s))
        assert recovered == evm_address(key.public_key)


def test_a_wrong_pin_is_refused(softhsm_token: SoftToken) -> None:
    with pytest.raises(PinIncorrect):
        Pkcs11Custody(softhsm_token.library, softhsm_token.label, "wrong-pin")


def test_bad_requests_are_refused(custody: Pkcs11Custody) -> None:
    with pytest.raises(KeyError):
        custody.public_key("no-such-key")
    with pytest.raises(KeyError):
        custody.sign_digest("no-such-key", bytes(32))
    custody.create_key("hot-short")
    with pytest.raises(ValueError, match="32-byte digest"):
        custody.sign_digest("hot-short", b"not a digest")
