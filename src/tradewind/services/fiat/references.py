"""Users' bank-transfer reference codes: ISO 11649 "RF" creditor references.

Why RF references: the two check digits (ISO 7064 mod 97-10, as in an IBAN) catch
every single mistyped digit and every swap of two neighbours in an all-digit body (a
letter becomes two digits in mod 97-10, so letters would weaken that: bodies are digits
only), so a transfer with a typo in its reference lands in the review queue instead of
on someone else's account. Banks know the format and many carry it in the structured
remittance field.

Invariants:
- a reference is ``RF`` + 2 check digits + :data:`BODY_LENGTH` random digits (16
  characters, shown in groups of four), so a reference tells nothing about the user;
- :func:`scan` looks for references in free text the way people type them (any case,
  spaces or dashes inside) and sorts candidates into valid ones and ones with a wrong
  check digit; it never guesses a correction.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

from stdnum import iso11649
from stdnum.iso7064 import mod_97_10

ALPHABET = "0123456789"
BODY_LENGTH = 12
LENGTH = 4 + BODY_LENGTH
_CANDIDATE = re.compile(rf"(?=(RF[0-9]{{2}}[0-9A-Z]{{{BODY_LENGTH}}}))")
_SEPARATORS = re.compile(r"[\s\-./:,]+")


def reference_for(body: str) -> str:
    """The RF reference with ``body`` (its check digits computed)."""
    if len(body) != BODY_LENGTH or any(c not in ALPHABET for c in body):
        raise ValueError(f"a reference body is {BODY_LENGTH} characters of {ALPHABET}")
    return "RF" + mod_97_10.calc_check_digits(body + "RF") + body


def new_reference() -> str:
    """A fresh random reference (10**12 possible bodies)."""
    return reference_for("".join(secrets.choice(ALPHABET) for _ in range(BODY_LENGTH)))


def is_valid(text: str) -> bool:
    """``text`` (compact, upper case) is an RF reference of our length with good check
    digits."""
    return len(text) == LENGTH and iso11649.is_valid(text)


def display(reference: str) -> str:
    """Groups of four, as printed on a transfer form: ``RF12 3456 7890 ABCD``."""
    return " ".join(reference[i : i + 4] for i in range(0, len(reference), 4))


@dataclass(frozen=True, slots=True)
class Scan:
    valid: tuple[str, ...]
    """Distinct references with good check digits, in the order found."""
    invalid: tuple[str, ...]
    """Reference-shaped strings whose check digits do not match (typos)."""


def scan(texts: Iterable[str]) -> Scan:
    """Every reference-shaped string in ``texts`` (remittance information), found after
    upper-casing and removing spaces and separators."""
    valid: list[str] = []
    invalid: list[str] = []
    for text in texts:
        compact = _SEPARATORS.sub("", text.upper())
        for match in _CANDIDATE.finditer(compact):
            candidate = match.group(1)
            bucket = valid if iso11649.is_valid(candidate) else invalid
            if candidate not in bucket:
                bucket.append(candidate)
    return Scan(tuple(valid), tuple(c for c in invalid if c not in valid))
