"""Users' RF references catch typos; IBANs and BICs are checked before money moves."""

from __future__ import annotations

import pytest

from tradewind.services.fiat import references
from tradewind.services.fiat.bank_ids import (
    IbanChecksumMismatch,
    InvalidBic,
    InvalidIban,
    validate_bic,
    validate_iban,
)


def test_a_new_reference_is_a_valid_rf_reference_of_fixed_length() -> None:
    seen = {references.new_reference() for _ in range(200)}
    assert len(seen) == 200  # random bodies
    for ref in seen:
        assert len(ref) == references.LENGTH and ref.startswith("RF")
        assert references.is_valid(ref)
    # the published ISO 11649 example
    assert references.reference_for("539007547034") == "RF18539007547034"
    assert references.display("RF18539007547034") == "RF18 5390 0754 7034"


def test_every_mistyped_digit_and_swap_of_neighbours_is_caught() -> None:
    for ref in [references.reference_for("503917204866"), references.new_reference()]:
        for i in range(2, len(ref)):
            for c in references.ALPHABET:
                if c != ref[i]:
                    typo = ref[:i] + c + ref[i + 1 :]
                    assert not references.is_valid(typo), typo
        for i in range(4, len(ref) - 1):
            swapped = ref[:i] + ref[i + 1] + ref[i] + ref[i + 2 :]
            assert swapped == ref or not references.is_valid(swapped), swapped


def test_references_are_found_as_people_type_them() -> None:
    ref = references.reference_for("503917204866")
    spaced = references.display(ref).lower()
    found = references.scan([f"payment for {spaced} thanks", "invoice 2026/11"])
    assert found.valid == (ref,) and found.invalid == ()
    typo = ref[:-1] + ("0" if ref[-1] != "0" else "1")
    found = references.scan([f"ref {typo}"])
    assert found.valid == () and found.invalid == (typo,)
    assert references.scan(["no reference at all"]).valid == ()
    other = references.reference_for("111122223333")
    both = references.scan([ref, f"and {other}"])
    assert both.valid == (ref, other)


@pytest.mark.parametrize(
    "text",
    ["DE89370400440532013000", "de89 3704 0044 0532 0130 00", "GB29NWBK60161331926819"],
)
def test_valid_ibans_come_back_compact(text: str) -> None:
    assert validate_iban(text) == text.replace(" ", "").upper()


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("DE88370400440532013000", IbanChecksumMismatch),  # check digits off by one
        ("DE89370400440532013001", IbanChecksumMismatch),  # last digit mistyped
        ("DE8937040044053201300", InvalidIban),  # a digit dropped: wrong length for DE
        ("XX89370400440532013000", InvalidIban),  # no such country
        ("not an iban", InvalidIban),
        ("", InvalidIban),
    ],
)
def test_wrong_ibans_are_refused_with_a_precise_code(text: str, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        validate_iban(text)
    assert type(caught.value) is error


def test_bic_shape_and_country_are_checked() -> None:
    assert validate_bic("cobadeffxxx") == "COBADEFFXXX"
    assert validate_bic("NWBKGB2L") == "NWBKGB2L"
    for bad in ("COBADEFF1", "COBAXXFF", "COB1DEFF", "", "COBADEFFXXXX"):
        with pytest.raises(InvalidBic):
            validate_bic(bad)
