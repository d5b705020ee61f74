"""Bitcoin payout transactions: the JSON form the processor stores, the BIP 143 digests
the HSM signs (one per input), and the signed segwit transaction, through embit's
``Transaction`` (its serialization and ``sighash_segwit``; nothing here hashes a
transaction by hand). Fills ``UtxoTxCodec`` (services/funding/withdrawal_ports.py).

The JSON form (ADR 0029)::

    {"version": 2, "locktime": 0,
     "inputs":  [{"txid": hex, "vout": n, "address": hot wallet, "value": sat}, ...],
     "outputs": [{"address": beneficiary, "value": sat}, {"address": hot, "value": sat}],
     "from": hot wallet, "fee_rate": sat per kvB}

Invariants:
- :meth:`BitcoinTxCodec.utxo_terms` refuses any other shape (unknown fields, another
  version or lock time, a duplicated input, a non-positive value, an address of another
  chain): the signer signs nothing it cannot read back as "spend these coins, pay these
  addresses";
- every input is P2WPKH (the hot wallet's kind); its script code for BIP 143 is the
  P2PKH script of its key hash, and its value is committed to by the signature, so a
  transaction that lies about an input's value is refused by every node;
- signatures are DER-encoded from the token's ``(r, s)`` (already low S) with
  ``SIGHASH_ALL``; the witness is ``[signature, compressed public key]``;
- the vsize counts each signature at its largest (72 bytes with the hash type), so a
  fee computed from it never pays below the rate asked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import coincurve
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from embit.networks import NETWORKS
from embit.script import Script, Witness, address_to_scriptpubkey, p2pkh_from_p2wpkh, p2wpkh
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from tradewind.services.funding.addresses import AddressError, validate_bitcoin
from tradewind.services.funding.withdrawal_ports import SignedTx, UtxoInput, UtxoPayoutTerms

EMBIT_NETWORKS = {"mainnet": "main", "testnet": "test", "regtest": "regtest"}
_TXID = re.compile(r"[0-9a-f]{64}")
_FIELDS = frozenset({"version", "locktime", "inputs", "outputs", "from", "fee_rate"})
MAX_SIG_WITNESS = 1 + 1 + 72 + 1 + 33
"""Witness bytes of a P2WPKH input at most: the item count, then the DER signature with
its hash type (72 at most with low S) and the compressed key (33), each after its length
byte."""
SEQUENCE_FINAL = 0xFFFFFFFF
"""No replace-by-fee: a replacement would be a second signature for one withdrawal."""


def _compact_size(n: int) -> int:
    return 1 if n < 0xFD else 3 if n <= 0xFFFF else 5


def vsize_of(input_count: int, output_scripts: Sequence[bytes]) -> int:
    """Virtual size of a transaction spending ``input_count`` P2WPKH coins to outputs
    with these scripts, signatures at their largest."""
    base = 4 + _compact_size(input_count) + 41 * input_count + _compact_size(len(output_scripts))
    base += sum(8 + _compact_size(len(s)) + len(s) for s in output_scripts) + 4
    witness = 2 + MAX_SIG_WITNESS * input_count  # marker and flag, then each input's
    return -(-(base * 4 + witness) // 4)


def dust_limit(script: bytes) -> int:
    """bitcoind's dust threshold of an output (``GetDustThreshold`` at the default
    3 sat/vB dust relay fee): 294 sat for P2WPKH, 330 for P2TR/P2WSH, 546 for P2PKH."""
    size = 8 + _compact_size(len(script)) + len(script)
    witness_program = (
        len(script) >= 4
        and (script[0] == 0 or 0x51 <= script[0] <= 0x60)
        and script[1] + 2 == len(script)
    )
    size += 32 + 4 + 1 + 107 // 4 + 4 if witness_program else 32 + 4 + 1 + 107 + 4
    return 3 * size


def script_of(address: str) -> bytes:
    return bytes(address_to_scriptpubkey(address).data)


def _int(value: object, what: str, *, low: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{what} must be an integer of at least {low}")
    return value


class BitcoinTxCodec:
    """The codec of one Bitcoin network (``chain``: mainnet, testnet or regtest)."""

    def __init__(self, chain: str) -> None:
        if chain not in EMBIT_NETWORKS:
            raise ValueError(f"unknown Bitcoin chain {chain!r}")
        self.chain = chain

    def _address(self, value: object, what: str) -> str:
        if not isinstance(value, str):
            raise ValueError(f"{what} must be an address")
        try:
            return validate_bitcoin(value, self.chain)
        except AddressError as exc:
            raise ValueError(f"{what}: {exc.message}") from None

    def _parse(self, tx: Mapping[str, object]) -> tuple[UtxoPayoutTerms, Transaction]:
        unknown = set(tx) - _FIELDS
        if unknown:
            raise ValueError(f"unexpected transaction field {sorted(unknown)[0]!r}")
        if tx.get("version") != 2 or tx.get("locktime") != 0:
            raise ValueError("a payout is version 2 with lock time 0")
        raw_inputs, raw_outputs = tx.get("inputs"), tx.get("outputs")
        if not isinstance(raw_inputs, list) or not raw_inputs or len(raw_inputs) > 500:
            raise ValueError("inputs must be a list of 1 to 500 coins")
        if not isinstance(raw_outputs, list) or not raw_outputs or len(raw_outputs) > 2:
            raise ValueError("a payout has one or two outputs (the beneficiary, change)")
        inputs: list[UtxoInput] = []
        for item in raw_inputs:
            if not isinstance(item, dict) or set(item) != {"txid", "vout", "address", "value"}:
                raise ValueError("an input is {txid, vout, address, value}")
            txid = item["txid"]
            if not isinstance(txid, str) or not _TXID.fullmatch(txid):
                raise ValueError("an input's txid is 64 lower-case hex digits")
            inputs.append(
                UtxoInput(
                    txid,
                    _int(item["vout"], "an input's vout"),
                    self._address(item["address"], "an input's address"),
                    _int(item["value"], "an input's value", low=1),
                )
            )
        if len({i.outpoint for i in inputs}) != len(inputs):
            raise ValueError("an input is spent twice")
        outputs: list[tuple[str, int]] = []
        for item in raw_outputs:
            if not isinstance(item, dict) or set(item) != {"address", "value"}:
                raise ValueError("an output is {address, value}")
            outputs.append(
                (
                    self._address(item["address"], "an output's address"),
                    _int(item["value"], "an output's value", low=1),
                )
            )
        scripts = [script_of(i.address) for i in inputs]
        if any(Script(s).script_type() != "p2wpkh" for s in scripts):
            raise ValueError("only P2WPKH coins are spent")
        out_scripts = [script_of(a) for a, _ in outputs]
        built = Transaction(
            version=2,
            vin=[
                TransactionInput(bytes.fromhex(i.txid), i.vout, sequence=SEQUENCE_FINAL)
                for i in inputs
            ],
            vout=[
                TransactionOutput(v, Script(s))
                for (_, v), s in zip(outputs, out_scripts, strict=True)
            ],
            locktime=0,
        )
        sender = tx.get("from")
        terms = UtxoPayoutTerms(
            self._address(sender, "from") if sender is not None else None,
            tuple(inputs),
            tuple(outputs),
            vsize_of(len(inputs), out_scripts),
        )
        if terms.fee < 0:
            raise ValueError("the outputs exceed the inputs")
        return terms, built

    def utxo_terms(self, tx: Mapping[str, object]) -> UtxoPayoutTerms:
        return self._parse(tx)[0]

    def digests(self, tx: Mapping[str, object]) -> list[bytes]:
        terms, built = self._parse(tx)
        return [
            bytes(
                built.sighash_segwit(
                    n, p2pkh_from_p2wpkh(Script(script_of(i.address))), i.value, SIGHASH.ALL
                )
            )
            for n, i in enumerate(terms.inputs)
        ]

    def assemble_signed(
        self, tx: Mapping[str, object], signatures: Sequence[tuple[int, int]], public_key: bytes
    ) -> SignedTx:
        return self.assemble_witnesses(tx, [(r, s, public_key) for r, s in signatures])

    def assemble_witnesses(
        self, tx: Mapping[str, object], signatures: Sequence[tuple[int, int, bytes]]
    ) -> SignedTx:
        """The signed transaction from one ``(r, s, public key)`` per input, each input
        with its own key (a sweep spends the coins of several deposit addresses)."""
        terms, built = self._parse(tx)
        if len(signatures) != len(terms.inputs):
            raise ValueError("one signature per input")
        for n, (r, s, public_key) in enumerate(signatures):
            compressed = coincurve.PublicKey(public_key).format(compressed=True)
            der = encode_dss_signature(r, s) + bytes([SIGHASH.ALL])
            built.vin[n].witness = Witness([der, compressed])
        raw: Any = built.serialize()
        return SignedTx(bytes(raw).hex(), built.txid().hex())

    def sender_of(self, public_key: bytes) -> str:
        from embit.ec import PublicKey

        compressed = coincurve.PublicKey(public_key).format(compressed=True)
        address: str = p2wpkh(PublicKey.parse(compressed)).address(
            NETWORKS[EMBIT_NETWORKS[self.chain]]
        )
        return address


def txid_of_raw(raw: str) -> str:
    """The txid of a serialized transaction (hex)."""
    return str(Transaction.parse(bytes.fromhex(raw)).txid().hex())
