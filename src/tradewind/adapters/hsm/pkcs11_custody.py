"""The PKCS#11 signer: secp256k1 keys generated and used inside an HSM token
(SoftHSM2 in development and tests), filling the ``Custody`` port
(services/funding/ports.py).

Why an HSM: a hot wallet's key that exists only inside the token cannot be copied off a
compromised host; the host can at most ask for signatures while it is compromised, and
those requests are what the signer service will authenticate and audit.

Invariants:
- keys are generated in the token (``C_GenerateKeyPair``, CKM_EC_KEY_PAIR_GEN on
  secp256k1) as token objects with the private half ``CKA_SENSITIVE`` and not
  ``CKA_EXTRACTABLE``: the token refuses to reveal it, wrapped or not;
- signatures come from ``CKM_ECDSA`` over a 32-byte digest the caller computed (the
  transaction's hash), then are normalised to low S (``s <= n/2``, which Ethereum
  (EIP-2) and Bitcoin's standardness rules require) and given the recovery id that
  makes the public key recoverable from ``(r, s, v)`` as EVM transactions need;
- one logged-in session per process, used under a lock (PKCS#11 sessions are not safe
  to share between threads); operations take well under a millisecond on SoftHSM2, so
  callers in an event loop may call directly or through a thread.
"""

from __future__ import annotations

import threading
from types import TracebackType
from typing import Any

import coincurve
import pkcs11
from pkcs11 import Attribute, KeyType, Mechanism, ObjectClass
from pkcs11.util.ec import encode_named_curve_parameters

from tradewind.services.funding.ports import CustodyKey, Signature

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
"""The order of the secp256k1 group."""
_HALF_N = SECP256K1_N // 2


def _ec_point(der_octet_string: bytes) -> bytes:
    """The raw SEC1 point inside ``CKA_EC_POINT`` (a DER OCTET STRING per PKCS#11)."""
    if der_octet_string[:1] == b"\x04" and len(der_octet_string) == 65:
        return der_octet_string  # some tokens return the raw point
    if der_octet_string[:2] == b"\x04\x41" and len(der_octet_string) == 67:
        return der_octet_string[2:]
    raise ValueError("unexpected CKA_EC_POINT encoding from the token")


def normalise(r: int, s: int) -> tuple[int, int]:
    """``(r, s)`` with ``s`` in the lower half of the group order (the other ``s`` of
    the same signature; both verify, only the low one is accepted by the chains)."""
    return (r, SECP256K1_N - s) if s > _HALF_N else (r, s)


def recovery_id(digest: bytes, r: int, s: int, public_key: bytes) -> int:
    """The ``v`` (0 or 1) for which ECDSA public-key recovery gives ``public_key``."""
    for v in (0, 1):
        sig = r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v])
        try:
            recovered = coincurve.PublicKey.from_signature_and_message(sig, digest, hasher=None)
        except ValueError:
            continue
        if recovered.format(compressed=False) == public_key:
            return v
    raise ValueError("the token's signature does not recover to its public key")


class Pkcs11Custody:
    """Custody of secp256k1 keys in one PKCS#11 token, logged in with the user PIN."""

    def __init__(self, library_path: str, token_label: str, user_pin: str) -> None:
        lib = pkcs11.lib(library_path)
        token = lib.get_token(token_label=token_label)
        self._session = token.open(user_pin=user_pin, rw=True)
        self._lock = threading.Lock()
        self._keys: dict[str, tuple[Any, bytes]] = {}
        """Label -> (private key handle, public point): handles stay valid for the
        session, and looking them up again costs as much as the signature."""

    def close(self) -> None:
        with self._lock:
            self._keys.clear()
            self._session.close()

    def __enter__(self) -> Pkcs11Custody:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _find(self, label: str, object_class: ObjectClass) -> object | None:
        found = list(
            self._session.get_objects(
                {Attribute.CLASS: object_class, Attribute.LABEL: label, Attribute.TOKEN: True}
            )
        )
        if len(found) > 1:
            raise ValueError(f"the token holds {len(found)} keys labelled {label!r}")
        return found[0] if found else None

    def create_key(self, label: str) -> CustodyKey:
        if not label or len(label) > 64:
            raise ValueError("a key label is 1 to 64 characters")
        with self._lock:
            if self._find(label, ObjectClass.PRIVATE_KEY) is not None:
                raise ValueError(f"a key labelled {label!r} exists already")
            params = self._session.create_domain_parameters(
                KeyType.EC,
                {Attribute.EC_PARAMS: encode_named_curve_parameters("secp256k1")},
                local=True,
            )
            public, _private = params.generate_keypair(
                store=True,
                label=label,
                public_template={Attribute.VERIFY: True},
                private_template={
                    Attribute.SENSITIVE: True,
                    Attribute.EXTRACTABLE: False,
                    Attribute.SIGN: True,
                    Attribute.PRIVATE: True,
                },
            )
            return CustodyKey(label, _ec_point(public[Attribute.EC_POINT]))

    def public_key(self, label: str) -> CustodyKey:
        with self._lock:
            public = self._find(label, ObjectClass.PUBLIC_KEY)
            if public is None:
                raise KeyError(label)
            return CustodyKey(label, _ec_point(public[Attribute.EC_POINT]))  # type: ignore[index]

    def _signing_key(self, label: str) -> tuple[Any, bytes]:
        cached = self._keys.get(label)
        if cached is None:
            private = self._find(label, ObjectClass.PRIVATE_KEY)
            public = self._find(label, ObjectClass.PUBLIC_KEY)
            if private is None or public is None:
                raise KeyError(label)
            cached = (private, _ec_point(public[Attribute.EC_POINT]))  # type: ignore[index]
            self._keys[label] = cached
        return cached

    def sign_digest(self, label: str, digest: bytes) -> Signature:
        if len(digest) != 32:
            raise ValueError("sign a 32-byte digest (the hash of what is signed)")
        with self._lock:
            private, point = self._signing_key(label)
            raw = private.sign(digest, mechanism=Mechanism.ECDSA)
        r, s = normalise(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
        return Signature(r, s, recovery_id(digest, r, s, point))

    # -- sealed secrets (the deposit account keys, ADR 0028) --------------------------

    def put_secret(self, label: str, value: bytes) -> None:
        """Store ``value`` as a private, unmodifiable token data object (``CKO_DATA``,
        ``CKA_PRIVATE``): readable only in a session logged in with the user PIN."""
        if not label or len(label) > 64:
            raise ValueError("a secret label is 1 to 64 characters")
        with self._lock:
            if self._find(label, ObjectClass.DATA) is not None:
                raise ValueError(f"a secret labelled {label!r} exists already")
            self._session.create_object(
                {
                    Attribute.CLASS: ObjectClass.DATA,
                    Attribute.LABEL: label,
                    Attribute.APPLICATION: "tradewind",
                    Attribute.VALUE: bytes(value),
                    Attribute.TOKEN: True,
                    Attribute.PRIVATE: True,
                    Attribute.MODIFIABLE: False,
                }
            )

    def secret(self, label: str) -> bytes:
        with self._lock:
            found = self._find(label, ObjectClass.DATA)
            if found is None:
                raise KeyError(label)
            return bytes(found[Attribute.VALUE])  # type: ignore[index]
