"""``UtxoPayoutChain`` for Bitcoin through bitcoind's JSON-RPC (ADR 0029): builds payout
transactions from the hot wallet's coins, broadcasts signed ones and reports their
confirmations.

RPCs: ``scantxoutset`` (the hot wallet's confirmed coins, without a node wallet),
``estimatesmartfee``, ``sendrawtransaction``, ``getrawtransaction`` (verbose; a
confirmed payout is found with ``txindex=1``) and ``getblockheader``. ``fee_paid`` (ADR
0034) reads a confirmed transaction and the outputs it spends: its inputs less its
outputs, from the node's ``fee`` when it gives one (``getrawtransaction`` verbosity 2).

Invariants:
- a coin is chosen only if it is confirmed (``scantxoutset`` reads the chain state,
  never the mempool), mature (a coinbase 100 blocks deep) and not among the outpoints
  the processor reserved (inputs of payouts fixed but not yet settled): two payouts
  never spend one coin;
- coins are taken largest first until they cover the amount and the fee at the rate
  asked; the change goes back to the hot wallet unless it would be dust, then it is
  left to the fee (at most the dust limit plus an output's fee more);
- the fee rate is ``estimatesmartfee``'s for the target, or the configured fallback
  when the node has no estimate (regtest, a fresh node), and never below 1 sat/vB;
- amounts are exact (satoshi integers; the node's BTC values parsed as ``Decimal``);
- ``broadcast`` answers ``None`` when the node took the transaction or already has it
  (mempool or chain: the same bytes re-sent after a crash), bitcoind's code and message
  when it refused one it does not know, and raises ``ConnectionError`` when the node
  could not be asked (nothing is decided then).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from decimal import ROUND_CEILING, Decimal
from typing import Any

from tradewind.adapters.chain.bitcoin_tx import dust_limit, script_of, txid_of_raw, vsize_of
from tradewind.adapters.chain.bitcoind_reader import (
    RPC_INVALID_ADDRESS_OR_KEY,
    BitcoindReader,
    BitcoindRpcError,
    BitcoindUnavailable,
    btc_to_satoshi,
)
from tradewind.services.funding.withdrawal_ports import (
    HotWalletShort,
    PayoutImpossible,
    TxState,
)

RPC_VERIFY_ALREADY_IN_CHAIN = -27
COINBASE_MATURITY = 100
MIN_RELAY_SAT_PER_KVB = 1_000
MAX_INPUTS = 500
"""A payout spends at most this many coins (about 34 kvB, within standard size)."""


class BitcoindPayoutChain:
    def __init__(
        self,
        node: BitcoindReader,
        *,
        fallback_fee_rate: int = 10,
        fee_target_blocks: int = 6,
    ) -> None:
        """``fallback_fee_rate``: sat/vB when the node has no estimate."""
        self._node = node
        self.fallback_fee_rate = fallback_fee_rate
        self.fee_target_blocks = fee_target_blocks

    async def _call(self, method: str, *params: Any) -> Any:
        try:
            return await self._node.call(method, *params)
        except BitcoindUnavailable as exc:
            raise ConnectionError(str(exc)) from exc

    async def fee_rate(self) -> int:
        """Sat per kvB for the next payout."""
        answer = await self._call("estimatesmartfee", self.fee_target_blocks)
        rate = answer.get("feerate") if isinstance(answer, dict) else None
        if isinstance(rate, int | Decimal) and not isinstance(rate, bool) and rate > 0:
            sat = int((Decimal(rate) * 10**8).to_integral_value(ROUND_CEILING))
        else:
            sat = self.fallback_fee_rate * 1_000
        return max(sat, MIN_RELAY_SAT_PER_KVB)

    async def coins(self, address: str) -> list[tuple[str, int, int]]:
        """Confirmed, mature coins of ``address``: ``(txid, vout, satoshi)``."""
        answer = await self._call("scantxoutset", "start", [f"addr({address})"])
        if not isinstance(answer, dict) or not answer.get("success", False):
            raise ConnectionError("scantxoutset did not finish (another scan running?)")
        tip = int(answer["height"])
        out: list[tuple[str, int, int]] = []
        for u in answer.get("unspents", ()):
            if u.get("coinbase") and tip - int(u["height"]) + 1 < COINBASE_MATURITY:
                continue
            out.append((str(u["txid"]), int(u["vout"]), btc_to_satoshi(u["amount"])))
        return out

    async def build_spend(
        self, sender: str, to: str, value: int, reserved: Collection[str]
    ) -> Mapping[str, object]:
        to_script, change_script = script_of(to), script_of(sender)
        if value < dust_limit(to_script):
            raise PayoutImpossible(
                f"{value} sat is below the dust limit of the address ({dust_limit(to_script)})"
            )
        rate = await self.fee_rate()
        free = [c for c in await self.coins(sender) if f"{c[0]}:{c[1]}" not in reserved]
        free.sort(key=lambda c: (-c[2], c[0], c[1]))
        chosen: list[tuple[str, int, int]] = []
        for coin in free[:MAX_INPUTS]:
            chosen.append(coin)
            total = sum(c[2] for c in chosen)
            fee_change = _fee(vsize_of(len(chosen), [to_script, change_script]), rate)
            fee_alone = _fee(vsize_of(len(chosen), [to_script]), rate)
            change = total - value - fee_change
            if change >= dust_limit(change_script):
                outputs = [(to, value), (sender, change)]
                break
            if total >= value + fee_alone:
                outputs = [(to, value)]  # what is left is less than a change output is worth
                break
        else:
            have = sum(c[2] for c in free[:MAX_INPUTS])
            raise HotWalletShort(
                f"the hot wallet has {have} sat spendable in {len(free)} coins; "
                f"{value} sat and the fee at {rate} sat/kvB are needed"
            )
        return {
            "version": 2,
            "locktime": 0,
            "inputs": [{"txid": t, "vout": n, "address": sender, "value": v} for t, n, v in chosen],
            "outputs": [{"address": a, "value": v} for a, v in outputs],
            "from": sender,
            "fee_rate": rate,
        }

    async def broadcast(self, raw: str) -> str | None:
        try:
            await self._call("sendrawtransaction", raw)
            return None
        except BitcoindRpcError as exc:
            if exc.code == RPC_VERIFY_ALREADY_IN_CHAIN:
                return None
            if await self._known(txid_of_raw(raw)):
                return None
            return f"{exc.code}: {exc.message}"[:300]

    async def _known(self, txid: str) -> bool:
        try:
            await self._call("getrawtransaction", txid, False)
            return True
        except BitcoindRpcError as exc:
            if exc.code == RPC_INVALID_ADDRESS_OR_KEY:
                return False
            raise

    async def state(self, txid: str) -> TxState:
        try:
            tx = await self._call("getrawtransaction", txid, True)
        except BitcoindRpcError as exc:
            if exc.code == RPC_INVALID_ADDRESS_OR_KEY:
                return TxState("unknown")
            raise
        confirmations = int(tx.get("confirmations") or 0)
        block_hash = tx.get("blockhash")
        if confirmations <= 0 or not block_hash:
            return TxState("pending")
        header = await self._call("getblockheader", block_hash, True)
        return TxState("succeeded", confirmations, int(header["height"]))

    async def fee_paid(self, txid: str) -> int | None:
        try:
            tx = await self._call("getrawtransaction", txid, 2)
        except BitcoindRpcError as exc:
            if exc.code == RPC_INVALID_ADDRESS_OR_KEY:
                return None
            raise
        if int(tx.get("confirmations") or 0) <= 0:
            return None  # in the mempool only: it may still be dropped
        if tx.get("fee") is not None:
            return btc_to_satoshi(tx["fee"])
        paid_in = 0
        for vin in tx.get("vin", ()):
            prevout = vin.get("prevout")
            if prevout is None:
                parent = await self._call("getrawtransaction", vin["txid"], True)
                prevout = next(o for o in parent["vout"] if int(o["n"]) == int(vin["vout"]))
            paid_in += btc_to_satoshi(prevout["value"])
        return paid_in - sum(btc_to_satoshi(o["value"]) for o in tx.get("vout", ()))


def _fee(vsize: int, sat_per_kvb: int) -> int:
    return -(-vsize * sat_per_kvb // 1_000)
