"""The signer: signs withdrawal payouts with hot-wallet keys held in the custody (the
PKCS#11 token), for the withdrawal workflow only (issue 6 item 4, ADR 0022).

A request is a JSON body ``{"op": "sign" | "address", "ts": ms, ...}`` with
``X-Tradewind-Signature: hex(HMAC-SHA256(shared secret, exact body))``.

Invariants (each refusal is audited as ``signer.refused`` with its code):
- ``forged_request``: the HMAC does not match (constant-time compare);
- ``stale_request``: ``ts`` is more than 30 s away from the signer's clock;
- ``not_signable``: the withdrawal is not in ``signing`` (approved, its transaction
  fixed, not signed yet). A replayed request for a signed withdrawal lands here, so a
  payout is signed at most once: the signature is stored on the withdrawal by a
  compare-and-set ``signing -> signed`` before it is returned, and a signature that
  loses that race is thrown away unseen;
- ``tx_mismatch``: the request's transaction is not the one fixed on the withdrawal;
- ``terms_mismatch``: the transaction does not pay exactly the withdrawal's address its
  amount less the fee, in chain units, on the network's chain id, from the network's
  hot wallet (for a token: through the asset's contract). On a UTXO network (Bitcoin,
  ADR 0029) the outputs are decoded: exactly one pays the withdrawal's address, exactly
  its amount less the fee in satoshi; any other output is change to the hot wallet;
  every input is a hot-wallet coin; the fee is at most ``max_fee_rate`` sat/vB of the
  transaction's size;
- every signature is audited (``signer.signed``: withdrawal, txid, digest).

The key of a network is the custody label in ``[funding.signer] keys``; the custody port
(services/funding/ports.py) is what Fireblocks or BitGo would fill instead.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from tradewind.services.audit import AuditLog
from tradewind.services.funding.networks import NetworkCatalog
from tradewind.services.funding.ports import Custody
from tradewind.services.funding.withdrawal_ports import (
    SignedTx,
    TxCodec,
    UtxoTxCodec,
    Withdrawal,
    WithdrawalStore,
)

log = structlog.get_logger(__name__)

SIGNATURE_HEADER = "X-Tradewind-Signature"
MAX_SKEW_MS = 30_000
MAX_FEE_RATE = 500
"""Sat/vB: the highest Bitcoin fee rate the signer signs by default (a payout built
with a runaway estimate, or a tampered one, would burn the hot wallet's coins)."""


def request_signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_request(secret: str, payload: Mapping[str, object]) -> tuple[bytes, str]:
    """The body and the signature header value of a request to the signer."""
    body = json.dumps(dict(payload), sort_keys=True, separators=(",", ":")).encode()
    return body, request_signature(secret, body)


class SignerError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


Refuse = Callable[[int, str, str], Awaitable[SignerError]]
"""Audits a refusal and returns the error to raise."""


async def open_request(
    secret: str,
    body: bytes,
    signature: str | None,
    now_ms: int,
    refuse: Refuse,
    *,
    op: str | None = None,
) -> dict[str, Any]:
    """The payload of an authentic, fresh request to a signer: the HMAC over the body,
    a JSON object (with ``op`` when given), ``ts`` within ``MAX_SKEW_MS`` of now.
    Shared by the withdrawal and the sweep signer so both refuse alike."""
    expected = request_signature(secret, body)
    if signature is None or not hmac.compare_digest(expected, signature.strip().lower()):
        raise await refuse(401, "forged_request", "bad or missing request signature")
    try:
        payload = json.loads(body)
    except ValueError:
        raise await refuse(400, "invalid_request", "the body is not JSON") from None
    if not isinstance(payload, dict) or (op is not None and payload.get("op") != op):
        shape = "the body is not a JSON object" if op is None else f"a JSON object with op {op}"
        raise await refuse(400, "invalid_request", shape)
    ts = payload.get("ts")
    if not isinstance(ts, int) or abs(now_ms - ts) > MAX_SKEW_MS:
        raise await refuse(401, "stale_request", "the request is too old or too new")
    return payload


def to_chain_units(amount: int, decimals: int, chain_decimals: int) -> int:
    scale: int = 10 ** (chain_decimals - decimals)
    return amount * scale


@dataclass(frozen=True, slots=True)
class SignerReply:
    body: dict[str, Any]


class SignerService:
    def __init__(
        self,
        *,
        store: WithdrawalStore,
        custody: Custody,
        codec: TxCodec,
        audit: AuditLog,
        catalog: NetworkCatalog,
        keys: Mapping[str, str],
        secret: str,
        now_ms: Callable[[], int],
        utxo_codecs: Mapping[str, UtxoTxCodec] | None = None,
        max_fee_rate: int = MAX_FEE_RATE,
    ) -> None:
        """``codec`` encodes the EVM networks' transactions; ``utxo_codecs`` those of
        the UTXO networks by name (Bitcoin)."""
        self._store = store
        self._custody = custody
        self._codec = codec
        self._audit = audit
        self._catalog = catalog
        self._keys = dict(keys)
        self._secret = secret
        self._now_ms = now_ms
        self._utxo = dict(utxo_codecs or {})
        self._max_fee_rate = max_fee_rate

    def _sender_of(self, network: str, public_key: bytes) -> str:
        codec = self._utxo.get(network)
        return (codec or self._codec).sender_of(public_key)

    def ensure_keys(self) -> dict[str, str]:
        """Create the configured keys missing from the custody; network -> address."""
        out: dict[str, str] = {}
        for network, label in self._keys.items():
            try:
                key = self._custody.public_key(label)
            except KeyError:
                key = self._custody.create_key(label)
                log.warning("hot-wallet key created in the token", network=network, label=label)
            out[network] = self._sender_of(network, key.public_key)
        return out

    def address(self, network: str) -> str:
        label = self._keys.get(network)
        if label is None:
            raise SignerError(404, "unknown_network", f"no hot-wallet key for {network!r}")
        return self._sender_of(network, self._custody.public_key(label).public_key)

    async def _refuse(self, status: int, code: str, message: str, **details: Any) -> SignerError:
        await self._audit.record(
            "signer.refused",
            details={"code": code, **{k: v for k, v in details.items() if v is not None}},
        )
        log.warning("signing request refused", code=code, **details)
        return SignerError(status, code, message)

    async def handle(self, body: bytes, signature: str | None) -> SignerReply:
        """Authenticate and answer one request (the HTTP layer only passes bytes)."""
        payload = await open_request(self._secret, body, signature, self._now_ms(), self._refuse)
        op = payload.get("op")
        if op == "address":
            network = payload.get("network")
            return SignerReply({"address": self.address(str(network))})
        if op == "sign":
            return SignerReply(await self._sign(payload))
        raise await self._refuse(400, "invalid_request", "op must be sign or address")

    async def _sign(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        wid = payload.get("withdrawal_id")
        tx = payload.get("tx")
        if not isinstance(wid, int) or not isinstance(tx, dict):
            raise await self._refuse(400, "invalid_request", "withdrawal_id and tx are needed")
        w = await self._store.get(wid)
        if w is None or w.status != "signing" or w.raw_tx is not None or w.tx is None:
            raise await self._refuse(
                409,
                "not_signable",
                "the withdrawal is not approved and waiting for its signature",
                withdrawal=wid,
                found=None if w is None else w.status,
            )
        if json.loads(w.tx) != tx:
            raise await self._refuse(
                409, "tx_mismatch", "not the transaction fixed for this withdrawal", withdrawal=wid
            )
        if w.network in self._utxo:
            return await self._sign_utxo(w, tx)
        rules = self._catalog.asset_on(w.asset, w.network)
        net = self._catalog.network(w.network)
        label = self._keys.get(w.network)
        try:
            terms = self._codec.terms(tx)
        except ValueError as exc:
            raise await self._refuse(409, "terms_mismatch", str(exc), withdrawal=wid) from None
        problems = []
        if rules is None or net is None or label is None:
            problems.append("no rules or key for this network")
        else:
            sender = self.address(w.network)
            if terms.chain_id != net.chain_id:
                problems.append("chain id")
            if terms.sender != sender:
                problems.append("sender")
            if terms.to != w.address:
                problems.append("beneficiary")
            if terms.contract != rules.contract:
                problems.append("token contract")
            want = to_chain_units(w.net_amount, rules.decimals, rules.chain_decimals)
            if terms.value != want:
                problems.append("amount")
        if problems:
            raise await self._refuse(
                409,
                "terms_mismatch",
                f"the transaction does not pay the withdrawal ({', '.join(problems)})",
                withdrawal=wid,
            )
        assert label is not None
        digest = self._codec.digest(tx)
        sig = self._custody.sign_digest(label, digest)
        signed: SignedTx = self._codec.assemble(tx, sig.r, sig.s, sig.recovery_id)
        return await self._store_signed(w, signed, digest.hex(), label)

    async def _sign_utxo(self, w: Withdrawal, tx: Mapping[str, Any]) -> dict[str, Any]:
        """A Bitcoin payout: the outputs decoded and checked, one signature per input."""
        wid = w.id
        codec = self._utxo[w.network]
        try:
            terms = codec.utxo_terms(tx)
        except ValueError as exc:
            raise await self._refuse(409, "terms_mismatch", str(exc), withdrawal=wid) from None
        rules = self._catalog.asset_on(w.asset, w.network)
        label = self._keys.get(w.network)
        problems = []
        if rules is None or label is None:
            problems.append("no rules or key for this network")
        else:
            hot = self.address(w.network)
            want = to_chain_units(w.net_amount, rules.decimals, rules.chain_decimals)
            paid = [value for address, value in terms.outputs if address == w.address]
            others = [address for address, _ in terms.outputs if address != w.address]
            if terms.sender != hot:
                problems.append("sender")
            if any(i.address != hot for i in terms.inputs):
                problems.append("an input is not the hot wallet's")
            if len(paid) != 1:
                problems.append("beneficiary")
            elif paid[0] != want:
                problems.append("amount")
            if any(address != hot for address in others):
                problems.append("an output pays another address")
            if terms.fee > self._max_fee_rate * terms.vsize:
                problems.append(
                    f"fee {terms.fee} sat over {self._max_fee_rate} sat/vB of {terms.vsize} vB"
                )
        if problems:
            raise await self._refuse(
                409,
                "terms_mismatch",
                f"the transaction does not pay the withdrawal ({', '.join(problems)})",
                withdrawal=wid,
            )
        assert label is not None
        digests = codec.digests(tx)
        signatures = []
        for digest in digests:
            sig = self._custody.sign_digest(label, digest)
            signatures.append((sig.r, sig.s))
        public_key = self._custody.public_key(label).public_key
        signed = codec.assemble_signed(tx, signatures, public_key)
        return await self._store_signed(w, signed, ",".join(d.hex() for d in digests), label)

    async def _store_signed(
        self, w: Withdrawal, signed: SignedTx, digest: str, label: str
    ) -> dict[str, Any]:
        wid = w.id
        stored = await self._store.transition(
            wid,
            ("signing",),
            "signed",
            at_ms=self._now_ms(),
            note=f"signed by the signer: {signed.txid}",
            fields={"raw_tx": signed.raw, "txid": signed.txid},
        )
        if not stored:  # a racing request or a cancel won: this signature is dropped
            raise await self._refuse(
                409, "not_signable", "the withdrawal changed while signing", withdrawal=wid
            )
        await self._audit.record(
            "signer.signed",
            subject_id=w.user_id,
            details={
                "withdrawal": wid,
                "network": w.network,
                "txid": signed.txid,
                "digest": digest,
                "key": label,
            },
        )
        log.info("payout signed", withdrawal=wid, txid=signed.txid)
        return {"withdrawal_id": wid, "raw": signed.raw, "txid": signed.txid}
