"""``PayoutChain`` for EVM networks through web3.py (JSON-RPC, or eth-tester in tests):
builds EIP-1559 payout transactions, broadcasts signed ones and reports their state.

Invariants:
- the nonce is the larger of the node's pending nonce of the hot wallet and the floor
  the processor gives (one above the highest nonce it already handed out), so two
  payouts never share a nonce even before the first reaches the node;
- ``broadcast`` answers ``None`` when the node took the transaction or already knows it
  (sent before a crash), a reason when the node refused it and does not know it, and
  lets connection errors (``OSError``) through: then nothing is decided;
- ``fee_paid`` is the receipt's ``gasUsed * effectiveGasPrice`` (wei), what the sender
  paid whether the transaction succeeded or reverted (ADR 0034);
- web3's HTTP provider blocks, so every call runs in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import web3
from eth_typing import HexStr
from eth_utils.address import to_checksum_address
from web3.exceptions import TransactionNotFound

from tradewind.adapters.chain.evm_tx import transfer_data
from tradewind.services.funding.withdrawal_ports import TxState

NATIVE_GAS = 21_000
TOKEN_GAS_FLOOR = 65_000
DEFAULT_PRIORITY_FEE = 10**9  # 1 gwei


class Web3PayoutChain:
    def __init__(self, w3: web3.Web3, chain_id: int) -> None:
        self._w3 = w3
        self.chain_id = chain_id

    @classmethod
    def from_url(cls, url: str, chain_id: int) -> Web3PayoutChain:
        return cls(web3.Web3(web3.HTTPProvider(url)), chain_id)

    async def build(
        self, sender: str, to: str, contract: str | None, value: int, nonce_floor: int
    ) -> Mapping[str, object]:
        return await asyncio.to_thread(self._build, sender, to, contract, value, nonce_floor)

    def _build(
        self, sender: str, to: str, contract: str | None, value: int, nonce_floor: int
    ) -> dict[str, object]:
        eth = self._w3.eth
        sender = to_checksum_address(sender)
        nonce = max(int(eth.get_transaction_count(sender, "pending")), nonce_floor)
        base = int(eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        try:
            priority = int(eth.max_priority_fee)
        except Exception:  # nodes without eth_maxPriorityFeePerGas
            priority = DEFAULT_PRIORITY_FEE
        if contract is None:
            target, amount, data, gas = to_checksum_address(to), value, "0x", NATIVE_GAS
        else:
            target, amount, data = to_checksum_address(contract), 0, transfer_data(to, value)
            try:
                call = {"from": sender, "to": target, "data": HexStr(data)}
                estimate = int(eth.estimate_gas(call))  # type: ignore[arg-type]
            except Exception:  # e.g. the hot wallet lacks the tokens yet: a fixed budget
                estimate = TOKEN_GAS_FLOOR
            gas = max(TOKEN_GAS_FLOOR, estimate * 5 // 4)
        return {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "maxFeePerGas": 2 * base + priority,
            "maxPriorityFeePerGas": priority,
            "gas": gas,
            "to": target,
            "value": amount,
            "data": data,
            "from": sender,
        }

    async def broadcast(self, raw: str) -> str | None:
        return await asyncio.to_thread(self._broadcast, raw)

    def _broadcast(self, raw: str) -> str | None:
        from eth_utils.crypto import keccak

        txid = "0x" + keccak(bytes.fromhex(raw[2:])).hex()
        try:
            self._w3.eth.send_raw_transaction(HexStr(raw))
            return None
        except OSError:
            raise
        except Exception as exc:  # the node refused it: unless it knows it already
            if self._known(txid):
                return None
            return (str(exc) or type(exc).__name__)[:300]

    def _known(self, txid: str) -> bool:
        try:
            self._w3.eth.get_transaction(txid)  # type: ignore[arg-type]
            return True
        except TransactionNotFound:
            return False

    async def state(self, txid: str) -> TxState:
        return await asyncio.to_thread(self._state, txid)

    def _state(self, txid: str) -> TxState:
        eth = self._w3.eth
        try:
            receipt = eth.get_transaction_receipt(txid)  # type: ignore[arg-type]
        except TransactionNotFound:
            return TxState("pending" if self._known(txid) else "unknown")
        block = int(receipt["blockNumber"])
        confirmations = int(eth.block_number) - block + 1
        if int(receipt["status"]) == 1:
            return TxState("succeeded", confirmations, block)
        return TxState("reverted", confirmations, block)

    async def fee_paid(self, txid: str) -> int | None:
        return await asyncio.to_thread(self._fee_paid, txid)

    def _fee_paid(self, txid: str) -> int | None:
        eth = self._w3.eth
        try:
            receipt = eth.get_transaction_receipt(txid)  # type: ignore[arg-type]
        except TransactionNotFound:
            return None
        price = receipt.get("effectiveGasPrice")
        if price is None:  # a node from before London: the transaction's own price
            price = eth.get_transaction(txid).get("gasPrice")
        return int(receipt["gasUsed"]) * int(price or 0)
