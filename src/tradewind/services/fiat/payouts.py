"""Approved fiat payouts, checked before they become a payment file (pain.001).

Invariants:
- the payee's IBAN passes the mod-97 check and its country's structure, a BIC (when
  given) the ISO 9362 shape; a payout with either wrong is refused, never "fixed";
- the amount is a ``Decimal`` at this edge, positive, with no more decimals than the
  currency has (2 unless :data:`CURRENCY_DECIMALS` says otherwise), never a float;
- texts are what SEPA lets through: names up to 70 characters, remittance up to 140,
  ids up to 35 of ``A-Z a-z 0-9 / - ? : ( ) . , ' +`` and space; no control characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import ClassVar

from tradewind.services.errors import ServiceError
from tradewind.services.fiat.bank_ids import validate_bic, validate_iban

CURRENCY_DECIMALS: dict[str, int] = {"JPY": 0, "KRW": 0, "BHD": 3, "KWD": 3, "JOD": 3}
_ID = re.compile(r"[A-Za-z0-9/\-?:().,'+ ]{1,35}")
_CURRENCY = re.compile(r"[A-Z]{3}")


class InvalidPayout(ServiceError):
    code: ClassVar[str] = "invalid_payout"
    status_hint: ClassVar[int] = 400
    default_message: ClassVar[str] = "the payout is not valid"


def currency_decimals(currency: str) -> int:
    return CURRENCY_DECIMALS.get(currency, 2)


@dataclass(frozen=True, slots=True)
class Payout:
    end_to_end_id: str
    name: str
    iban: str
    amount: Decimal
    currency: str
    bic: str | None = None
    remittance: str | None = None


def _text(value: object, field: str, max_len: int, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidPayout(f"{where}.{field}: a non-empty string")
    text = value.strip()
    if len(text) > max_len or not text.isprintable():
        raise InvalidPayout(f"{where}.{field}: at most {max_len} printable characters")
    return text


def amount_of(value: object, currency: str, where: str) -> Decimal:
    if isinstance(value, (float, bool)):
        raise InvalidPayout(f'{where}.amount: a decimal string such as "10.50", not a float')
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise InvalidPayout(f"{where}.amount: not a decimal number") from None
    if not amount.is_finite() or amount <= 0:
        raise InvalidPayout(f"{where}.amount: must be greater than zero")
    decimals = currency_decimals(currency)
    exponent = amount.normalize().as_tuple().exponent
    assert isinstance(exponent, int)  # finite
    if -exponent > decimals:
        raise InvalidPayout(f"{where}.amount: {currency} has {decimals} decimals")
    if amount >= Decimal(10) ** 15:
        raise InvalidPayout(f"{where}.amount: too large")
    return amount.quantize(Decimal(1).scaleb(-decimals))


def payout_from(item: Mapping[str, object], where: str = "payout") -> Payout:
    """A checked payout from a JSON object (``id``, ``name``, ``iban``, ``amount``,
    ``currency``, optional ``bic`` and ``remittance``)."""
    if not isinstance(item, Mapping):
        raise InvalidPayout(f"{where}: an object")
    unknown = sorted(set(item) - {"id", "name", "iban", "bic", "amount", "currency", "remittance"})
    if unknown:
        raise InvalidPayout(f"{where}: unknown field {unknown[0]!r}")
    pid = item.get("id")
    if not isinstance(pid, str) or not _ID.fullmatch(pid):
        raise InvalidPayout(f"{where}.id: 1-35 characters of the SEPA set")
    currency = item.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise InvalidPayout(f"{where}.currency: an ISO 4217 code such as EUR")
    try:
        iban = validate_iban(item.get("iban"))
        raw_bic = item.get("bic")
        bic = None if raw_bic is None else validate_bic(raw_bic)
    except ServiceError as exc:
        raise type(exc)(f"{where}: {exc.message}") from None
    remittance = item.get("remittance")
    return Payout(
        end_to_end_id=pid,
        name=_text(item.get("name"), "name", 70, where),
        iban=iban,
        amount=amount_of(item.get("amount"), currency, where),
        currency=currency,
        bic=bic,
        remittance=None if remittance is None else _text(remittance, "remittance", 140, where),
    )


def payouts_from(items: Sequence[object]) -> list[Payout]:
    """Every payout checked; the first bad one refuses the whole list (by index)."""
    out: list[Payout] = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidPayout(f"payouts[{i}]: an object")
        payout = payout_from(item, f"payouts[{i}]")
        if payout.end_to_end_id in seen:
            raise InvalidPayout(f"payouts[{i}].id: {payout.end_to_end_id!r} is used twice")
        seen.add(payout.end_to_end_id)
        out.append(payout)
    if not out:
        raise InvalidPayout("no payouts")
    return out
