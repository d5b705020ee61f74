"""Typos in an address are caught, whatever the address: a mistyped withdrawal address
must be refused, never sent to. Bech32 detects any one or two substituted characters
(BIP 173 guarantees up to four), base58check's 32-bit checksum any one substitution
here, and EIP-55 a flipped letter case; every valid address round-trips unchanged."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tradewind.services.funding.addresses import (
    _B58,
    _BECH32,
    AddressError,
    AddressWrongNetwork,
    b58encode_check,
    eip55,
    segwit_encode,
    validate_address,
)
from tradewind.services.funding.networks import Network

BITCOIN = Network("bitcoin", "utxo", "mainnet", None, None, ())
ETHEREUM = Network("ethereum", "evm", "mainnet", 1, None, ())

programs = st.one_of(
    st.tuples(st.just(0), st.binary(min_size=20, max_size=20)),
    st.tuples(st.just(0), st.binary(min_size=32, max_size=32)),
    st.tuples(st.integers(1, 16), st.binary(min_size=2, max_size=40)),
)


@settings(max_examples=300, deadline=None)
@given(programs, st.data())
def test_segwit_substitutions_are_refused(program: tuple[int, bytes], data: st.DataObject) -> None:
    version, witness = program
    address = segwit_encode("bc", version, witness)
    assert validate_address(BITCOIN, address) == address
    body = len("bc1")
    positions = data.draw(
        st.lists(st.integers(body, len(address) - 1), min_size=1, max_size=2, unique=True)
    )
    typo = list(address)
    for i in positions:
        typo[i] = data.draw(st.sampled_from([c for c in _BECH32 if c != address[i]]))
    with pytest.raises(AddressError) as exc:
        validate_address(BITCOIN, "".join(typo))
    assert not isinstance(exc.value, AddressWrongNetwork)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([0x00, 0x05]), st.binary(min_size=20, max_size=20), st.data())
def test_base58_substitutions_are_refused(version: int, h: bytes, data: st.DataObject) -> None:
    address = b58encode_check(bytes([version]) + h)
    assert validate_address(BITCOIN, address) == address
    i = data.draw(st.integers(1, len(address) - 1))
    typo = address[:i] + data.draw(st.sampled_from(_B58.replace(address[i], ""))) + address[i + 1 :]
    with pytest.raises(AddressError):
        validate_address(BITCOIN, typo)


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=20, max_size=20), st.data())
def test_eip55_case_flips_are_refused(raw: bytes, data: st.DataObject) -> None:
    address = eip55(raw.hex())
    assert validate_address(ETHEREUM, address) == address
    letters = [i for i, c in enumerate(address) if i >= 2 and c.isalpha()]
    body = address[2:]
    if not letters or body in (body.lower(), body.upper()):
        return  # no letters to flip, or flipping one cannot make mixed case
    i = data.draw(st.sampled_from(letters))
    typo = address[:i] + address[i].swapcase() + address[i + 1 :]
    if typo[2:] in (typo[2:].lower(), typo[2:].upper()):
        return  # the flip made it single-case: no checksum to check (EIP-55)
    with pytest.raises(AddressError) as exc:
        validate_address(ETHEREUM, typo)
    assert exc.value.code == "address_checksum_mismatch"
