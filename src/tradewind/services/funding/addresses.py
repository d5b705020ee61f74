"""Address validation per network, with checksums, and the canonical form of each address.

Why here and strict: a withdrawal to a mistyped address is lost for good, so an address
is accepted only when its checksum proves it was not mistyped and it belongs to the
network it is sent on (a testnet address on mainnet, or the reverse, is refused).

- EVM (``ethereum``, ``bsc``): ``0x`` and 40 hex digits; mixed case must be the EIP-55
  checksum (Keccak-256 of the lower-case hex); all-lower or all-upper case carries no
  checksum and is accepted as EIP-55 defines; the canonical form is the EIP-55 one.
- Bitcoin: base58check P2PKH/P2SH (double SHA-256 checksum, version byte of the chain)
  and segwit (BIP 173 bech32 for version 0, BIP 350 bech32m for versions 1-16, with
  the chain's prefix ``bc``, ``tb`` or ``bcrt``); the canonical form of a segwit
  address is lower case.

Every refusal is an :class:`AddressError` with a stable code: ``invalid_address`` (not
an address of this network's format), ``address_checksum_mismatch`` (the right format,
a wrong checksum: a typo), ``address_wrong_network`` (a valid address of another chain).
"""

from __future__ import annotations

import hashlib
from typing import ClassVar, Protocol

from tradewind.services.errors import ServiceError

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_B58_INDEX = {c: i for i, c in enumerate(_B58)}
_BECH32 = "qpzry9x8gf2tvdw0s3jn54khce6mua7l"
_BECH32_INDEX = {c: i for i, c in enumerate(_BECH32)}
_BECH32_CONST = 1
_BECH32M_CONST = 0x2BC830A3
_HEX = frozenset("0123456789abcdefABCDEF")

BASE58_VERSIONS: dict[str, tuple[int, int]] = {
    "mainnet": (0x00, 0x05),
    "testnet": (0x6F, 0xC4),
    "regtest": (0x6F, 0xC4),
}
"""``(P2PKH, P2SH)`` version bytes per Bitcoin chain (regtest shares testnet's)."""
SEGWIT_HRPS: dict[str, str] = {"mainnet": "bc", "testnet": "tb", "regtest": "bcrt"}


class AddressError(ServiceError):
    code: ClassVar[str] = "invalid_address"
    status_hint: ClassVar[int] = 400
    default_message: ClassVar[str] = "not a valid address for this network"


class InvalidAddress(AddressError):
    code = "invalid_address"


class AddressChecksumMismatch(AddressError):
    code = "address_checksum_mismatch"
    default_message = "the address checksum does not match: it was probably mistyped"


class AddressWrongNetwork(AddressError):
    code = "address_wrong_network"
    default_message = "the address belongs to another network or chain"


class NetworkLike(Protocol):
    """What validation needs to know of a network (see :class:`.networks.Network`)."""

    @property
    def name(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def chain(self) -> str: ...


# -- EVM ----------------------------------------------------------------------------------


def keccak256(data: bytes) -> bytes:
    from Crypto.Hash import keccak  # here: pycryptodome's cffi set-up costs start-up time

    return keccak.new(digest_bits=256, data=data).digest()


def eip55(hex40: str) -> str:
    """The EIP-55 checksummed form of 40 hex digits (any case), with ``0x``."""
    lower = hex40.lower()
    digest = keccak256(lower.encode("ascii")).hex()
    return "0x" + "".join(
        c.upper() if c.isalpha() and int(digest[i], 16) >= 8 else c for i, c in enumerate(lower)
    )


def validate_evm(text: str) -> str:
    if len(text) != 42 or text[:2] not in ("0x", "0X") or not set(text[2:]) <= _HEX:
        raise InvalidAddress("an EVM address is 0x followed by 40 hexadecimal digits")
    body = text[2:]
    canonical = eip55(body)
    if body not in (body.lower(), body.upper()) and body != canonical[2:]:
        raise AddressChecksumMismatch()
    return canonical


# -- Bitcoin: base58check -------------------------------------------------------------


def b58decode_check(text: str) -> bytes:
    """The payload (version byte included) of a base58check string; raises on a bad
    alphabet (:class:`InvalidAddress`) or checksum (:class:`AddressChecksumMismatch`)."""
    n = 0
    for c in text:
        i = _B58_INDEX.get(c)
        if i is None:
            raise InvalidAddress(f"{c!r} is not a base58 character")
        n = n * 58 + i
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    raw = b"\x00" * (len(text) - len(text.lstrip("1"))) + raw
    if len(raw) < 5:
        raise InvalidAddress("too short for a base58check address")
    payload, check = raw[:-4], raw[-4:]
    if hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] != check:
        raise AddressChecksumMismatch()
    return payload


def b58encode_check(payload: bytes) -> str:
    raw = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(raw, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    return "1" * (len(raw) - len(raw.lstrip(b"\x00"))) + out


# -- Bitcoin: bech32 / bech32m (BIP 173, BIP 350) ------------------------------------


def _polymod(values: list[int]) -> int:
    gen = (0x3B6A57B2, 0x26508E6D, 0x1EA119FA, 0x3D4233DD, 0x2A1462B3)
    chk = 1
    for v in values:
        top = chk >> 25
        chk = (chk & 0x1FFFFFF) << 5 ^ v
        for i in range(5):
            chk ^= gen[i] if (top >> i) & 1 else 0
    return chk


def _hrp_expand(hrp: str) -> list[int]:
    return [ord(c) >> 5 for c in hrp] + [0] + [ord(c) & 31 for c in hrp]


def _convertbits(data: list[int], frombits: int, tobits: int, pad: bool) -> list[int] | None:
    acc = bits = 0
    out: list[int] = []
    maxv = (1 << tobits) - 1
    for value in data:
        if value >> frombits:
            return None
        acc = (acc << frombits) | value
        bits += frombits
        while bits >= tobits:
            bits -= tobits
            out.append((acc >> bits) & maxv)
    if pad:
        if bits:
            out.append((acc << (tobits - bits)) & maxv)
    elif bits >= frombits or ((acc << (tobits - bits)) & maxv):
        return None
    return out


def segwit_encode(hrp: str, version: int, program: bytes) -> str:
    """The segwit address of ``program`` (bech32 for v0, bech32m for v1+), lower case."""
    data = [version, *(_convertbits(list(program), 8, 5, True) or [])]
    const = _BECH32_CONST if version == 0 else _BECH32M_CONST
    poly = _polymod([*_hrp_expand(hrp), *data, 0, 0, 0, 0, 0, 0]) ^ const
    checksum = [(poly >> 5 * (5 - i)) & 31 for i in range(6)]
    return hrp + "1" + "".join(_BECH32[d] for d in data + checksum)


def segwit_decode(text: str) -> tuple[str, int, bytes]:
    """``(hrp, witness version, program)`` of a segwit address; raises as above."""
    if text.lower() != text and text.upper() != text:
        raise InvalidAddress("a bech32 address is all lower or all upper case")
    s = text.lower()
    pos = s.rfind("1")
    if pos < 1 or pos + 7 > len(s) or len(s) > 90:
        raise InvalidAddress("not a bech32 address")
    hrp = s[:pos]
    if any(ord(c) < 33 or ord(c) > 126 for c in hrp):
        raise InvalidAddress("not a bech32 address")
    try:
        data = [_BECH32_INDEX[c] for c in s[pos + 1 :]]
    except KeyError as exc:
        raise InvalidAddress(f"{exc.args[0]!r} is not a bech32 character") from None
    const = _polymod(_hrp_expand(hrp) + data)
    version = data[0]
    if const not in (_BECH32_CONST, _BECH32M_CONST):
        raise AddressChecksumMismatch()
    if (version == 0) != (const == _BECH32_CONST):
        # v0 must use bech32 and v1+ bech32m (BIP 350): the other one is a wrong checksum
        raise AddressChecksumMismatch("the checksum variant does not match the witness version")
    if version > 16:
        raise InvalidAddress("witness version above 16")
    program = _convertbits(data[1:-6], 5, 8, False)
    if program is None or not 2 <= len(program) <= 40:
        raise InvalidAddress("the witness program has an invalid length")
    if version == 0 and len(program) not in (20, 32):
        raise InvalidAddress("a version 0 witness program is 20 or 32 bytes")
    return hrp, version, bytes(program)


def validate_bitcoin(text: str, chain: str) -> str:
    hrp = SEGWIT_HRPS[chain]
    lowered = text.lower()
    if any(lowered.startswith(h + "1") for h in SEGWIT_HRPS.values()):
        got_hrp, _version, _program = segwit_decode(text)
        if got_hrp != hrp:
            raise AddressWrongNetwork(f"a {got_hrp}1 address is not on Bitcoin {chain}")
        return lowered
    if not 25 <= len(text) <= 35:
        raise InvalidAddress("not a Bitcoin address")
    payload = b58decode_check(text)
    if len(payload) != 21:
        raise InvalidAddress("a base58 Bitcoin address holds 21 bytes")
    if payload[0] not in BASE58_VERSIONS[chain]:
        known = {v for pair in BASE58_VERSIONS.values() for v in pair}
        if payload[0] in known:
            raise AddressWrongNetwork(f"the address is not on Bitcoin {chain}")
        raise InvalidAddress("unknown address version")
    return text


def validate_address(network: NetworkLike, text: str) -> str:
    """The canonical form of ``text`` as an address on ``network``; raises
    :class:`AddressError` (with the network's name in the message) otherwise."""
    if not isinstance(text, str) or not text or len(text) > 100 or text.strip() != text:
        raise InvalidAddress(f"not a valid {network.name} address")
    try:
        if network.kind == "evm":
            return validate_evm(text)
        return validate_bitcoin(text, network.chain)
    except AddressError as exc:
        raise type(exc)(f"{network.name}: {exc.message}") from None


def evm_address(public_key: bytes) -> str:
    """The EIP-55 address of an uncompressed SEC1 secp256k1 public key (65 bytes)."""
    if len(public_key) != 65 or public_key[0] != 4:
        raise ValueError("expected an uncompressed public key (65 bytes, 04 || X || Y)")
    return eip55(keccak256(public_key[1:])[-20:].hex())
