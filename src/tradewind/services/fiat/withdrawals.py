"""Fiat withdrawals by bank transfer through the withdrawal workflow (issue 6 item 7,
ADR 0031's companion in docs/fiat.md).

A fiat withdrawal is an ordinary withdrawal (services/funding/withdrawals.py) on the
network ``sepa``: the destination is an IBAN from the user's own address book (cooling
off as for crypto addresses; the entry's label is the account holder's name, required),
the funds are locked in the core at once (``WithdrawHold``), approvals follow the fiat
rules below. What differs is the payout: no signer and no chain, a pain.001 payment file
the operator hands to the bank, and the bank's answer (a camt.053 debit, or the operator
confirming) settling it.

Statuses (the workflow's): ``approved`` -> ``signing`` (taken into a payment file:
no longer cancellable) -> ``broadcast`` (the file is written; ``txid`` is its message
id) -> ``settling`` (the bank paid) -> ``confirmed``, or ``broadcast`` -> ``releasing``
-> ``failed`` (the bank returned it: the funds come back).

Invariants:
- a withdrawal is in at most one payment file: the move ``approved -> signing`` is a
  compare-and-set, and a run picks up what an interrupted run left in ``signing`` and
  writes it again under the same message id (derived from the ids), which the bank
  refuses as a duplicate instead of paying twice;
- the payee is the IBAN checked (mod 97) when it entered the address book and the
  holder's name stored with the withdrawal (``memo``) at the request;
- settle and release go through the workflow's ``settle``/``release``, so the core
  applies each once (``WithdrawSettle``/``WithdrawRelease`` refuse a second time).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

import structlog

from tradewind.services.fiat.config import FiatWithdrawalTerms
from tradewind.services.fiat.payouts import Payout, payout_from
from tradewind.services.fiat.ports import Statement
from tradewind.services.funding.networks import AssetOnNetwork, parse_amount
from tradewind.services.funding.withdrawal_ports import Withdrawal
from tradewind.services.funding.withdrawals import FIAT_NETWORK, WithdrawalService

log = structlog.get_logger(__name__)
_E2E = re.compile(r"WD-([1-9][0-9]{0,18})")

__all__ = ["FIAT_NETWORK", "FiatBatch", "FiatPayouts", "fiat_withdrawal_rules", "payout_of"]


def fiat_withdrawal_rules(
    currencies: Mapping[str, int], terms: FiatWithdrawalTerms | None = None
) -> dict[str, AssetOnNetwork]:
    """The withdrawal rules of each fiat currency (``currency -> decimals``) from the
    ``[fiat.withdrawals]`` terms (checked by the config's parser). Defaults: no fee, at
    least one unit, every withdrawal reviewed by compliance, one approver."""
    t = terms or FiatWithdrawalTerms()
    rules: dict[str, AssetOnNetwork] = {}
    for currency, decimals in currencies.items():
        above = t.two_person_above
        rules[currency] = AssetOnNetwork(
            asset=currency,
            network=FIAT_NETWORK,
            decimals=decimals,
            chain_decimals=decimals,
            contract=None,
            confirmations=1,
            min_deposit=0,
            withdrawal_fee=parse_amount(t.fee, decimals),
            deposit_enabled=False,  # fiat comes in by reference (bank_deposits.py)
            withdrawal_enabled=True,
            min_withdrawal=parse_amount(t.minimum, decimals),
            auto_approve_below=parse_amount(t.auto_approve_below, decimals),
            two_person_above=None if above is None else parse_amount(above, decimals),
        )
    return rules


@dataclass(frozen=True, slots=True)
class FiatBatch:
    payouts: tuple[Payout, ...]
    withdrawal_ids: tuple[int, ...]
    skipped: tuple[tuple[int, str], ...]

    @property
    def message_id(self) -> str:
        digest = hashlib.sha256(",".join(map(str, self.withdrawal_ids)).encode()).hexdigest()
        return f"WD-{digest[:24]}"


def payout_of(w: Withdrawal, decimals: int) -> Payout:
    """The bank transfer paying ``w``: its net amount to its IBAN and holder."""
    amount = Decimal(w.net_amount).scaleb(-decimals)
    return payout_from(
        {
            "id": f"WD-{w.id}",
            "name": (w.memo or "Account holder")[:70],
            "iban": w.address,
            "amount": f"{amount:f}",
            "currency": w.asset,
            "remittance": f"Tradewind withdrawal {w.id}",
        },
        f"withdrawal {w.id}",
    )


class FiatPayouts:
    """The payment-file side of fiat withdrawals, over the workflow service."""

    def __init__(self, service: WithdrawalService, limit: int = 1000) -> None:
        self.service = service
        self._limit = limit

    def _decimals(self, w: Withdrawal) -> int:
        return self.service.rules(w.asset, FIAT_NETWORK).decimals

    async def take(self) -> FiatBatch:
        """Move every payable approved fiat withdrawal to ``signing`` (compare-and-set)
        and return them, with those an interrupted run left in ``signing``, as payouts.
        Withdrawals of frozen accounts (or while withdrawals are switched off) wait."""
        s = self.service
        store = s.store
        for w in await store.list_by_status(("approved",), limit=self._limit, network=FIAT_NETWORK):
            if await s.payable(w):
                await s.move(w, ("approved",), "signing", note="taken into a payment file")
        payouts: list[Payout] = []
        ids: list[int] = []
        skipped: list[tuple[int, str]] = []
        for w in await store.list_by_status(("signing",), limit=self._limit, network=FIAT_NETWORK):
            payouts.append(payout_of(w, self._decimals(w)))
            ids.append(w.id)
        return FiatBatch(tuple(payouts), tuple(ids), tuple(skipped))

    async def sent(self, batch: FiatBatch) -> int:
        """The file of ``batch`` is written: its withdrawals become ``broadcast`` with the
        file's message id; returns how many moved (a second call moves none)."""
        moved = 0
        for wid in batch.withdrawal_ids:
            w = await self.service.get_any(wid)
            if await self.service.move(
                w,
                ("signing",),
                "broadcast",
                note=f"in payment file {batch.message_id}",
                txid=batch.message_id,
            ):
                moved += 1
        return moved

    async def paid(self, ids: Iterable[int], note: str) -> list[int]:
        """The bank paid these (``broadcast -> settling``); the running exchange's pass
        (:meth:`finish`) settles them in the core. Returns the ids that moved."""
        return await self._answer(ids, "settling", note)

    async def returned(self, ids: Iterable[int], reason: str) -> list[int]:
        """The bank returned these (``broadcast -> releasing``, ending ``failed``): the
        funds come back when :meth:`finish` releases them."""
        return await self._answer(ids, "releasing", reason)

    async def _answer(self, ids: Iterable[int], to: str, note: str) -> list[int]:
        moved: list[int] = []
        for wid in ids:
            w = await self.service.store.get(wid)
            if w is None or w.network != FIAT_NETWORK:
                continue
            if to == "releasing":
                ok = await self.service.move(
                    w, ("broadcast",), to, reason=note, actor_role="cli", final_status="failed"
                )
            else:
                ok = await self.service.move(w, ("broadcast",), to, note=note, actor_role="cli")
            if ok:
                moved.append(wid)
        return moved

    async def paid_by_statement(self, statement: Statement) -> list[int]:
        """Mark paid the sent fiat withdrawals a bank statement shows as booked debits
        (end-to-end id ``WD-<id>``, the exact net amount and currency); anything else in
        the statement is left alone. Returns the ids that moved."""
        moved: list[int] = []
        for debit in statement.debits:
            m = _E2E.fullmatch(debit.end_to_end_id)
            if m is None:
                continue
            w = await self.service.store.get(int(m.group(1)))
            if w is None or w.network != FIAT_NETWORK or w.status != "broadcast":
                continue
            if debit.currency != w.asset or Decimal(debit.amount) != Decimal(w.net_amount).scaleb(
                -self._decimals(w)
            ):
                log.error(
                    "bank debit does not match the withdrawal",
                    withdrawal=w.id,
                    debit=f"{debit.amount} {debit.currency}",
                )
                continue
            moved += await self.paid([w.id], f"camt.053 debit {debit.entry_ref}")
        return moved

    async def finish(self) -> int:
        """Settle the paid and release the returned fiat withdrawals in the core (the
        running exchange calls this every few seconds); safe to repeat."""
        s = self.service
        done = 0
        for w in await s.store.list_by_status(
            ("settling", "releasing"), limit=self._limit, network=FIAT_NETWORK
        ):
            ok = await (s.settle(w) if w.status == "settling" else s.release(w))
            done += int(ok)
        return done
