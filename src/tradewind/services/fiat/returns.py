"""Returned bank transfers as payouts: what the review queue decided to send back
becomes a pain.001 payment file to the payer's account.

Invariants:
- only lines in ``returned`` are taken, each at most once: after the file is written
  they move to ``return_sent`` (compare-and-set), so a second run does not pay again;
- the payout is exactly the amount received (a decimal the currency can carry), to the
  IBAN and name the bank reported for the payer; a line without a payer IBAN, or whose
  amount the currency cannot carry, is left in ``returned`` with a reason for a person;
- the file's message id is derived from the lines it pays (``RET-`` + a hash), so a
  file regenerated after a crash between writing and marking carries the same id, which
  banks refuse as a duplicate instead of paying twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from tradewind.services.errors import ServiceError
from tradewind.services.fiat.payouts import Payout, payout_from
from tradewind.services.fiat.ports import FiatLine


@dataclass(frozen=True, slots=True)
class ReturnBatch:
    payouts: tuple[Payout, ...]
    line_ids: tuple[int, ...]
    skipped: tuple[tuple[int, str], ...]
    """``(line id, why)`` of returned lines that cannot be paid from here."""

    @property
    def message_id(self) -> str:
        digest = hashlib.sha256(",".join(map(str, self.line_ids)).encode()).hexdigest()
        return f"RET-{digest[:24]}"


def return_batch(lines: Sequence[FiatLine]) -> ReturnBatch:
    payouts: list[Payout] = []
    ids: list[int] = []
    skipped: list[tuple[int, str]] = []
    for line in lines:
        if line.status != "returned":
            continue
        if not line.debtor_iban:
            skipped.append((line.id, "the bank reported no payer IBAN"))
            continue
        item = {
            "id": f"RET-{line.id}",
            "name": (line.debtor_name or "Payer")[:70],
            "iban": line.debtor_iban,
            "amount": line.amount_text,
            "currency": line.currency,
            "remittance": f"Return of your transfer {line.entry_ref}"[:140],
        }
        try:
            payouts.append(payout_from(item, f"line {line.id}"))
        except ServiceError as exc:
            skipped.append((line.id, exc.message))
            continue
        ids.append(line.id)
    return ReturnBatch(tuple(payouts), tuple(ids), tuple(skipped))
