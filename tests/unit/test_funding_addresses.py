"""Address validation per network: a withdrawal or a token contract is accepted only
with a valid checksum and on its own chain, each refusal with its own code."""

from __future__ import annotations

import pytest

from tradewind.services.funding.addresses import (
    _BECH32,
    AddressChecksumMismatch,
    AddressWrongNetwork,
    InvalidAddress,
    _convertbits,
    _hrp_expand,
    _polymod,
    b58decode_check,
    b58encode_check,
    segwit_decode,
    segwit_encode,
    validate_address,
)
from tradewind.services.funding.networks import Network


def net(name: str, chain: str = "mainnet") -> Network:
    kind = "utxo" if name == "bitcoin" else "evm"
    return Network(name, kind, chain, None if kind == "utxo" else 1, None, ())


BITCOIN = net("bitcoin")
TESTNET = net("bitcoin", "testnet")
REGTEST = net("bitcoin", "regtest")
ETHEREUM = net("ethereum")
BSC = net("bsc")

EIP55_VECTORS = [
    "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
    "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359",
    "0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB",
    "0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb",
]


@pytest.mark.parametrize("address", EIP55_VECTORS)
@pytest.mark.parametrize("network", [ETHEREUM, BSC])
def test_eip55_vectors_are_accepted_as_given(address: str, network: Network) -> None:
    assert validate_address(network, address) == address


@pytest.mark.parametrize("address", EIP55_VECTORS)
def test_single_case_evm_addresses_carry_no_checksum_and_come_back_checksummed(
    address: str,
) -> None:
    assert validate_address(ETHEREUM, address.lower()) == address
    assert validate_address(ETHEREUM, "0x" + address[2:].upper()) == address


@pytest.mark.parametrize("address", EIP55_VECTORS)
def test_a_mistyped_case_is_a_checksum_mismatch(address: str) -> None:
    body = address[2:]
    i = next(i for i, c in enumerate(body) if c.isalpha())
    flipped = body[:i] + body[i].swapcase() + body[i + 1 :]
    with pytest.raises(AddressChecksumMismatch) as exc:
        validate_address(ETHEREUM, "0x" + flipped)
    assert exc.value.code == "address_checksum_mismatch"
    assert "ethereum" in exc.value.message


@pytest.mark.parametrize(
    "text",
    [
        "",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAe",  # 39 digits
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAedd",
        "5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed00",
        "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeg",
        " 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed",
        "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa",
    ],
)
def test_malformed_evm_addresses_are_invalid(text: str) -> None:
    with pytest.raises(InvalidAddress) as exc:
        validate_address(ETHEREUM, text)
    assert exc.value.code == "invalid_address"


@pytest.mark.parametrize(
    ("network", "address"),
    [
        (BITCOIN, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNa"),  # P2PKH (the genesis block's)
        (BITCOIN, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy"),  # P2SH
        (TESTNET, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"),
        (TESTNET, "2MzQwSSnBHWHqSAqtTVQ6v47XtaisrJa1Vc"),
        (REGTEST, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn"),
    ],
)
def test_base58check_addresses_of_the_chain_are_accepted(network: Network, address: str) -> None:
    assert validate_address(network, address) == address


def test_a_mistyped_base58_address_is_a_checksum_mismatch() -> None:
    with pytest.raises(AddressChecksumMismatch):
        validate_address(BITCOIN, "1A1zP1eP5QGefi2DMPTfTL5SLmv7DivfNb")


def test_base58_addresses_of_the_other_chain_are_refused() -> None:
    with pytest.raises(AddressWrongNetwork) as exc:
        validate_address(BITCOIN, "mipcBbFg9gMiCh81Kj8tqqdgoZub1ZJRfn")
    assert exc.value.code == "address_wrong_network"
    with pytest.raises(AddressWrongNetwork):
        validate_address(TESTNET, "3J98t1WpEZ73CNmQviecrnyiWrnqRhWNLy")


def test_base58_characters_outside_the_alphabet_are_invalid() -> None:
    with pytest.raises(InvalidAddress):
        validate_address(BITCOIN, "1A1zP1eP5QGefi2DMPTfTL5SLmv7Div0Na")  # 0 is not base58


def test_base58check_round_trip_keeps_leading_zero_bytes() -> None:
    payload = b"\x00\x00" + bytes(range(19))
    assert b58decode_check(b58encode_check(payload)) == payload


@pytest.mark.parametrize(
    ("network", "address"),
    [
        # BIP 173 vectors (v0, bech32), upper case accepted and returned lower case
        (BITCOIN, "BC1QW508D6QEJXTDG4Y5R3ZARVARY0C5XW7KV8F3T4"),
        (TESTNET, "tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7"),
        # BIP 350 vector (v1 taproot, bech32m)
        (BITCOIN, "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0"),
    ],
)
def test_segwit_vectors_are_accepted(network: Network, address: str) -> None:
    assert validate_address(network, address) == address.lower()


def test_regtest_uses_its_own_prefix() -> None:
    program = bytes(range(20))
    address = segwit_encode("bcrt", 0, program)
    assert validate_address(REGTEST, address) == address
    with pytest.raises(AddressWrongNetwork):
        validate_address(TESTNET, address)
    with pytest.raises(AddressWrongNetwork):
        validate_address(BITCOIN, segwit_encode("tb", 0, program))


def test_a_mistyped_segwit_address_is_a_checksum_mismatch() -> None:
    with pytest.raises(AddressChecksumMismatch):
        validate_address(BITCOIN, "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t5")


def test_mixed_case_bech32_is_invalid() -> None:
    with pytest.raises(InvalidAddress):
        validate_address(BITCOIN, "bc1qW508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4")


def _encode_with(hrp: str, version: int, program: bytes, const: int) -> str:
    data = [version, *(_convertbits(list(program), 8, 5, True) or [])]
    poly = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ const
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in data + checksum)


def test_the_checksum_variant_must_match_the_witness_version() -> None:
    program = bytes(range(32))
    v1_with_bech32 = _encode_with("bc", 1, program, 1)
    v0_with_bech32m = _encode_with("bc", 0, program, 0x2BC830A3)
    for address in (v1_with_bech32, v0_with_bech32m):
        with pytest.raises(AddressChecksumMismatch):
            validate_address(BITCOIN, address)


def test_segwit_encode_and_decode_round_trip() -> None:
    for version, program in ((0, bytes(20)), (0, bytes(range(32))), (1, bytes(range(32)))):
        assert segwit_decode(segwit_encode("tb", version, program)) == ("tb", version, program)


def test_evm_address_on_bitcoin_is_invalid() -> None:
    with pytest.raises(InvalidAddress):
        validate_address(BITCOIN, EIP55_VECTORS[0])
