"""``ChainReader`` for EVM chains through web3.py (JSON-RPC, or eth-tester in tests).

What it reports: each transaction's own value (index ``NATIVE_INDEX``) when it moved
any, only if the transaction succeeded (a reverted transaction moves no value), and the
ERC-20 ``Transfer(address,address,uint256)`` logs of the configured token contracts
(index = log index; logs exist only for successful transactions). Value moved by
internal calls of contracts (no log, no top-level value) is not seen; the deposit
addresses are plain accounts, so only a contract sending to them would do that.

web3's HTTP provider blocks, so every call runs in a worker thread: the event loop of
the embedded exchange keeps serving while a node answers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

import web3
from eth_utils.address import to_checksum_address
from web3.exceptions import BlockNotFound

from tradewind.services.funding.chain_ports import NATIVE_INDEX, ChainBlock, ChainTransfer

TRANSFER_TOPIC = "0xddf252ad1be2c89b69c2b068fc378daa952ba7f163c4a11628f55a4df523b3ef"
"""keccak256("Transfer(address,address,uint256)")."""


def _hex(value: Any) -> str:
    return value.to_0x_hex() if hasattr(value, "to_0x_hex") else str(value)


class Web3ChainReader:
    def __init__(self, w3: web3.Web3, token_contracts: Iterable[str] = ()) -> None:
        self._w3 = w3
        self._tokens = [to_checksum_address(c) for c in token_contracts]

    @classmethod
    def from_url(cls, url: str, token_contracts: Iterable[str] = ()) -> Web3ChainReader:
        return cls(web3.Web3(web3.HTTPProvider(url)), token_contracts)

    async def head(self) -> int:
        return await asyncio.to_thread(lambda: int(self._w3.eth.block_number))

    async def block_hash(self, number: int) -> str | None:
        return await asyncio.to_thread(self._block_hash, number)

    async def block(self, number: int) -> ChainBlock | None:
        return await asyncio.to_thread(self._block, number)

    def _block_hash(self, number: int) -> str | None:
        if number < 0 or number > self._w3.eth.block_number:
            return None
        try:
            return _hex(self._w3.eth.get_block(number)["hash"])
        except BlockNotFound:  # the chain got shorter between the two calls
            return None

    def _block(self, number: int) -> ChainBlock | None:
        eth = self._w3.eth
        if number > eth.block_number:
            return None
        try:
            b = eth.get_block(number, full_transactions=True)
        except BlockNotFound:
            return None
        transfers: list[ChainTransfer] = []
        for tx in b["transactions"]:
            if not isinstance(tx, Mapping):  # hashes only: not asked for
                continue
            to, value = tx.get("to"), int(tx.get("value", 0))
            if to is None or value <= 0:
                continue
            txid = _hex(tx["hash"])
            if int(eth.get_transaction_receipt(tx["hash"])["status"]) != 1:
                continue
            transfers.append(ChainTransfer(txid, NATIVE_INDEX, to_checksum_address(to), value))
        if self._tokens:
            # by number (eth-tester has no blockHash filter), then only the logs of the
            # block just read: a reorg between the two calls must not mix two blocks
            logs = eth.get_logs(
                {
                    "fromBlock": number,
                    "toBlock": number,
                    "address": self._tokens,
                    "topics": [TRANSFER_TOPIC],
                }
            )
            for lg in logs:
                topics = lg["topics"]
                if lg["blockHash"] != b["hash"] or len(topics) != 3:
                    continue  # ERC-721 Transfer has the id as a third indexed topic
                to = to_checksum_address(bytes(topics[2])[-20:])
                value = int.from_bytes(bytes(lg["data"]), "big")
                transfers.append(
                    ChainTransfer(
                        _hex(lg["transactionHash"]),
                        int(lg["logIndex"]),
                        to,
                        value,
                        to_checksum_address(lg["address"]),
                    )
                )
        return ChainBlock(number, _hex(b["hash"]), _hex(b["parentHash"]), tuple(transfers))
