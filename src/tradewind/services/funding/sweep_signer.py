"""The signer's rules for custody transfers (``op: "sweep"``; ADR 0028): it signs a
sweep only from a deposit address it can derive, and only to its own hot wallet; a gas
top-up only from the hot wallet to a deposit address, at most the gas budget of the
token sweep it funds; a move to cold only from the hot wallet to the configured cold
address. The destinations come from the signer's own key and config, never from the
request or the database row, so a request (or a row) naming any other address is
refused, whoever sent it.

Invariants (each refusal audited ``signer.refused``, each signature ``signer.swept``):
- ``forged_request`` / ``stale_request``: the same HMAC-SHA256 over the exact body and
  30 s freshness as a withdrawal's request (services/funding/signer.py), served on
  ``POST /v1/sweep`` of the same signer process;
- ``not_signable``: the transfer is not in ``signing`` (a replay after signing lands
  here); the signature is stored by a compare-and-set ``signing -> signed`` before it
  is returned, so one decision gets one signed transaction;
- ``tx_mismatch``: not the transaction fixed on the transfer;
- ``terms_mismatch``: the chain id, sender, recipient, token contract or amount are not
  what the rules above allow.

On a UTXO network (Bitcoin, ADR 0035) the transaction is decoded input by input: a
``sweep`` spends only coins of deposit addresses whose keys it derives (each input signed
with its own address's key) and has one output, to its hot wallet; a ``cold`` move
spends only hot-wallet coins and pays the cold address, any other output being change to
the hot wallet; the fee of either is at most ``max_fee_rate`` sat/vB of its size.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

import structlog

from tradewind.services.audit import AuditLog
from tradewind.services.funding.deposit_keys import DepositKeyError, DepositKeyring
from tradewind.services.funding.networks import NetworkCatalog
from tradewind.services.funding.ports import Custody, DepositAddressStore, Signature
from tradewind.services.funding.signer import (
    MAX_FEE_RATE,
    SignerError,
    SignerReply,
    open_request,
)
from tradewind.services.funding.sweep_config import SweepSettings
from tradewind.services.funding.sweep_ports import SweepStore
from tradewind.services.funding.withdrawal_ports import (
    PayoutTerms,
    SignedTx,
    TxCodec,
    UtxoPayoutTerms,
    UtxoTxCodec,
)

log = structlog.get_logger(__name__)


class SweepRefused(SignerError):
    """A refusal, answered like the withdrawal signer's (``{code, message}``)."""


class UtxoSweepCodec(UtxoTxCodec, Protocol):
    def assemble_witnesses(
        self, tx: Mapping[str, object], signatures: Sequence[tuple[int, int, bytes]]
    ) -> SignedTx:
        """The transaction with one ``(r, s, public key)`` per input, in input order."""
        ...


class SweepSigner:
    def __init__(
        self,
        *,
        store: SweepStore,
        addresses: DepositAddressStore,
        custody: Custody,
        keyrings: Mapping[str, DepositKeyring],
        codec: TxCodec,
        audit: AuditLog,
        catalog: NetworkCatalog,
        settings: SweepSettings,
        hot_keys: Mapping[str, str],
        secret: str,
        now_ms: Callable[[], int],
        utxo_codecs: Mapping[str, UtxoSweepCodec] | None = None,
        max_fee_rate: int = MAX_FEE_RATE,
    ) -> None:
        """``utxo_codecs``: the UTXO networks' codecs by name (Bitcoin); ``max_fee_rate``
        sat/vB, the withdrawals' ``bitcoin_max_fee_rate``."""
        self._utxo = dict(utxo_codecs or {})
        self._max_fee_rate = max_fee_rate
        self._secret = secret
        self._store = store
        self._addresses = addresses
        self._custody = custody
        self._keyrings = dict(keyrings)
        self._codec = codec
        self._audit = audit
        self._catalog = catalog
        self._settings = settings
        self._hot_keys = dict(hot_keys)
        self._now_ms = now_ms

    async def _refuse(self, status: int, code: str, message: str, **details: Any) -> SweepRefused:
        await self._audit.record(
            "signer.refused",
            details={"code": code, **{k: v for k, v in details.items() if v is not None}},
        )
        log.warning("sweep signing refused", code=code, **details)
        return SweepRefused(status, code, message)

    async def handle(self, body: bytes, signature: str | None) -> SignerReply:
        """Authenticate and answer one ``POST /v1/sweep`` (the HTTP layer passes bytes)."""
        payload = await open_request(
            self._secret, body, signature, self._now_ms(), self._refuse, op="sweep"
        )
        return SignerReply(await self.sign(payload))

    def _hot(self, network: str) -> str | None:
        label = self._hot_keys.get(network)
        if label is None:
            return None
        codec = self._utxo.get(network) or self._codec
        return codec.sender_of(self._custody.public_key(label).public_key)

    async def sign(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        tid = payload.get("transfer_id")
        tx = payload.get("tx")
        if not isinstance(tid, int) or not isinstance(tx, dict):
            raise await self._refuse(400, "invalid_request", "transfer_id and tx are needed")
        t = await self._store.get(tid)
        if t is None or t.status != "signing" or t.raw_tx is not None or t.tx is None:
            raise await self._refuse(
                409,
                "not_signable",
                "the custody transfer is not waiting for its signature",
                transfer=tid,
                found=None if t is None else t.status,
            )
        if json.loads(t.tx) != tx:
            raise await self._refuse(
                409, "tx_mismatch", "not the transaction fixed for this transfer", transfer=tid
            )
        if t.network in self._utxo:
            return await self._sign_utxo(tid, t.kind, t.network, tx)
        try:
            terms = self._codec.terms(tx)
        except ValueError as exc:
            raise await self._refuse(409, "terms_mismatch", str(exc), transfer=tid) from None
        problems, signer = await self._check(t.kind, t.network, t.parent_id, terms)
        if problems or signer is None:
            raise await self._refuse(
                409,
                "terms_mismatch",
                f"the signer does not sign this {t.kind} ({', '.join(problems)})",
                transfer=tid,
                kind=t.kind,
                to=terms.to,
            )
        digest = self._codec.digest(tx)
        sig = signer(digest)
        signed: SignedTx = self._codec.assemble(tx, sig.r, sig.s, sig.recovery_id)
        return await self._store_signed(
            tid,
            t.kind,
            t.network,
            signed,
            sender=terms.sender or "",
            to=terms.to,
            contract=terms.contract or "",
            value=terms.value,
            digest=digest.hex(),
        )

    async def _store_signed(
        self,
        tid: int,
        kind: str,
        network: str,
        signed: SignedTx,
        *,
        sender: str,
        to: str,
        contract: str,
        value: int,
        digest: str,
    ) -> dict[str, Any]:
        """``signing`` -> ``signed`` with the signed bytes (compare-and-set: a transfer
        changed meanwhile is refused ``not_signable``), audited ``signer.swept``; the
        reply to the sweeper."""
        stored = await self._store.transition(
            tid,
            ("signing",),
            "signed",
            at_ms=self._now_ms(),
            fields={"raw_tx": signed.raw, "txid": signed.txid},
        )
        if not stored:
            raise await self._refuse(
                409, "not_signable", "the transfer changed while signing", transfer=tid
            )
        await self._audit.record(
            "signer.swept",
            details={
                "transfer": tid,
                "kind": kind,
                "network": network,
                "from": sender,
                "to": to,
                "contract": contract,
                "value": str(value),
                "txid": signed.txid,
                "digest": digest,
            },
        )
        log.info("custody transfer signed", transfer=tid, kind=kind, txid=signed.txid)
        return {"transfer_id": tid, "raw": signed.raw, "txid": signed.txid}

    async def _sign_utxo(
        self, tid: int, kind: str, network: str, tx: Mapping[str, Any]
    ) -> dict[str, Any]:
        """A Bitcoin sweep or cold move: decoded, checked, one signature per input."""
        codec = self._utxo[network]
        try:
            terms = codec.utxo_terms(tx)
        except ValueError as exc:
            raise await self._refuse(409, "terms_mismatch", str(exc), transfer=tid) from None
        problems, keys = await self._check_utxo(kind, network, terms)
        if problems or keys is None:
            raise await self._refuse(
                409,
                "terms_mismatch",
                f"the signer does not sign this {kind} ({', '.join(problems)})",
                transfer=tid,
                kind=kind,
            )
        digests = codec.digests(tx)
        signatures: list[tuple[int, int, bytes]] = []
        for (sign, public_key), digest in zip(keys, digests, strict=True):
            sig = sign(digest)
            signatures.append((sig.r, sig.s, public_key))
        signed = codec.assemble_witnesses(tx, signatures)
        return await self._store_signed(
            tid,
            kind,
            network,
            signed,
            sender=",".join(sorted({i.address for i in terms.inputs})),
            to=",".join(a for a, _ in terms.outputs),
            contract="",
            value=sum(v for _, v in terms.outputs),
            digest=",".join(d.hex() for d in digests),
        )

    async def _check_utxo(
        self, kind: str, network: str, terms: UtxoPayoutTerms
    ) -> tuple[list[str], list[tuple[Callable[[bytes], Signature], bytes]] | None]:
        """What is wrong, and each input's signing function with its public key."""
        conf = self._settings.network(network)
        hot = self._hot(network)
        label = self._hot_keys.get(network)
        if conf is None or hot is None or label is None:
            return ["no sweep settings or hot key for this network"], None
        problems: list[str] = []
        if terms.fee > self._max_fee_rate * terms.vsize:
            problems.append(
                f"fee {terms.fee} sat over {self._max_fee_rate} sat/vB of {terms.vsize} vB"
            )
        if kind == "sweep":
            keyring = self._keyrings.get(network)
            if keyring is None:
                return [*problems, "no deposit key for this network"], None
            if [a for a, _ in terms.outputs] != [hot]:
                problems.append("the one output is not the hot wallet")
            keys: list[tuple[Callable[[bytes], Signature], bytes]] = []
            for i in terms.inputs:
                user = await self._addresses.owner_of(network, i.address)
                stored = None if user is None else await self._addresses.get(user, network)
                if stored is None:
                    return [*problems, f"input {i.outpoint} is not a deposit address's"], None
                try:
                    if keyring.address_at(stored.path) != i.address:
                        problems.append(f"the key of {i.address}")
                        continue
                    public_key = keyring.public_key_at(stored.path)
                except DepositKeyError:
                    problems.append(f"the path of {i.address}")
                    continue

                def deposit_signer(
                    digest: bytes, path: str = stored.path, address: str = i.address
                ) -> Signature:
                    return keyring.sign_digest(path, address, digest)

                keys.append((deposit_signer, public_key))
            return problems, keys
        if kind == "cold":
            if any(i.address != hot for i in terms.inputs):
                problems.append("an input is not the hot wallet's")
            if terms.sender is not None and terms.sender != hot:
                problems.append("sender is not the hot wallet")
            cold = [a for a, _ in terms.outputs if a == conf.cold_address]
            if conf.cold_address is None or len(cold) != 1:
                problems.append("no one output to the cold address")
            if any(a not in (hot, conf.cold_address) for a, _ in terms.outputs):
                problems.append("an output pays another address")
            public_key = self._custody.public_key(label).public_key

            def hot_signer(digest: bytes) -> Signature:
                return self._custody.sign_digest(label, digest)

            return problems, [(hot_signer, public_key)] * len(terms.inputs)
        return [f"a {kind} is not signed on {network}"], None

    async def _check(
        self, kind: str, network: str, parent_id: int | None, terms: PayoutTerms
    ) -> tuple[list[str], Callable[[bytes], Signature] | None]:
        net = self._catalog.network(network)
        conf = self._settings.network(network)
        hot = self._hot(network)
        label = self._hot_keys.get(network)
        if net is None or conf is None or hot is None or label is None:
            return ["no sweep settings or hot key for this network"], None
        problems: list[str] = []
        if terms.chain_id != net.chain_id:
            problems.append("chain id")
        known = {a.contract for a in net.assets if a.contract is not None}
        if terms.contract is not None and terms.contract not in known:
            problems.append("token contract")
        sender = terms.sender or ""

        def hot_signer(digest: bytes) -> Signature:
            return self._custody.sign_digest(label, digest)

        if kind == "sweep":
            if terms.to != hot:
                problems.append("recipient is not the hot wallet")
            keyring = self._keyrings.get(network)
            user = await self._addresses.owner_of(network, sender)
            stored = None if user is None else await self._addresses.get(user, network)
            if keyring is None or stored is None:
                problems.append("sender is not a deposit address")
                return problems, None
            try:
                if keyring.address_at(stored.path) != sender:
                    problems.append("sender's key")
            except DepositKeyError:
                problems.append("sender's path")
            path = stored.path

            def deposit_signer(digest: bytes) -> Signature:
                return keyring.sign_digest(path, sender, digest)

            return problems, deposit_signer
        if sender != hot:
            problems.append("sender is not the hot wallet")
        if kind == "topup":
            parent = None if parent_id is None else await self._store.get(parent_id)
            if terms.contract is not None:
                problems.append("a top-up pays the native coin")
            if parent is None or parent.kind != "sweep" or parent.status != "waiting_gas":
                problems.append("no token sweep waiting for gas")
            elif terms.to != parent.sender:
                problems.append("recipient is not the sweep's deposit address")
            elif terms.value > parent.gas_budget:
                problems.append("more than the sweep's gas budget")
            if await self._addresses.owner_of(network, terms.to) is None:
                problems.append("recipient is not a deposit address")
            return problems, hot_signer
        if kind == "cold":
            if conf.cold_address is None or terms.to != conf.cold_address:
                problems.append("recipient is not the cold address")
            return problems, hot_signer
        return [f"unknown kind {kind!r}"], None
