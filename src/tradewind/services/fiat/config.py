"""The ``[fiat]`` table of the config file: which core assets are fiat currencies, the
exchange's bank account shown in deposit instructions, and the card processor's keys.

```toml
[fiat]
currencies = { EUR = 2, USD = 2 }   # core assets and their decimals
require_kyc = true                  # deposit instructions and card deposits need KYC level 2

[fiat.bank]
iban = "DE89370400440532013000"
bic = "COBADEFFXXX"
beneficiary = "Tradewind Ltd"

[fiat.stripe]                        # optional: card deposits
secret_key = "sk_live_..."
webhook_secret = "whsec_..."
tolerance_s = 300                    # oldest webhook signature accepted
max_amount = "10000"                 # per card deposit, in currency units
```

Invariants: unknown keys are refused and every error names its key
(``fiat.bank.iban: ...``); the IBAN and BIC are validated like any payee's; secrets are
never part of an error message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from tradewind.services.errors import ServiceError
from tradewind.services.fiat.bank_ids import validate_bic, validate_iban
from tradewind.services.funding.networks import parse_amount

_CURRENCY = re.compile(r"[A-Z]{3}")


class FiatConfigError(ValueError):
    """A wrong ``[fiat]`` table; the message names the key."""


@dataclass(frozen=True, slots=True)
class BankAccount:
    iban: str
    bic: str
    beneficiary: str


@dataclass(frozen=True, slots=True)
class StripeSettings:
    secret_key: str
    webhook_secret: str
    tolerance_s: int = 300
    max_amount_units: int = 10_000
    api_base: str | None = None
    """Only for tests: a loopback fake of the API (never a real host other than Stripe's)."""

    def __repr__(self) -> str:  # keys never reach a log line
        return f"StripeSettings(tolerance_s={self.tolerance_s}, api_base={self.api_base!r})"


@dataclass(frozen=True, slots=True)
class FiatWithdrawalTerms:
    """``[fiat.withdrawals]``: decimal strings in each currency's units, the same for
    every fiat currency (checked against each one's decimals)."""

    fee: str = "0"
    minimum: str = "1"
    auto_approve_below: str = "0"
    """``0``: compliance reviews every fiat withdrawal."""
    two_person_above: str | None = None


@dataclass(frozen=True, slots=True)
class FiatConfig:
    currencies: Mapping[str, int]
    """Fiat core asset -> its decimals in the core."""
    bank: BankAccount
    stripe: StripeSettings | None = None
    require_kyc: bool = True
    withdrawals: FiatWithdrawalTerms = FiatWithdrawalTerms()


def _withdrawal_terms(raw: object, currencies: Mapping[str, int]) -> FiatWithdrawalTerms:
    if raw is None:
        return FiatWithdrawalTerms()
    where = "fiat.withdrawals"
    if not isinstance(raw, Mapping):
        raise FiatConfigError(f"{where}: must be a table")
    keys = {"fee", "minimum", "auto_approve_below", "two_person_above"}
    _only(raw, keys, where)
    values: dict[str, str] = {}
    for key in sorted(keys & set(raw)):
        text = raw[key]
        if not isinstance(text, str):
            raise FiatConfigError(f'{where}.{key}: a decimal string such as "10.50"')
        for currency, decimals in currencies.items():
            try:
                parse_amount(text, decimals)
            except ValueError as exc:
                raise FiatConfigError(f"{where}.{key}: {exc} ({currency})") from None
        values[key] = text.strip()
    return FiatWithdrawalTerms(**values)


def _str(table: Mapping[str, object], key: str, where: str, max_len: int = 140) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise FiatConfigError(f"{where}.{key}: expected a non-empty string")
    return value.strip()


def _only(table: Mapping[str, object], keys: set[str], where: str) -> None:
    unknown = sorted(set(table) - keys)
    if unknown:
        raise FiatConfigError(f"{where}: unknown key {unknown[0]!r}")


def parse_fiat(table: Mapping[str, object]) -> FiatConfig:
    if not isinstance(table, Mapping):
        raise FiatConfigError("fiat: must be a table")
    _only(table, {"currencies", "bank", "stripe", "require_kyc", "withdrawals"}, "fiat")
    raw = table.get("currencies")
    if not isinstance(raw, Mapping) or not raw:
        raise FiatConfigError("fiat.currencies: a table of currency = decimals, e.g. { EUR = 2 }")
    currencies: dict[str, int] = {}
    for name, decimals in raw.items():
        if not _CURRENCY.fullmatch(str(name)):
            raise FiatConfigError(f"fiat.currencies.{name}: an ISO 4217 code (3 capitals)")
        if isinstance(decimals, bool) or not isinstance(decimals, int) or not 0 <= decimals <= 6:
            raise FiatConfigError(f"fiat.currencies.{name}: decimals from 0 to 6")
        currencies[str(name)] = decimals
    bank_raw = table.get("bank")
    if not isinstance(bank_raw, Mapping):
        raise FiatConfigError("fiat.bank: a table with iban, bic and beneficiary")
    _only(bank_raw, {"iban", "bic", "beneficiary"}, "fiat.bank")
    try:
        iban = validate_iban(_str(bank_raw, "iban", "fiat.bank"))
        bic = validate_bic(_str(bank_raw, "bic", "fiat.bank"))
    except ServiceError as exc:
        raise FiatConfigError(f"fiat.bank: {exc.message}") from None
    bank = BankAccount(iban, bic, _str(bank_raw, "beneficiary", "fiat.bank", 70))
    stripe: StripeSettings | None = None
    stripe_raw = table.get("stripe")
    if stripe_raw is not None:
        if not isinstance(stripe_raw, Mapping):
            raise FiatConfigError("fiat.stripe: must be a table")
        where = "fiat.stripe"
        _only(
            stripe_raw,
            {"secret_key", "webhook_secret", "tolerance_s", "max_amount", "api_base"},
            where,
        )
        tolerance = stripe_raw.get("tolerance_s", 300)
        if isinstance(tolerance, bool) or not isinstance(tolerance, int):
            raise FiatConfigError(f"{where}.tolerance_s: seconds from 10 to 3600")
        if not 10 <= tolerance <= 3600:
            raise FiatConfigError(f"{where}.tolerance_s: seconds from 10 to 3600")
        max_amount = stripe_raw.get("max_amount", "10000")
        if not isinstance(max_amount, str) or not max_amount.isdigit() or int(max_amount) < 1:
            raise FiatConfigError(f"{where}.max_amount: whole currency units as a string")
        api_base = stripe_raw.get("api_base")
        if api_base is not None and not isinstance(api_base, str):
            raise FiatConfigError(f"{where}.api_base: a URL")
        stripe = StripeSettings(
            _str(stripe_raw, "secret_key", where, 256),
            _str(stripe_raw, "webhook_secret", where, 256),
            tolerance,
            int(max_amount),
            api_base,
        )
    require_kyc = table.get("require_kyc", True)
    if not isinstance(require_kyc, bool):
        raise FiatConfigError("fiat.require_kyc: true or false")
    terms = _withdrawal_terms(table.get("withdrawals"), currencies)
    return FiatConfig(currencies, bank, stripe, require_kyc, terms)


def demo_fiat() -> FiatConfig:
    """The demo's fiat rails: EUR on a made-up account with the textbook example IBAN
    (it validates; no money can be sent to a demo), no card processor, no KYC gate."""
    return FiatConfig(
        currencies={"EUR": 2},
        bank=BankAccount("DE89370400440532013000", "COBADEFFXXX", "Tradewind Demo"),
        require_kyc=False,
    )
