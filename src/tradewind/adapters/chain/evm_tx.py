"""EVM payout transactions: EIP-1559 (type 2) fields as JSON, the digest the HSM signs,
and the signed raw transaction, through eth-account's ``TypedTransaction`` (its RLP
encoding; nothing here encodes RLP by hand). Fills ``TxCodec``
(services/funding/withdrawal_ports.py).

A payout is exactly one of two shapes, and :meth:`EvmTxCodec.terms` refuses any other
(the signer signs nothing it cannot read back as "pay X units to Y"):
- native coin: ``to`` = beneficiary, ``value`` = amount, empty ``data``;
- ERC-20/BEP-20: ``to`` = the token contract, ``value`` = 0, ``data`` =
  ``transfer(address,uint256)`` with the beneficiary and the amount.

The JSON form carries ``from`` (the hot wallet) for the signer's check; it is not part
of what is signed (the signature implies the sender).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from eth_account.typed_transactions.typed_transaction import TypedTransaction
from eth_utils.address import to_checksum_address
from eth_utils.crypto import keccak

from tradewind.services.funding.addresses import evm_address
from tradewind.services.funding.withdrawal_ports import PayoutTerms, SignedTx

TRANSFER_SELECTOR = bytes.fromhex("a9059cbb")
"""keccak256("transfer(address,uint256)")[:4]."""
_FIELDS = (
    "type",
    "chainId",
    "nonce",
    "maxFeePerGas",
    "maxPriorityFeePerGas",
    "gas",
    "to",
    "value",
    "data",
)


def transfer_data(to: str, value: int) -> str:
    """ABI-encoded ``transfer(to, value)`` as 0x hex."""
    addr = bytes.fromhex(to_checksum_address(to)[2:])
    return "0x" + (TRANSFER_SELECTOR + addr.rjust(32, b"\0") + value.to_bytes(32, "big")).hex()


def _int(tx: Mapping[str, object], key: str) -> int:
    value = tx.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"transaction field {key!r} must be a non-negative integer")
    return value


def _data(tx: Mapping[str, object]) -> bytes:
    text = tx.get("data", "0x")
    if not isinstance(text, str) or not text.startswith("0x"):
        raise ValueError("transaction field 'data' must be 0x hex")
    return bytes.fromhex(text[2:])


def _unsigned(tx: Mapping[str, object]) -> dict[str, Any]:
    unknown = set(tx) - set(_FIELDS) - {"from", "accessList"}
    if unknown:
        raise ValueError(f"unexpected transaction field {sorted(unknown)[0]!r}")
    if tx.get("type") != 2:
        raise ValueError("only EIP-1559 (type 2) payouts are built")
    if tx.get("accessList") not in (None, []):
        raise ValueError("a payout has no access list")
    out: dict[str, Any] = {k: _int(tx, k) for k in _FIELDS if k not in ("to", "data")}
    to = tx.get("to")
    if not isinstance(to, str):
        raise ValueError("transaction field 'to' must be an address")
    out["to"] = to_checksum_address(to)
    out["data"] = _data(tx)
    out["accessList"] = []
    return out


class EvmTxCodec:
    def terms(self, tx: Mapping[str, object]) -> PayoutTerms:
        fields = _unsigned(tx)
        data: bytes = fields["data"]
        sender = tx.get("from")
        sender_text = to_checksum_address(sender) if isinstance(sender, str) else None
        if not data:
            return PayoutTerms(
                fields["chainId"], sender_text, fields["to"], None, fields["value"], fields["nonce"]
            )
        if len(data) != 68 or data[:4] != TRANSFER_SELECTOR or fields["value"] != 0:
            raise ValueError("not a payout: only plain value or token transfer() is signed")
        if data[4:16] != bytes(12):
            raise ValueError("malformed transfer() recipient")
        beneficiary = to_checksum_address(data[16:36])
        amount = int.from_bytes(data[36:68], "big")
        return PayoutTerms(
            fields["chainId"], sender_text, beneficiary, fields["to"], amount, fields["nonce"]
        )

    def digest(self, tx: Mapping[str, object]) -> bytes:
        return bytes(TypedTransaction.from_dict(_unsigned(tx)).hash())

    def assemble(self, tx: Mapping[str, object], r: int, s: int, recovery_id: int) -> SignedTx:
        signed = TypedTransaction.from_dict({**_unsigned(tx), "v": recovery_id, "r": r, "s": s})
        raw = signed.encode()
        return SignedTx("0x" + raw.hex(), "0x" + keccak(raw).hex())

    def sender_of(self, public_key: bytes) -> str:
        return evm_address(public_key)
