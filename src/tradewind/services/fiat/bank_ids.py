"""IBAN and BIC validation (ISO 13616 and ISO 9362) with stable error codes.

Why strict: a payout to a mistyped IBAN is, at best, returned days later; at worst it
reaches a stranger. An IBAN is accepted only with good mod-97 check digits and the
structure its country registers (python-stdnum's IBAN registry), a BIC only with the
ISO 9362 shape and a real country code. Both come back compact and upper case.
"""

from __future__ import annotations

import re
from typing import ClassVar

from stdnum import bic as std_bic
from stdnum import iban as std_iban
from stdnum.exceptions import InvalidChecksum, ValidationError

from tradewind.services.errors import ServiceError

_IBAN_SHAPE = re.compile(r"[A-Z]{2}[0-9]{2}[A-Z0-9]{11,30}")


class InvalidIban(ServiceError):
    code: ClassVar[str] = "invalid_iban"
    status_hint: ClassVar[int] = 400
    default_message: ClassVar[str] = "not a valid IBAN"


class IbanChecksumMismatch(InvalidIban):
    code = "iban_checksum_mismatch"
    default_message = "the IBAN's check digits do not match: it was probably mistyped"


class InvalidBic(ServiceError):
    code = "invalid_bic"
    status_hint = 400
    default_message = "not a valid BIC (4 letters, country, 2 characters, optional branch)"


def compact(text: str) -> str:
    return re.sub(r"[\s\-]+", "", text).upper()


def validate_iban(text: object) -> str:
    """The compact IBAN, or :class:`InvalidIban` / :class:`IbanChecksumMismatch`."""
    if not isinstance(text, str) or len(text) > 64:
        raise InvalidIban()
    number = compact(text)
    if not _IBAN_SHAPE.fullmatch(number):
        raise InvalidIban("an IBAN is a country code, 2 check digits and 11-30 letters/digits")
    # structure first (country, length, BBAN format): with the right check digits put
    # in, does it validate? Only then is a failing original a checksum mismatch.
    fixed = number[:2] + std_iban.calc_check_digits(number) + number[4:]
    try:
        std_iban.validate(fixed)
    except ValidationError as exc:
        raise InvalidIban(f"not a valid IBAN of {number[:2]}: {exc}") from None
    try:
        return str(std_iban.validate(number))
    except InvalidChecksum:
        raise IbanChecksumMismatch() from None
    except ValidationError as exc:
        raise InvalidIban(f"not a valid IBAN of {number[:2]}: {exc}") from None


def validate_bic(text: object) -> str:
    if not isinstance(text, str) or len(text) > 16:
        raise InvalidBic()
    try:
        return str(std_bic.validate(text))
    except ValidationError:
        raise InvalidBic() from None
