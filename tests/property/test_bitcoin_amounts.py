"""Every satoshi amount bitcoind can print reads back as exactly that many satoshi, in
any of the JSON forms a number can take (bitcoind's 8 fixed decimals, trailing zeros
dropped, an integer, an exponent), and every amount finer than a satoshi is refused:
a deposit is credited for what the chain holds, never rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tradewind.adapters.chain.bitcoind_reader import (
    BitcoindProtocolError,
    btc_to_satoshi,
    parse_json,
)

MAX_SATS = 21_000_000 * 10**8
sats = st.integers(0, MAX_SATS)


def forms(s: int) -> list[str]:
    whole, frac = divmod(s, 10**8)
    fixed = f"{whole}.{frac:08d}"  # what bitcoind prints
    trimmed = fixed.rstrip("0").rstrip(".")
    exponent = f"{s}e-8"
    return [fixed, trimmed, exponent, f"{Decimal(s).scaleb(-8):E}"]


@given(sats)
def test_every_printed_amount_reads_back_exactly(s: int) -> None:
    for text in forms(s):
        assert btc_to_satoshi(parse_json(f'{{"value": {text}}}')["value"]) == s, text


@given(sats, st.integers(1, 9))
def test_a_ninth_decimal_is_refused(s: int, extra: int) -> None:
    text = f"{s // 10**8}.{s % 10**8:08d}{extra}"
    with pytest.raises(BitcoindProtocolError, match="more than 8 decimals"):
        btc_to_satoshi(parse_json(f'{{"value": {text}}}')["value"])
