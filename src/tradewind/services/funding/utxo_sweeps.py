"""Bitcoin sweeps (ADR 0035): credited deposits' coins on the users' P2WPKH deposit
addresses gathered into the hot wallet, several coins per transaction, and the hot
wallet's excess above its ceiling sent to the cold address. The sweeper
(:class:`~tradewind.services.funding.sweeps.Sweeper`) runs this for UTXO networks in its
step; the signer's checks are in sweep_signer.py.

One step of a UTXO network:

1. **plan sweeps**: the outputs credited as deposits (``chain_deposits``), less those
   spent by a sweep that did not fail (or failed less than ``RETRY_AFTER_MS`` ago), are
   looked up in the chain state (``scantxoutset``: confirmed, unspent, mature). A coin
   worth no more than what its input costs at the fee rate is dust and stays; an
   address whose other coins add up to less than ``min_sweep`` stays too. The rest is
   spent in transactions of at most ``MAX_SWEEP_INPUTS`` coins with one output, to the
   hot wallet, of their sum less the fee. Each is stored ``signing`` with its whole
   transaction in ONE insert (the decision and the fixed transaction are one write, so
   a coin is never in two rows that did not fail);
2. **hot and cold**: as EVM (pending payouts raise ``hot_wallet_short``; the confirmed
   hot coins above ``ceiling + pending payouts`` go to the cold address down to the
   target, one move at a time), spending hot coins that neither an unfinished payout
   nor an unfinished custody transfer spends; change back to the hot wallet;
3. **advance** every unfinished row: ``signing`` -> the signer stores the signed bytes
   (``signed``) -> ``sendrawtransaction`` (refused and unknown to the node: ``failed``,
   its coins free again after the rest) -> ``broadcast`` -> ``confirmed`` at the asset's
   confirmations; a transaction the node dropped is sent again, the same bytes.

Invariants: one coin is spent by at most one transaction the exchange signed and did not
see fail, so a sweeper killed anywhere and restarted sends the same bytes again and
never a second sweep of a coin; a failed row's coins are decided again later, never
lost; sweeps never touch the core.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import structlog

from tradewind.services.funding.networks import AssetOnNetwork, Network
from tradewind.services.funding.signer import to_chain_units
from tradewind.services.funding.sweep_config import NetworkSweeps
from tradewind.services.funding.sweep_ports import CustodyTransfer, NewTransfer
from tradewind.services.funding.withdrawal_ports import (
    HotWalletShort,
    PayoutImpossible,
    SignerRefused,
    SignerUnavailable,
    TxState,
    UtxoInput,
    spent_outpoints,
)

if TYPE_CHECKING:
    from tradewind.services.funding.sweeps import SweepCounts, Sweeper

log = structlog.get_logger(__name__)

MAX_SWEEP_INPUTS = 50
"""Coins per sweep transaction: about 3.4 kvB, and a signer request under its 16 kB."""
RETRY_AFTER_MS = 600_000
"""The coins of a failed sweep are decided again after ten minutes (a refused broadcast
costs nothing on chain, but each try is a row and a signature)."""
PAYOUTS_AHEAD = ("pending_approval", "approved", "signing", "signed")
PAYOUTS_OUT = (*PAYOUTS_AHEAD, "broadcast")
PAYOUTS_RESERVING = ("signing", "signed", "broadcast", "settling")
"""Withdrawals whose stored transaction's coins nothing else may spend (payouts.py)."""


@dataclass(frozen=True, slots=True)
class UtxoSpend:
    tx: Mapping[str, object]
    """The JSON form the signer reads (adapters/chain/bitcoin_tx.py)."""
    vsize: int
    """Virtual bytes, signatures counted at their largest."""
    fee: int
    """Satoshi: inputs less outputs."""
    fee_rate: int
    """Sat per kvB it was built at."""


@runtime_checkable
class UtxoSweepChain(Protocol):
    """A UTXO network's node as the sweeper uses it (bitcoind: adapters/chain/
    bitcoind_sweeps.py)."""

    async def coins_of(self, addresses: Sequence[str]) -> Sequence[UtxoInput]:
        """The confirmed, mature coins of ``addresses`` (the chain state, no mempool)."""
        ...

    async def fee_rate(self) -> int:
        """Sat per kvB for a transaction sent now."""
        ...

    def input_cost(self, rate: int) -> int:
        """Satoshi one more P2WPKH input adds to the fee at ``rate``: a coin worth no
        more than this is dust."""
        ...

    def build_sweep(self, coins: Sequence[UtxoInput], to: str, rate: int) -> UtxoSpend | None:
        """All of ``coins`` to ``to`` less the fee; ``None`` if what is left is dust."""
        ...

    async def build_cold(self, sender: str, to: str, value: int, reserved: set[str]) -> UtxoSpend:
        """``value`` from ``sender``'s coins (none of ``reserved``) to ``to``, change back;
        ``HotWalletShort`` / ``PayoutImpossible`` as payouts."""
        ...

    async def broadcast(self, raw: str) -> str | None: ...

    async def state(self, txid: str) -> TxState: ...


def _dumps(tx: Mapping[str, object]) -> str:
    return json.dumps(dict(tx), sort_keys=True, separators=(",", ":"))


class UtxoSweeps:
    """The UTXO half of a :class:`Sweeper` step (its store, signer, clock, alerts)."""

    def __init__(self, sweeper: Sweeper) -> None:
        self.s = sweeper

    async def step(
        self,
        net: Network,
        conf: NetworkSweeps,
        chain: UtxoSweepChain,
        hot: str,
        counts: SweepCounts,
    ) -> None:
        native = next((a for a in net.assets if a.contract is None), None)
        if native is None:
            return
        try:
            await self._plan(net, conf, chain, hot, native, counts)
            await self._hot_and_cold(net, conf, chain, hot, native, counts)
        except (SignerUnavailable, OSError) as exc:  # the transfers below still advance
            counts.waiting += 1
            log.warning("bitcoin sweep planning postponed", network=net.name, error=str(exc))
        for t in await self.s.store.unfinished(net.name):
            try:
                await self._advance(net, chain, t, counts)
            except (SignerUnavailable, OSError) as exc:
                counts.waiting += 1
                log.warning("custody transfer postponed", transfer=t.id, error=str(exc))
            except Exception:  # one transfer's trouble does not hold up the others
                counts.waiting += 1
                log.exception("custody transfer step failed", transfer=t.id)

    # -- planning -----------------------------------------------------------------

    async def _plan(
        self,
        net: Network,
        conf: NetworkSweeps,
        chain: UtxoSweepChain,
        hot: str,
        native: AssetOnNetwork,
        counts: SweepCounts,
    ) -> None:
        store = self.s.store
        done = await store.swept_outpoints(net.name, self.s.now_ms() - RETRY_AFTER_MS)
        credited = {
            c.outpoint: c for c in await store.credited_coins(net.name) if c.outpoint not in done
        }
        if not credited:
            return
        addresses = sorted({c.address for c in credited.values()} - {hot})
        coins = [c for c in await chain.coins_of(addresses) if c.outpoint in credited]
        if not coins:
            return
        rate = await chain.fee_rate()
        cost = chain.input_cost(rate)
        rules = conf.assets.get(native.asset)
        minimum = 0 if rules is None else rules.min_sweep
        min_sweep = to_chain_units(minimum, native.decimals, native.chain_decimals)
        by_address: dict[str, list[UtxoInput]] = {}
        for c in coins:
            if c.value > cost:  # else dust: spending it costs more than it holds
                by_address.setdefault(c.address, []).append(c)
        chosen = [
            c
            for address in sorted(by_address)
            if sum(c.value - cost for c in by_address[address]) >= max(min_sweep, 1)
            for c in sorted(by_address[address], key=lambda c: (c.txid, c.vout))
        ]
        for start in range(0, len(chosen), MAX_SWEEP_INPUTS):
            batch = chosen[start : start + MAX_SWEEP_INPUTS]
            spend = chain.build_sweep(batch, hot, rate)
            if spend is None:
                continue
            t = await store.create(
                NewTransfer(
                    kind="sweep",
                    network=net.name,
                    asset=native.asset,
                    contract=None,
                    sender=batch[0].address,
                    recipient=hot,
                    amount=sum(c.value for c in batch) - spend.fee,
                    gas=spend.vsize,
                    max_fee=spend.fee_rate,
                    priority_fee=0,
                    status="signing",
                    tx=_dumps(spend.tx),
                ),
                at_ms=self.s.now_ms(),
            )
            counts.planned += 1
            log.info(
                "bitcoin sweep decided",
                transfer=t.id,
                coins=len(batch),
                addresses=len({c.address for c in batch}),
                amount=t.amount,
                fee=spend.fee,
            )

    # -- hot and cold ---------------------------------------------------------------

    async def _payouts(self, net: Network, rules: AssetOnNetwork, statuses: Sequence[str]) -> int:
        total = 0
        for w in await self.s.withdrawals.list_by_status(
            tuple(statuses), limit=10_000, network=net.name
        ):
            if w.asset == rules.asset:
                total += to_chain_units(w.net_amount, rules.decimals, rules.chain_decimals)
        return total

    async def _hot_and_cold(
        self,
        net: Network,
        conf: NetworkSweeps,
        chain: UtxoSweepChain,
        hot: str,
        native: AssetOnNetwork,
        counts: SweepCounts,
    ) -> None:
        a = conf.assets.get(native.asset)
        if a is None:
            return
        held = sum(c.value for c in await chain.coins_of([hot]))
        ahead = await self._payouts(net, native, PAYOUTS_AHEAD)
        await self.s._short_alert(net, native, held, ahead, counts)
        if a.hot_ceiling is None or a.hot_target is None or conf.cold_address is None:
            return
        unfinished = await self.s.store.unfinished(net.name)
        if any(t.kind == "cold" for t in unfinished):
            return  # one move to cold at a time
        out = await self._payouts(net, native, PAYOUTS_OUT)
        ceiling = to_chain_units(a.hot_ceiling, native.decimals, native.chain_decimals)
        target = to_chain_units(a.hot_target, native.decimals, native.chain_decimals)
        free = held - out
        if free <= ceiling:
            return
        busy = await self.s.withdrawals.list_by_status(
            PAYOUTS_RESERVING, limit=100_000, network=net.name
        )
        reserved = {op for w in busy for op in spent_outpoints(w.tx)}
        reserved |= await self.s.store.reserved_outpoints(net.name)
        try:
            spend = await chain.build_cold(hot, conf.cold_address, free - target, reserved)
        except (HotWalletShort, PayoutImpossible) as exc:
            counts.waiting += 1
            log.warning("excess to cold waits", network=net.name, error=str(exc))
            return
        t = await self.s.store.create(
            NewTransfer(
                kind="cold",
                network=net.name,
                asset=native.asset,
                contract=None,
                sender=hot,
                recipient=conf.cold_address,
                amount=free - target,
                gas=spend.vsize,
                max_fee=spend.fee_rate,
                priority_fee=0,
                status="signing",
                tx=_dumps(spend.tx),
            ),
            at_ms=self.s.now_ms(),
        )
        counts.planned += 1
        log.info("excess to cold decided", transfer=t.id, amount=t.amount, held=held)

    # -- advancing ------------------------------------------------------------------

    async def _advance(
        self, net: Network, chain: UtxoSweepChain, t: CustodyTransfer, counts: SweepCounts
    ) -> None:
        s = self.s
        if t.status == "ready":  # never written for UTXO moves; nothing fixed, nothing spent
            await s._fail(t, ("ready",), "a UTXO move is decided with its transaction")
            counts.failed += 1
            return
        if t.status == "signing":
            assert t.tx is not None
            try:
                await s.signer.sweep(t.id, t.network, json.loads(t.tx))
            except SignerRefused as exc:
                fresh = await s._get(t.id)
                if fresh.status == "signing":
                    await s._fail(t, ("signing",), f"signer refused: {exc.code}: {exc.message}")
                    counts.failed += 1
                    return
            counts.signed += 1
            t = await s._get(t.id)
        if t.status == "signed":
            sent = await s._broadcast(chain, t, counts)
            if sent is None:
                return
            t = sent
        if t.status == "broadcast":
            assert t.txid is not None and t.raw_tx is not None
            state = await chain.state(t.txid)
            if state.state == "unknown":  # dropped by the node (or a reorg): send it again
                refused = await chain.broadcast(t.raw_tx)
                if refused is not None:
                    log.warning("custody transfer re-broadcast refused", transfer=t.id)
                counts.waiting += 1
                return
            rules = net.asset(t.asset)
            depth = 1 if rules is None else rules.confirmations
            if state.state != "succeeded" or state.confirmations < depth:
                counts.waiting += 1
                return
            await s._confirmed(t, state, counts)
