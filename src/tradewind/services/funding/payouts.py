"""The payout processor: drives withdrawals from ``approved`` through signing,
broadcast and confirmation to ``confirmed`` (settled in the core) or ``failed`` (released),
and finishes any intent a crash interrupted (ADR 0022).

One :meth:`PayoutProcessor.step` looks at every unfinished withdrawal once:

- ``holding``: lock the funds (again; the core says if it happened already);
- ``releasing`` / ``settling``: the core's release / settle (again: the core refuses a
  repeat with ``unknown_withdrawal``, the fee credit with ``duplicate_deposit``);
- ``approved``: unless the account was frozen meanwhile (then it waits), build the
  transaction (nonce, gas, chain id; on Bitcoin the coins it spends, the change and the
  fee, ADR 0029) and store it with the status ``signing`` BEFORE asking for a
  signature, so every retry signs the same transaction. A Bitcoin payout never spends
  a coin that another payout's stored transaction spends while that payout is not
  finished (``signing`` to ``settling``): the coins of saved-but-unconfirmed payouts
  are reserved. A hot wallet too short waits (``approved``, cancellable); a payout that
  can never be built (below dust) fails and is released;
- ``signing``: ask the signer; it stores the signed transaction (``signed``) itself.
  Signer down: try again next step. Signer refused (deterministic): ``failed``;
- ``signed``: broadcast the stored raw transaction (the same bytes every time, so a
  retry after a crash can only re-send the one transaction); taken -> ``broadcast``;
  refused by a node that does not know it -> ``failed`` and released;
- ``broadcast``: succeeded with the asset's confirmations -> ``settling`` -> settle;
  reverted and as deep -> ``failed`` and released; dropped from the node -> sent again.

Invariant: for one withdrawal there is at most one signed transaction (the signer's
compare-and-set), so whatever is killed when, at most that transaction is broadcast, and
the core sees exactly one settle or one release.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import structlog

from tradewind.services.errors import ServiceError
from tradewind.services.funding.signer import to_chain_units
from tradewind.services.funding.withdrawal_ports import (
    HotWalletShort,
    PayoutChain,
    PayoutImpossible,
    SignerClient,
    SignerRefused,
    SignerUnavailable,
    UtxoPayoutChain,
    Withdrawal,
    spent_outpoints,
)
from tradewind.services.funding.withdrawals import WithdrawalService
from tradewind.services.trading import CoreFailure

log = structlog.get_logger(__name__)

WORKING = (
    "holding",
    "releasing",
    "settling",
    "approved",
    "signing",
    "signed",
    "broadcast",
)
RESERVING = ("signing", "signed", "broadcast", "settling")
"""Statuses whose stored transaction's coins no other payout may spend."""


class CoinReservations(Protocol):
    """Coins other hot-wallet spenders hold (the sweeper's moves to cold, ADR 0035)."""

    async def reserved_outpoints(self, network: str) -> set[str]: ...


@dataclass
class StepCounts:
    held: int = 0
    signed: int = 0
    broadcast: int = 0
    confirmed: int = 0
    failed: int = 0
    released: int = 0
    waiting: int = 0


class PayoutProcessor:
    def __init__(
        self,
        service: WithdrawalService,
        chains: Mapping[str, PayoutChain | UtxoPayoutChain],
        signer: SignerClient,
        *,
        batch: int = 200,
        reservations: CoinReservations | None = None,
    ) -> None:
        self.reservations = reservations
        """Bitcoin coins unfinished custody transfers spend (set by the payout loop)."""
        self.service = service
        self.store = service.store
        self.chains = dict(chains)
        self.signer = signer
        self.batch = batch
        self._senders: dict[str, str] = {}

    async def step(self) -> StepCounts:
        counts = StepCounts()
        for w in await self.store.list_by_status(WORKING, limit=self.batch):
            try:
                await self._advance(w, counts)
            except HotWalletShort as exc:
                counts.waiting += 1
                log.warning("payout waits for hot-wallet funds", withdrawal=w.id, error=str(exc))
            except (SignerUnavailable, CoreFailure, OSError) as exc:
                counts.waiting += 1
                log.warning(
                    "payout step postponed", withdrawal=w.id, status=w.status, error=str(exc)
                )
            except Exception:  # e.g. a network the signer has no key for: the others go on
                counts.waiting += 1
                log.exception("payout step failed", withdrawal=w.id, status=w.status)
        return counts

    async def _advance(self, w: Withdrawal, counts: StepCounts) -> None:
        s = self.service
        if w.status == "holding":
            try:
                await s.hold(w)
                counts.held += 1
            except ServiceError:
                pass  # refused by the core: stored as such
            return
        if w.status == "releasing":
            if await s.release(w):
                counts.released += 1
            return
        if w.status == "settling":
            if await s.settle(w):
                counts.confirmed += 1
            return
        chain = self.chains.get(w.network)
        if chain is None:
            counts.waiting += 1
            return
        if w.status == "approved":
            if not await s.payable(w):  # frozen since it was approved: not paid out
                counts.waiting += 1
                return
            if isinstance(chain, UtxoPayoutChain):
                if not await self._fix_utxo_tx(w, chain):
                    counts.failed += 1
                    return
            else:
                await self._fix_tx(w, chain)
            w = await s.get_any(w.id)
        if w.status == "signing":
            if not await self._sign(w):
                counts.failed += 1
                return
            counts.signed += 1
            w = await s.get_any(w.id)
        if w.status == "signed":
            if not await self._broadcast(w, chain):
                counts.failed += 1
                return
            counts.broadcast += 1
            w = await s.get_any(w.id)
        if w.status == "broadcast":
            await self._confirm(w, chain, counts)

    async def _sender(self, network: str) -> str:
        sender = self._senders.get(network)
        if sender is None:
            sender = await self.signer.address(network)
            self._senders[network] = sender
        return sender

    async def _fix_utxo_tx(self, w: Withdrawal, chain: UtxoPayoutChain) -> bool:
        """Fix a Bitcoin payout's transaction (``approved -> signing``); ``False`` when it
        can never be built (failed and released)."""
        rules = self.service.catalog.asset_on(w.asset, w.network)
        assert rules is not None
        sender = await self._sender(w.network)
        busy = await self.store.list_by_status(RESERVING, limit=100_000, network=w.network)
        reserved = {op for b in busy for op in spent_outpoints(b.tx)}
        if self.reservations is not None:
            reserved |= await self.reservations.reserved_outpoints(w.network)
        value = to_chain_units(w.net_amount, rules.decimals, rules.chain_decimals)
        try:
            tx = await chain.build_spend(sender, w.address, value, reserved)
        except PayoutImpossible as exc:
            await self._fail(w, ("approved",), f"cannot be paid: {exc}")
            return False
        inputs = tx.get("inputs")
        count = len(inputs) if isinstance(inputs, list) else 0
        await self.service.move(
            w,
            ("approved",),
            "signing",
            note=f"transaction fixed spending {count} coins at {tx.get('fee_rate')} sat/kvB",
            tx=json.dumps(dict(tx), sort_keys=True, separators=(",", ":")),
            sender=sender,
        )
        return True

    async def _fix_tx(self, w: Withdrawal, chain: PayoutChain) -> None:
        rules = self.service.catalog.asset_on(w.asset, w.network)
        assert rules is not None
        sender = await self._sender(w.network)
        highest = await self.store.highest_nonce(w.network, sender)
        tx = await chain.build(
            sender,
            w.address,
            rules.contract,
            to_chain_units(w.net_amount, rules.decimals, rules.chain_decimals),
            0 if highest is None else highest + 1,
        )
        nonce = tx.get("nonce")
        await self.service.move(
            w,
            ("approved",),
            "signing",
            note=f"transaction fixed with nonce {nonce}",
            tx=json.dumps(dict(tx), sort_keys=True, separators=(",", ":")),
            sender=sender,
            nonce=nonce,
        )

    async def _sign(self, w: Withdrawal) -> bool:
        assert w.tx is not None
        try:
            await self.signer.sign(w.id, w.network, json.loads(w.tx))
            return True
        except SignerRefused as exc:
            fresh = await self.service.get_any(w.id)
            if fresh.status != "signing":  # signed (or cancelled) meanwhile: not a failure
                return fresh.status == "signed"
            await self._fail(w, ("signing",), f"signer refused: {exc.code}: {exc.message}")
            return False

    async def _broadcast(self, w: Withdrawal, chain: PayoutChain | UtxoPayoutChain) -> bool:
        assert w.raw_tx is not None
        refused = await chain.broadcast(w.raw_tx)
        if refused is None:
            await self.service.move(w, ("signed",), "broadcast", note=w.txid)
            return True
        await self._fail(w, ("signed",), f"broadcast refused: {refused}")
        return False

    async def _confirm(
        self, w: Withdrawal, chain: PayoutChain | UtxoPayoutChain, counts: StepCounts
    ) -> None:
        assert w.txid is not None and w.raw_tx is not None
        rules = self.service.catalog.asset_on(w.asset, w.network)
        assert rules is not None
        state = await chain.state(w.txid)
        if state.state == "unknown":  # dropped by the node (or a reorg): the same bytes again
            refused = await chain.broadcast(w.raw_tx)
            if refused is not None:
                log.warning("payout re-broadcast refused", withdrawal=w.id, reason=refused)
            counts.waiting += 1
            return
        if state.state == "pending" or state.confirmations < rules.confirmations:
            counts.waiting += 1
            return
        if state.state == "succeeded":
            if await self.service.move(
                w,
                ("broadcast",),
                "settling",
                note=f"{state.confirmations} confirmations in block {state.block_number}",
                block_number=state.block_number,
            ):
                fresh = await self.service.get_any(w.id)
                if await self.service.settle(fresh):
                    counts.confirmed += 1
            return
        await self._fail(w, ("broadcast",), f"reverted on chain in block {state.block_number}")
        counts.failed += 1

    async def _fail(self, w: Withdrawal, from_statuses: tuple[str, ...], reason: str) -> None:
        if await self.service.move(
            w, from_statuses, "releasing", reason=reason, final_status="failed"
        ):
            await self.service.release(await self.service.get_any(w.id))
        log.error("payout failed", withdrawal=w.id, reason=reason)
