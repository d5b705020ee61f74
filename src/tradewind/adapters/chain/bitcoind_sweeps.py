"""``UtxoSweepChain`` for Bitcoin through bitcoind's JSON-RPC (ADR 0035): the confirmed
coins of deposit addresses (``scantxoutset``, several addresses per scan), sweep
transactions gathering them into one output, moves to cold built like payouts, and the
payout adapter's broadcast and confirmation rules (a transaction the node knows counts
as taken; connection errors decide nothing).

Invariants:
- coins come from the chain state only (never the mempool), coinbases once 100 blocks
  deep, amounts exact in satoshi;
- a sweep's fee is its vsize with every signature at its largest times the rate, so the
  rate is never undershot; an input costs ``INPUT_VSIZE`` vB of it, and a coin worth no
  more than that is dust; a sweep whose output would be under the hot wallet's dust
  limit is not built.
"""

from __future__ import annotations

from collections.abc import Sequence

from tradewind.adapters.chain.bitcoin_tx import dust_limit, script_of, vsize_of
from tradewind.adapters.chain.bitcoind_payout import (
    COINBASE_MATURITY,
    BitcoindPayoutChain,
    _fee,
)
from tradewind.adapters.chain.bitcoind_reader import btc_to_satoshi
from tradewind.services.funding.utxo_sweeps import UtxoSpend
from tradewind.services.funding.withdrawal_ports import TxState, UtxoInput

SCAN_CHUNK = 500
"""Addresses per ``scantxoutset`` (each call reads the whole UTXO set once)."""
INPUT_VSIZE = vsize_of(2, [b"\0" * 22]) - vsize_of(1, [b"\0" * 22])
"""The virtual bytes one more P2WPKH input adds (68 with the largest signature)."""


class BitcoindSweepChain:
    def __init__(self, payouts: BitcoindPayoutChain) -> None:
        self._payouts = payouts

    async def coins_of(self, addresses: Sequence[str]) -> list[UtxoInput]:
        out: list[UtxoInput] = []
        wanted = list(dict.fromkeys(addresses))
        for start in range(0, len(wanted), SCAN_CHUNK):
            chunk = wanted[start : start + SCAN_CHUNK]
            by_script = {script_of(a).hex(): a for a in chunk}
            answer = await self._payouts._call(
                "scantxoutset", "start", [f"addr({a})" for a in chunk]
            )
            if not isinstance(answer, dict) or not answer.get("success", False):
                raise ConnectionError("scantxoutset did not finish (another scan running?)")
            tip = int(answer["height"])
            for u in answer.get("unspents", ()):
                if u.get("coinbase") and tip - int(u["height"]) + 1 < COINBASE_MATURITY:
                    continue
                address = by_script.get(str(u.get("scriptPubKey", "")))
                if address is None:
                    continue
                out.append(
                    UtxoInput(str(u["txid"]), int(u["vout"]), address, btc_to_satoshi(u["amount"]))
                )
        return out

    async def fee_rate(self) -> int:
        return await self._payouts.fee_rate()

    def input_cost(self, rate: int) -> int:
        return _fee(INPUT_VSIZE, rate)

    def build_sweep(self, coins: Sequence[UtxoInput], to: str, rate: int) -> UtxoSpend | None:
        script = script_of(to)
        vsize = vsize_of(len(coins), [script])
        fee = _fee(vsize, rate)
        value = sum(c.value for c in coins) - fee
        if not coins or value < dust_limit(script):
            return None
        tx = {
            "version": 2,
            "locktime": 0,
            "inputs": [
                {"txid": c.txid, "vout": c.vout, "address": c.address, "value": c.value}
                for c in coins
            ],
            "outputs": [{"address": to, "value": value}],
            "fee_rate": rate,
        }
        return UtxoSpend(tx, vsize, fee, rate)

    async def build_cold(self, sender: str, to: str, value: int, reserved: set[str]) -> UtxoSpend:
        tx = await self._payouts.build_spend(sender, to, value, reserved)
        inputs = tx["inputs"]
        outputs = tx["outputs"]
        assert isinstance(inputs, list) and isinstance(outputs, list)
        vsize = vsize_of(len(inputs), [script_of(o["address"]) for o in outputs])
        fee = sum(int(i["value"]) for i in inputs) - sum(int(o["value"]) for o in outputs)
        rate = tx["fee_rate"]
        assert isinstance(rate, int)
        return UtxoSpend(tx, vsize, fee, rate)

    async def broadcast(self, raw: str) -> str | None:
        return await self._payouts.broadcast(raw)

    async def state(self, txid: str) -> TxState:
        return await self._payouts.state(txid)
