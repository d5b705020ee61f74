"""A bank transfer's reference, typed with any spacing, case and surrounding text, is
found; with any one digit mistyped or two neighbours swapped it never passes as valid
(so it can never match another user): it goes to review instead."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tradewind.services.fiat import references

bodies = st.text(alphabet="0123456789", min_size=12, max_size=12)
noise = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 .,:/-", max_size=40)


@given(body=bodies, before=noise, after=noise, spacing=st.sampled_from(["", " ", "-", "  "]))
def test_a_reference_is_found_however_it_is_typed(
    body: str, before: str, after: str, spacing: str
) -> None:
    ref = references.reference_for(body)
    typed = spacing.join(ref[i : i + 4] for i in range(0, len(ref), 4)).lower()
    found = references.scan([f"{before} {typed} {after}"])
    assert ref in found.valid


@given(body=bodies, position=st.integers(2, 15), digit=st.sampled_from("0123456789"))
def test_one_mistyped_digit_never_passes(body: str, position: int, digit: str) -> None:
    ref = references.reference_for(body)
    typo = ref[:position] + digit + ref[position + 1 :]
    if typo != ref:
        assert not references.is_valid(typo)
        assert typo not in references.scan([typo]).valid


@given(body=bodies, position=st.integers(2, 14))
def test_two_swapped_neighbours_never_pass(body: str, position: int) -> None:
    ref = references.reference_for(body)
    swapped = ref[:position] + ref[position + 1] + ref[position] + ref[position + 2 :]
    if swapped != ref:
        assert not references.is_valid(swapped)
