"""``SweepChain`` for EVM networks through web3.py (JSON-RPC, or eth-tester in tests):
balances (native and ERC-20 ``balanceOf``), the fees and gas of a transaction sent now,
pending nonces; broadcast and transaction state are the payout adapter's (the same
rules: a known transaction counts as taken; connection errors decide nothing).

Invariants: fees are ``maxFeePerGas = 2 * baseFee + tip`` like payouts, fixed when a
move is decided (a top-up pays exactly ``gas * maxFeePerGas`` of the sweep it funds);
a token transfer's gas is the node's estimate + 25 %, at least 65 000; every call runs
in a worker thread (web3's HTTP provider blocks).
"""

from __future__ import annotations

import asyncio

import web3
from eth_typing import HexStr
from eth_utils.address import to_checksum_address

from tradewind.adapters.chain.evm_payout import (
    DEFAULT_PRIORITY_FEE,
    TOKEN_GAS_FLOOR,
    Web3PayoutChain,
)
from tradewind.adapters.chain.evm_tx import transfer_data
from tradewind.services.funding.withdrawal_ports import TxState

BALANCE_OF = "0x70a08231"


class Web3SweepChain:
    def __init__(self, w3: web3.Web3, chain_id: int) -> None:
        self._w3 = w3
        self._payouts = Web3PayoutChain(w3, chain_id)

    @classmethod
    def from_url(cls, url: str, chain_id: int) -> Web3SweepChain:
        return cls(web3.Web3(web3.HTTPProvider(url)), chain_id)

    async def balance(self, address: str, contract: str | None) -> int:
        return await asyncio.to_thread(self._balance, address, contract)

    def _balance(self, address: str, contract: str | None) -> int:
        who = to_checksum_address(address)
        if contract is None:
            return int(self._w3.eth.get_balance(who))
        data = HexStr(BALANCE_OF + who[2:].lower().rjust(64, "0"))
        answer = self._w3.eth.call({"to": to_checksum_address(contract), "data": data})
        return int.from_bytes(bytes(answer), "big") if answer else 0

    async def fees(self) -> tuple[int, int]:
        return await asyncio.to_thread(self._fees)

    def _fees(self) -> tuple[int, int]:
        eth = self._w3.eth
        base = int(eth.get_block("latest").get("baseFeePerGas", 0) or 0)
        try:
            tip = int(eth.max_priority_fee)
        except Exception:  # nodes without eth_maxPriorityFeePerGas
            tip = DEFAULT_PRIORITY_FEE
        return 2 * base + tip, tip

    async def token_gas(self, sender: str, contract: str, to: str, amount: int) -> int:
        return await asyncio.to_thread(self._token_gas, sender, contract, to, amount)

    def _token_gas(self, sender: str, contract: str, to: str, amount: int) -> int:
        call = {
            "from": to_checksum_address(sender),
            "to": to_checksum_address(contract),
            "data": HexStr(transfer_data(to, amount)),
        }
        try:
            estimate = int(self._w3.eth.estimate_gas(call))  # type: ignore[arg-type]
        except Exception:  # a node that cannot estimate: the fixed budget
            estimate = TOKEN_GAS_FLOOR
        return max(TOKEN_GAS_FLOOR, estimate * 5 // 4)

    async def nonce(self, address: str) -> int:
        return await asyncio.to_thread(
            lambda: int(self._w3.eth.get_transaction_count(to_checksum_address(address), "pending"))
        )

    async def broadcast(self, raw: str) -> str | None:
        return await self._payouts.broadcast(raw)

    async def state(self, txid: str) -> TxState:
        return await self._payouts.state(txid)
