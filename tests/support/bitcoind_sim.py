"""A bitcoind regtest node in miniature: the JSON-RPC subset Tradewind's Bitcoin reader
uses, over HTTP with basic auth on loopback, holding real, validly signed segwit
transactions (ADR 0025, docs/bitcoin.md).

Why a simulator: there is no bitcoind package on the machines this project runs on, and
the watcher's rules must be shown on real transactions, not on hand-made JSON. So this
node keeps what a node keeps, in memory:

- blocks with real headers (version, previous hash, merkle root of the txids, time,
  bits, nonce) whose hash is the double SHA-256 of the 80-byte header, each meeting the
  regtest target (``bits`` 0x207fffff: trivial proof of work, like regtest); the genesis
  block is regtest's own (its hash is checked by a test); coinbases carry the height
  (BIP 34) and the segwit witness commitment (BIP 141);
- the UTXO set of the active chain, with undo data per block so ``invalidateblock`` can
  disconnect blocks (their transactions go back to the mempool, as bitcoind does);
- a mempool: ``sendrawtransaction`` accepts a transaction only if every input spends an
  unspent, mature output (coinbases after 100 blocks), no other mempool transaction
  spends it (``txn-mempool-conflict``), the outputs do not exceed the inputs, no output
  is dust, and every input is P2WPKH with a BIP 143 signature that verifies (checked with
  libsecp256k1 through coincurve, low S, as bitcoind's policy asks).

For payouts and reconciliation (ADR 0029) it also answers ``scantxoutset`` (addr() and
raw() descriptors over the chain state's coins), ``estimatesmartfee`` (a rate a test
sets, or regtest's "no data") and ``getblockheader``, and can refuse transactions below
a minimum relay fee a test sets (``min_relay_fee``).

Limits (on purpose): inputs other than P2WPKH are refused, there is no
``reconsiderblock``/``submitblock`` (the active chain is the only candidate after an
invalidation), no size policy, no fee policy beyond dust and the optional minimum relay
fee, and no wallet RPCs: tests use :class:`SimWallet`, which builds and signs with embit.

Run it alone for manual trials: ``python tests/support/bitcoind_sim.py --port 18443``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import io
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import coincurve
import msgspec
from embit import ec, hashes
from embit.networks import NETWORKS
from embit.script import Script, Witness, address_to_scriptpubkey, p2pkh, p2wpkh
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from tradewind.services.funding.addresses import AddressError, validate_bitcoin

COIN = 10**8
COINBASE_MATURITY = 100
HALVING_INTERVAL = 150
"""Regtest halves the subsidy every 150 blocks."""
REGTEST_BITS = 0x207FFFFF
BLOCK_VERSION = 0x20000000
P2WPKH_DUST = 294
"""bitcoind's dust limit of a P2WPKH output at the default relay fee."""
WITNESS_RESERVED = b"\x00" * 32
NULL_TXID = b"\x00" * 32

# regtest's genesis block (chainparams.cpp): rebuilt here, so its hash is a check of the
# header and merkle code against bitcoind's own
GENESIS_SCRIPT_SIG = bytes.fromhex(
    "04ffff001d0104455468652054696d65732030332f4a616e2f32303039204368616e63656c6c6f72206f"
    "6e206272696e6b206f66207365636f6e64206261696c6f757420666f722062616e6b73"
)
GENESIS_OUTPUT_SCRIPT = bytes.fromhex(
    "4104678afdb0fe5548271967f1a67130b7105cd6a828e03909a67962e0ea1f61deb649f6bc3f4cef38c4"
    "f35504e51ec112de5c384df7ba0b8d578a4c702b6bf11d5fac"
)
GENESIS_TIME = 1296688602
GENESIS_NONCE = 2
REGTEST_GENESIS_HASH = "0f9188f13cb7b2c71f2a335e3a4fc328bf5beb436012afca590b1a11466e2206"

# bitcoind's RPC error codes
RPC_MISC_ERROR = -1
RPC_METHOD_NOT_FOUND = -32601
RPC_INVALID_REQUEST = -32600
RPC_INVALID_PARAMETER = -8
RPC_INVALID_ADDRESS_OR_KEY = -5
RPC_DESERIALIZATION_ERROR = -22
RPC_VERIFY_ERROR = -25
RPC_VERIFY_REJECTED = -26
RPC_VERIFY_ALREADY_IN_CHAIN = -27

_ENCODER = msgspec.json.Encoder()


class RpcFailure(Exception):
    """A JSON-RPC error as bitcoind answers it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


def dsha256(data: bytes) -> bytes:
    return hashlib.sha256(hashlib.sha256(data).digest()).digest()


def merkle_root(leaves: list[bytes]) -> bytes:
    """Bitcoin's merkle root (internal byte order; an odd last node is paired with
    itself)."""
    level = list(leaves)
    while len(level) > 1:
        if len(level) % 2:
            level.append(level[-1])
        level = [dsha256(level[i] + level[i + 1]) for i in range(0, len(level), 2)]
    return level[0]


def stripped(tx: Transaction) -> bytes:
    """The serialization without witnesses (what the txid hashes)."""
    out = io.BytesIO()
    out.write(tx.version.to_bytes(4, "little"))
    out.write(_compact(len(tx.vin)))
    for inp in tx.vin:
        out.write(inp.serialize())
    out.write(_compact(len(tx.vout)))
    for o in tx.vout:
        out.write(o.serialize())
    out.write(tx.locktime.to_bytes(4, "little"))
    return out.getvalue()


def _compact(n: int) -> bytes:
    if n < 0xFD:
        return bytes([n])
    if n <= 0xFFFF:
        return b"\xfd" + n.to_bytes(2, "little")
    if n <= 0xFFFFFFFF:
        return b"\xfe" + n.to_bytes(4, "little")
    return b"\xff" + n.to_bytes(8, "little")


def txid_of(tx: Transaction) -> str:
    return tx.txid().hex()


def wtxid_of(tx: Transaction) -> bytes:
    """Internal byte order."""
    return dsha256(tx.serialize())


def _push_int(n: int) -> bytes:
    """``CScript() << n`` for a non-negative n: OP_0, OP_1..OP_16 or a minimal push."""
    if n == 0:
        return b"\x00"
    if n <= 16:
        return bytes([0x50 + n])
    data = n.to_bytes((n.bit_length() + 8) // 8, "little")  # room for the sign bit
    return bytes([len(data)]) + data


def btc(sats: int) -> msgspec.Raw:
    """Satoshi as bitcoind prints amounts: a JSON number with 8 decimals."""
    sign = "-" if sats < 0 else ""
    whole, frac = divmod(abs(sats), COIN)
    return msgspec.Raw(f"{sign}{whole}.{frac:08d}".encode())


def script_type(script: bytes) -> str:
    kind = Script(script).script_type()
    if kind is not None:
        return {
            "p2pkh": "pubkeyhash",
            "p2sh": "scripthash",
            "p2wpkh": "witness_v0_keyhash",
            "p2wsh": "witness_v0_scripthash",
            "p2tr": "witness_v1_taproot",
        }[kind]
    if script[:1] == b"\x6a":
        return "nulldata"
    if len(script) in (35, 67) and script[-1] == 0xAC:
        return "pubkey"
    return "nonstandard"


@dataclass(frozen=True, slots=True)
class Coin:
    value: int
    script: bytes
    height: int
    coinbase: bool


@dataclass(slots=True)
class SimBlock:
    hash: str
    height: int
    prev: str
    header: bytes
    txs: list[Transaction]
    time: int
    nonce: int
    merkle: bytes
    fees: dict[str, int] = field(default_factory=dict)
    """Fee of each non-coinbase transaction, by txid."""


Outpoint = tuple[str, int]


class BitcoindSim:
    """The node. Every public method takes the lock, so the HTTP thread and a test's
    direct calls see one consistent state."""

    def __init__(self, *, user: str = "tradewind", password: str = "regtest-secret") -> None:
        self.user = user
        self.password = password
        self._lock = threading.RLock()
        self.blocks: dict[str, SimBlock] = {}
        self.chain: list[str] = []
        """Hashes of the active chain by height."""
        self.invalid: set[str] = set()
        self.utxos: dict[Outpoint, Coin] = {}
        self._undo: dict[str, list[tuple[Outpoint, Coin]]] = {}
        self._tx_block: dict[str, str] = {}
        """txid -> hash of the active-chain block holding it (a txindex)."""
        self.mempool: dict[str, Transaction] = {}
        self._mempool_fees: dict[str, int] = {}
        self._mempool_spends: dict[Outpoint, str] = {}
        self._clock = GENESIS_TIME
        self._extra_nonce = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.fee_estimate: int | None = None
        """Sat/kvB ``estimatesmartfee`` answers (``None``: no estimate, as regtest)."""
        self.min_relay_fee = 0
        """Sat/kvB below which ``sendrawtransaction`` refuses (``min relay fee not met``);
        0 by default (bitcoind's is 1,000) so tests' hand-made fees need no care."""
        self._genesis()

    # -- chain state -----------------------------------------------------------------------

    @property
    def height(self) -> int:
        return len(self.chain) - 1

    @property
    def tip(self) -> str:
        return self.chain[-1]

    def _genesis(self) -> None:
        coinbase = Transaction(
            version=1,
            vin=[TransactionInput(NULL_TXID, 0xFFFFFFFF, Script(GENESIS_SCRIPT_SIG))],
            vout=[TransactionOutput(50 * COIN, Script(GENESIS_OUTPUT_SCRIPT))],
            locktime=0,
        )
        block = self._assemble(
            "00" * 32, 0, [coinbase], GENESIS_TIME, version=1, nonce=GENESIS_NONCE
        )
        assert block.nonce == GENESIS_NONCE and block.hash == REGTEST_GENESIS_HASH
        self.blocks[block.hash] = block
        self.chain.append(block.hash)
        self._undo[block.hash] = []  # the genesis output is not spendable (as in bitcoind)
        self._tx_block[txid_of(coinbase)] = block.hash

    def _assemble(
        self,
        prev: str,
        height: int,
        txs: list[Transaction],
        time: int,
        *,
        version: int,
        nonce: int = 0,
    ) -> SimBlock:
        """The block with the first nonce from ``nonce`` up that meets the target."""
        merkle = merkle_root([tx.hash() for tx in txs])
        target = (REGTEST_BITS & 0xFFFFFF) << (8 * ((REGTEST_BITS >> 24) - 3))
        while True:
            header = (
                version.to_bytes(4, "little")
                + bytes.fromhex(prev)[::-1]
                + merkle
                + time.to_bytes(4, "little")
                + REGTEST_BITS.to_bytes(4, "little")
                + nonce.to_bytes(4, "little")
            )
            digest = dsha256(header)
            if int.from_bytes(digest, "little") <= target:
                return SimBlock(digest[::-1].hex(), height, prev, header, txs, time, nonce, merkle)
            nonce += 1

    def _coinbase(
        self, height: int, script: bytes, fees: int, others: list[Transaction]
    ) -> Transaction:
        self._extra_nonce += 1
        sig = _push_int(height) + _push_int(self._extra_nonce)
        reward = (50 * COIN >> (height // HALVING_INTERVAL)) + fees
        witness_root = merkle_root([b"\x00" * 32] + [wtxid_of(tx) for tx in others])
        commitment = dsha256(witness_root + WITNESS_RESERVED)
        return Transaction(
            version=2,
            vin=[
                TransactionInput(
                    NULL_TXID, 0xFFFFFFFF, Script(sig), witness=Witness([WITNESS_RESERVED])
                )
            ],
            vout=[
                TransactionOutput(reward, Script(script)),
                TransactionOutput(0, Script(b"\x6a\x24\xaa\x21\xa9\xed" + commitment)),
            ],
            locktime=0,
        )

    def _spendable(self, outpoint: Outpoint, *, with_mempool: bool) -> Coin | None:
        coin = self.utxos.get(outpoint)
        if coin is None and with_mempool:
            parent = self.mempool.get(outpoint[0])
            if parent is not None and outpoint[1] < len(parent.vout):
                out = parent.vout[outpoint[1]]
                coin = Coin(out.value, out.script_pubkey.data, self.height + 1, False)
        return coin

    def _check_tx(self, tx: Transaction, *, in_mempool: bool) -> int:
        """Validate ``tx`` against the active chain (and the mempool when it is bound
        for it); its fee, or :class:`RpcFailure` as bitcoind would answer."""
        if not tx.vin:
            raise RpcFailure(RPC_VERIFY_REJECTED, "bad-txns-vin-empty")
        if not tx.vout:
            raise RpcFailure(RPC_VERIFY_REJECTED, "bad-txns-vout-empty")
        outpoints = [(inp.txid.hex(), inp.vout) for inp in tx.vin]
        if len(set(outpoints)) != len(outpoints):
            raise RpcFailure(RPC_VERIFY_REJECTED, "bad-txns-inputs-duplicate")
        if any(inp.txid == NULL_TXID for inp in tx.vin):
            raise RpcFailure(RPC_VERIFY_REJECTED, "coinbase")
        coins: list[Coin] = []
        for outpoint in outpoints:
            if in_mempool and outpoint in self._mempool_spends:
                raise RpcFailure(RPC_VERIFY_REJECTED, "txn-mempool-conflict")
            coin = self._spendable(outpoint, with_mempool=in_mempool)
            if coin is None:
                raise RpcFailure(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent")
            if coin.coinbase and self.height + 1 - coin.height < COINBASE_MATURITY:
                raise RpcFailure(
                    RPC_VERIFY_REJECTED,
                    "bad-txns-premature-spend-of-coinbase, tried to spend coinbase at depth "
                    f"{self.height + 1 - coin.height}",
                )
            coins.append(coin)
        for o in tx.vout:
            if o.value < 0 or o.value > 21_000_000 * COIN:
                raise RpcFailure(RPC_VERIFY_REJECTED, "bad-txns-vout-toolarge")
            if o.script_pubkey.data[:1] != b"\x6a" and o.value < P2WPKH_DUST:
                raise RpcFailure(RPC_VERIFY_REJECTED, "dust")
        fee = sum(c.value for c in coins) - sum(o.value for o in tx.vout)
        if fee < 0:
            raise RpcFailure(
                RPC_VERIFY_REJECTED,
                f"bad-txns-in-belowout, value in ({sum(c.value for c in coins)}) < value out",
            )
        for i, coin in enumerate(coins):
            _verify_p2wpkh(tx, i, coin)
        return fee

    def _connect(self, block: SimBlock) -> None:
        undo: list[tuple[Outpoint, Coin]] = []
        for tx in block.txs:
            txid = txid_of(tx)
            coinbase = tx.vin[0].txid == NULL_TXID
            if not coinbase:
                for inp in tx.vin:
                    outpoint = (inp.txid.hex(), inp.vout)
                    undo.append((outpoint, self.utxos.pop(outpoint)))
            for n, o in enumerate(tx.vout):
                if o.script_pubkey.data[:1] != b"\x6a":  # OP_RETURN is unspendable
                    self.utxos[(txid, n)] = Coin(
                        o.value, o.script_pubkey.data, block.height, coinbase
                    )
            self._tx_block[txid] = block.hash
        self._undo[block.hash] = undo
        self.chain.append(block.hash)
        # what the block holds leaves the mempool, and so does whatever it conflicts with
        for tx in block.txs[1:]:
            self._drop_from_mempool(txid_of(tx))
            for inp in tx.vin:
                rival = self._mempool_spends.get((inp.txid.hex(), inp.vout))
                if rival is not None:
                    self._drop_from_mempool(rival, with_descendants=True)

    def _disconnect_tip(self) -> SimBlock:
        block = self.blocks[self.chain.pop()]
        for tx in block.txs:
            txid = txid_of(tx)
            for n in range(len(tx.vout)):
                self.utxos.pop((txid, n), None)
            self._tx_block.pop(txid, None)
        for outpoint, coin in self._undo.pop(block.hash):
            self.utxos[outpoint] = coin
        return block

    def _add_to_mempool(self, tx: Transaction, fee: int) -> None:
        txid = txid_of(tx)
        self.mempool[txid] = tx
        self._mempool_fees[txid] = fee
        for inp in tx.vin:
            self._mempool_spends[(inp.txid.hex(), inp.vout)] = txid

    def _drop_from_mempool(self, txid: str, *, with_descendants: bool = False) -> None:
        tx = self.mempool.pop(txid, None)
        if tx is None:
            return
        self._mempool_fees.pop(txid, None)
        for inp in tx.vin:
            self._mempool_spends.pop((inp.txid.hex(), inp.vout), None)
        if with_descendants:
            for n in range(len(tx.vout)):
                child = self._mempool_spends.get((txid, n))
                if child is not None:
                    self._drop_from_mempool(child, with_descendants=True)

    def _mine(self, script: bytes, txs: list[Transaction], fees: list[int]) -> str:
        self._clock += 1
        height = self.height + 1
        coinbase = self._coinbase(height, script, sum(fees), txs)
        block = self._assemble(
            self.tip, height, [coinbase, *txs], self._clock, version=BLOCK_VERSION
        )
        block.fees = {txid_of(tx): fee for tx, fee in zip(txs, fees, strict=True)}
        self.blocks[block.hash] = block
        self._connect(block)
        return block.hash

    # -- the RPC methods (bitcoind's names and errors) -------------------------------------

    def rpc(self, method: str, *params: Any) -> Any:
        """Call an RPC method directly (what the HTTP server does for each request)."""
        handler: Callable[..., Any] | None = getattr(self, f"_rpc_{method}", None)
        if handler is None:
            raise RpcFailure(RPC_METHOD_NOT_FOUND, "Method not found")
        with self._lock:
            try:
                return handler(*params)
            except TypeError as exc:
                raise RpcFailure(RPC_INVALID_PARAMETER, f"bad parameters: {exc}") from None

    def _rpc_getblockcount(self) -> int:
        return self.height

    def _rpc_getbestblockhash(self) -> str:
        return self.tip

    def _rpc_getblockhash(self, height: int) -> str:
        if not isinstance(height, int) or not 0 <= height <= self.height:
            raise RpcFailure(RPC_INVALID_PARAMETER, "Block height out of range")
        return self.chain[height]

    def _rpc_getblockchaininfo(self) -> dict[str, Any]:
        return {
            "chain": "regtest",
            "blocks": self.height,
            "headers": self.height,
            "bestblockhash": self.tip,
            "difficulty": msgspec.Raw(b"4.656542373906925e-10"),
            "time": self.blocks[self.tip].time,
            "verificationprogress": 1,
            "initialblockdownload": False,
            "chainwork": f"{2 * (self.height + 1):064x}",
            "pruned": False,
            "warnings": "",
        }

    def _rpc_getblock(self, block_hash: str, verbosity: int = 1) -> Any:
        block = self.blocks.get(block_hash) if isinstance(block_hash, str) else None
        if block is None:
            raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
        if verbosity == 0:
            raw = block.header + _compact(len(block.txs))
            return (raw + b"".join(tx.serialize() for tx in block.txs)).hex()
        active = self.height >= block.height and self.chain[block.height] == block.hash
        answer: dict[str, Any] = {
            "hash": block.hash,
            "confirmations": self.height - block.height + 1 if active else -1,
            "height": block.height,
            "version": int.from_bytes(block.header[:4], "little"),
            "versionHex": f"{int.from_bytes(block.header[:4], 'little'):08x}",
            "merkleroot": block.merkle[::-1].hex(),
            "time": block.time,
            "mediantime": block.time,
            "nonce": block.nonce,
            "bits": f"{REGTEST_BITS:08x}",
            "difficulty": msgspec.Raw(b"4.656542373906925e-10"),
            "chainwork": f"{2 * (block.height + 1):064x}",
            "nTx": len(block.txs),
            "strippedsize": 80 + sum(len(stripped(tx)) for tx in block.txs),
            "size": 80 + sum(len(tx.serialize()) for tx in block.txs),
        }
        answer["weight"] = answer["strippedsize"] * 3 + answer["size"]
        if block.height > 0:
            answer["previousblockhash"] = block.prev
        if active and block.height < self.height:
            answer["nextblockhash"] = self.chain[block.height + 1]
        if verbosity == 1:
            answer["tx"] = [txid_of(tx) for tx in block.txs]
        else:
            answer["tx"] = [self._decode(tx, block.fees.get(txid_of(tx))) for tx in block.txs]
        return answer

    def _rpc_getrawtransaction(self, txid: str, verbose: bool | int = False) -> Any:
        tx = self.mempool.get(txid)
        block = None
        if tx is None and txid in self._tx_block:
            block = self.blocks[self._tx_block[txid]]
            tx = next(t for t in block.txs if txid_of(t) == txid)
        if tx is None:
            raise RpcFailure(
                RPC_INVALID_ADDRESS_OR_KEY,
                "No such mempool or blockchain transaction. Use gettransaction for wallet "
                "transactions.",
            )
        if not verbose:
            return tx.serialize().hex()
        answer = self._decode(tx, None)
        if block is not None:
            answer["blockhash"] = block.hash
            answer["confirmations"] = self.height - block.height + 1
            answer["time"] = answer["blocktime"] = block.time
        return answer

    def _rpc_getblockheader(self, block_hash: str, verbose: bool = True) -> Any:
        block = self.blocks.get(block_hash) if isinstance(block_hash, str) else None
        if block is None:
            raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
        if not verbose:
            return block.header.hex()
        answer = self._rpc_getblock(block_hash, 1)
        for key in ("tx", "strippedsize", "size", "weight"):
            answer.pop(key, None)
        return answer

    def _rpc_scantxoutset(self, action: str, scanobjects: list[Any] | None = None) -> Any:
        """bitcoind's UTXO-set scan (no wallet needed) for ``addr(...)`` and ``raw(...)``
        descriptors: the chain state's coins only, never the mempool's."""
        if action in ("abort", "status"):
            return False if action == "abort" else None
        if action != "start":
            raise RpcFailure(RPC_INVALID_PARAMETER, "Invalid action, choose start, abort or status")
        if not isinstance(scanobjects, list):
            raise RpcFailure(RPC_INVALID_PARAMETER, "scanobjects argument is required for start")
        wanted: dict[bytes, str] = {}
        for item in scanobjects:
            desc = item.get("desc") if isinstance(item, dict) else item
            if not isinstance(desc, str):
                raise RpcFailure(
                    RPC_INVALID_PARAMETER, "Scan object needs to be a string or object"
                )
            body = desc.split("#", 1)[0]
            if body.startswith("addr(") and body.endswith(")"):
                wanted[_address_script(body[5:-1])] = body
            elif body.startswith("raw(") and body.endswith(")"):
                try:
                    wanted[bytes.fromhex(body[4:-1])] = body
                except ValueError:
                    raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, "Invalid descriptor") from None
            else:
                raise RpcFailure(
                    RPC_INVALID_ADDRESS_OR_KEY, f"the simulator scans addr() and raw() only: {desc}"
                )
        unspents: list[dict[str, Any]] = []
        total = 0
        for (txid, vout), coin in sorted(self.utxos.items()):
            if coin.script not in wanted:
                continue
            total += coin.value
            unspents.append(
                {
                    "txid": txid,
                    "vout": vout,
                    "scriptPubKey": coin.script.hex(),
                    "desc": wanted[coin.script],
                    "amount": btc(coin.value),
                    "coinbase": coin.coinbase,
                    "height": coin.height,
                    "blockhash": self.chain[coin.height],
                }
            )
        return {
            "success": True,
            "txouts": len(self.utxos),
            "height": self.height,
            "bestblock": self.tip,
            "unspents": unspents,
            "total_amount": btc(total),
        }

    def _rpc_estimatesmartfee(self, conf_target: int, estimate_mode: str = "conservative") -> Any:
        """``fee_estimate`` (sat/kvB) when a test set one; else what a fresh regtest node
        answers: no data."""
        if not isinstance(conf_target, int) or not 1 <= conf_target <= 1008:
            raise RpcFailure(
                RPC_INVALID_PARAMETER, "Invalid conf_target, must be between 1 and 1008"
            )
        if self.fee_estimate is None:
            return {"errors": ["Insufficient data or no feerate found"], "blocks": 0}
        return {"feerate": btc(self.fee_estimate), "blocks": conf_target}

    def _rpc_getrawmempool(self) -> list[str]:
        return list(self.mempool)

    def _rpc_sendrawtransaction(self, hexstring: str, maxfeerate: object = None) -> str:
        tx = _parse_tx(hexstring)
        txid = txid_of(tx)
        if txid in self.mempool:
            return txid
        if txid in self._tx_block:
            raise RpcFailure(RPC_VERIFY_ALREADY_IN_CHAIN, "Transaction already in block chain")
        fee = self._check_tx(tx, in_mempool=True)
        raw = tx.serialize()
        vsize = (len(stripped(tx)) * 3 + len(raw) + 3) // 4
        if fee * 1_000 < self.min_relay_fee * vsize:
            raise RpcFailure(
                RPC_VERIFY_REJECTED,
                f"min relay fee not met, {fee} < {-(-self.min_relay_fee * vsize // 1_000)}",
            )
        self._add_to_mempool(tx, fee)
        return txid

    def _rpc_generatetoaddress(self, nblocks: int, address: str) -> list[str]:
        script = _address_script(address)
        mined: list[str] = []
        for _ in range(nblocks):
            txs = list(self.mempool.values())
            fees = [self._mempool_fees[txid_of(tx)] for tx in txs]
            mined.append(self._mine(script, txs, fees))
        return mined

    def _rpc_generateblock(self, output: str, transactions: list[str]) -> dict[str, str]:
        """A block holding exactly ``transactions`` (mempool txids or raw transactions),
        in order; a raw one may conflict with the mempool (the conflict is evicted)."""
        script = _address_script(output)
        txs: list[Transaction] = []
        fees: list[int] = []
        spent: set[Outpoint] = set()
        for item in transactions:
            if item in self.mempool:
                tx, fee = self.mempool[item], self._mempool_fees[item]
            else:
                tx = _parse_tx(item)
                fee = self._check_tx(tx, in_mempool=False)
            for inp in tx.vin:
                outpoint = (inp.txid.hex(), inp.vout)
                if outpoint in spent:
                    raise RpcFailure(RPC_VERIFY_ERROR, "bad-txns-inputs-missingorspent")
                spent.add(outpoint)
            txs.append(tx)
            fees.append(fee)
        return {"hash": self._mine(script, txs, fees)}

    def _rpc_invalidateblock(self, block_hash: str) -> None:
        block = self.blocks.get(block_hash)
        if block is None:
            raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, "Block not found")
        if block.height == 0:
            raise RpcFailure(RPC_MISC_ERROR, "Cannot invalidate the genesis block")
        self.invalid.add(block_hash)
        if block.height > self.height or self.chain[block.height] != block_hash:
            return  # not on the active chain: nothing to disconnect
        dropped: list[SimBlock] = []
        while self.height >= block.height:
            dropped.append(self._disconnect_tip())
        self.invalid.update(b.hash for b in dropped)
        # the mempool is rebuilt as bitcoind does after a reorg: the disconnected blocks'
        # transactions first (in chain order, so parents come before children), then the
        # old mempool; whatever no longer validates (a spent coinbase of a dropped block,
        # one not mature any more) is dropped
        waiting = [tx for old in reversed(dropped) for tx in old.txs[1:]]
        waiting += list(self.mempool.values())
        self.mempool.clear()
        self._mempool_fees.clear()
        self._mempool_spends.clear()
        for tx in waiting:
            try:
                self._add_to_mempool(tx, self._check_tx(tx, in_mempool=True))
            except RpcFailure:
                continue

    def _decode(self, tx: Transaction, fee: int | None) -> dict[str, Any]:
        raw = tx.serialize()
        base = stripped(tx)
        weight = len(base) * 3 + len(raw)
        vin: list[dict[str, Any]] = []
        for inp in tx.vin:
            item: dict[str, Any]
            if inp.txid == NULL_TXID:
                item = {"coinbase": inp.script_sig.data.hex()}
            else:
                item = {
                    "txid": inp.txid.hex(),
                    "vout": inp.vout,
                    "scriptSig": {"asm": "", "hex": inp.script_sig.data.hex()},
                }
            if inp.witness.items:
                item["txinwitness"] = [w.hex() for w in inp.witness.items]
            item["sequence"] = inp.sequence
            vin.append(item)
        vout: list[dict[str, Any]] = []
        for n, o in enumerate(tx.vout):
            spk: dict[str, Any] = {
                "hex": o.script_pubkey.data.hex(),
                "type": script_type(o.script_pubkey.data),
            }
            with suppress(ValueError):
                spk["address"] = o.script_pubkey.address(NETWORKS["regtest"])
            vout.append({"value": btc(o.value), "n": n, "scriptPubKey": spk})
        answer: dict[str, Any] = {
            "txid": txid_of(tx),
            "hash": wtxid_of(tx)[::-1].hex(),
            "version": tx.version,
            "size": len(raw),
            "vsize": (weight + 3) // 4,
            "weight": weight,
            "locktime": tx.locktime,
            "vin": vin,
            "vout": vout,
        }
        if fee is not None:
            answer["fee"] = btc(fee)
        answer["hex"] = raw.hex()
        return answer

    # -- helpers for tests -------------------------------------------------------------------

    def coins_of(self, script: bytes) -> list[tuple[Outpoint, Coin]]:
        """Mature, confirmed outputs paying ``script`` that no mempool transaction
        spends (what ``scantxoutset`` would list, less the mempool's spends)."""
        with self._lock:
            return [
                (op, coin)
                for op, coin in self.utxos.items()
                if coin.script == script
                and op not in self._mempool_spends
                and not (coin.coinbase and self.height + 1 - coin.height < COINBASE_MATURITY)
            ]

    def block_of(self, txid: str) -> str | None:
        with self._lock:
            return self._tx_block.get(txid)

    # -- HTTP ------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the server first"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self, host: str = "127.0.0.1", port: int = 0) -> BitcoindSim:
        self._server = ThreadingHTTPServer((host, port), _handler_for(self))
        self._server.daemon_threads = True
        # a short poll: stop()'s shutdown waits for the loop's next poll (0.5 s by default)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.02,), name="bitcoind-sim", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @contextmanager
    def running(self) -> Iterator[BitcoindSim]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def answer(self, body: bytes) -> tuple[int, bytes]:
        """One HTTP request body to (status, response body), as bitcoind answers."""
        try:
            request = json.loads(body, parse_float=Decimal)
        except ValueError:
            return 500, _ENCODER.encode(_error(None, -32700, "Parse error"))
        if isinstance(request, list):
            return 200, _ENCODER.encode([self._one(r)[1] for r in request])
        status, reply = self._one(request)
        return status, _ENCODER.encode(reply)

    def _one(self, request: object) -> tuple[int, dict[str, Any]]:
        if not isinstance(request, dict) or not isinstance(request.get("method"), str):
            return 400, _error(None, RPC_INVALID_REQUEST, "Invalid Request object")
        rid = request.get("id")
        params = request.get("params") or []
        if not isinstance(params, list):
            return 400, _error(rid, RPC_INVALID_REQUEST, "Params must be an array")
        try:
            result = self.rpc(request["method"], *params)
        except RpcFailure as exc:
            status = 404 if exc.code == RPC_METHOD_NOT_FOUND else 500
            return status, _error(rid, exc.code, exc.message)
        return 200, {"result": result, "error": None, "id": rid}


def _error(rid: object, code: int, message: str) -> dict[str, Any]:
    return {"result": None, "error": {"code": code, "message": message}, "id": rid}


def _parse_tx(hexstring: object) -> Transaction:
    try:
        raw = bytes.fromhex(str(hexstring))
        tx = Transaction.parse(raw)
        if tx.serialize() != raw:
            raise ValueError("trailing or non-canonical bytes")
    except Exception:
        raise RpcFailure(
            RPC_DESERIALIZATION_ERROR,
            "TX decode failed. Make sure the tx has at least one input.",
        ) from None
    return tx


def _address_script(address: object) -> bytes:
    try:
        canonical = validate_bitcoin(str(address), "regtest")
        return bytes(address_to_scriptpubkey(canonical).data)
    except (AddressError, ValueError):
        raise RpcFailure(RPC_INVALID_ADDRESS_OR_KEY, "Error: Invalid address") from None


def _script_failed(reason: str) -> RpcFailure:
    return RpcFailure(RPC_VERIFY_REJECTED, f"mandatory-script-verify-flag-failed ({reason})")


def _verify_p2wpkh(tx: Transaction, index: int, coin: Coin) -> None:
    """Input ``index`` spends ``coin`` (P2WPKH) with a valid BIP 143 signature."""
    if Script(coin.script).script_type() != "p2wpkh":
        raise RpcFailure(RPC_VERIFY_REJECTED, "the simulator spends P2WPKH outputs only")
    inp = tx.vin[index]
    if inp.script_sig.data:
        raise _script_failed("Witness requires empty scriptSig")
    items = inp.witness.items
    if len(items) != 2:
        raise _script_failed("Witness program hash mismatch")
    sig, pubkey = items
    if len(pubkey) != 33 or hashes.hash160(pubkey) != coin.script[2:]:
        raise _script_failed("Witness program hash mismatch")
    if not sig:
        raise _script_failed("Signature must be zero for failed CHECK(MULTI)SIG operation")
    sighash_type = sig[-1]
    try:
        if sighash_type & ~SIGHASH.ANYONECANPAY == SIGHASH.DEFAULT:
            raise ValueError("SIGHASH_DEFAULT is taproot's only")
        SIGHASH.check(sighash_type)
    except Exception:
        raise _script_failed("Signature hash type missing or not understood") from None
    digest = tx.sighash_segwit(
        index, p2pkh(ec.PublicKey.parse(pubkey)), coin.value, sighash=sighash_type
    )
    try:
        ok = coincurve.PublicKey(pubkey).verify(sig[:-1], digest, hasher=None)
    except (ValueError, TypeError):
        ok = False
    if not ok:  # also a high-S signature: libsecp256k1 verifies low S only
        raise _script_failed("Signature must be zero for failed CHECK(MULTI)SIG operation")


def _handler_for(sim: BitcoindSim) -> type[BaseHTTPRequestHandler]:
    expected = "Basic " + base64.b64encode(f"{sim.user}:{sim.password}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body go in two writes: no 40 ms stall

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length)
            if not hmac.compare_digest(self.headers.get("authorization", ""), expected):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="jsonrpc"')
                self.send_header("content-length", "0")
                self.end_headers()
                return
            status, reply = sim.answer(body)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class SimWallet:
    """One P2WPKH key on the simulator's regtest chain: builds and signs transactions
    with embit (BIP 143), submits them like any client."""

    def __init__(self, sim: BitcoindSim, secret: bytes) -> None:
        self.sim = sim
        self.key = ec.PrivateKey(secret)
        self.pubkey = self.key.get_public_key()
        self.script = bytes(p2wpkh(self.pubkey).data)
        self.address = p2wpkh(self.pubkey).address(NETWORKS["regtest"])

    def fund(self, blocks: int = 1) -> None:
        """Mine ``blocks`` coinbases to this wallet and enough blocks on top to spend them."""
        self.sim.rpc("generatetoaddress", blocks, self.address)
        self.sim.rpc("generatetoaddress", COINBASE_MATURITY, self.address)

    def balance(self) -> int:
        return sum(c.value for _, c in self.sim.coins_of(self.script))

    def build(
        self,
        outputs: list[tuple[str, int]],
        *,
        fee: int = 1_000,
        coins: list[tuple[Outpoint, Coin]] | None = None,
        sign_value: int | None = None,
    ) -> Transaction:
        """A signed transaction paying ``outputs`` (address, satoshi) with change back to
        this wallet. ``sign_value`` signs a wrong input amount (BIP 143 commits to it)."""
        want = sum(v for _, v in outputs) + fee
        chosen: list[tuple[Outpoint, Coin]] = []
        for item in coins if coins is not None else self.sim.coins_of(self.script):
            chosen.append(item)
            if sum(c.value for _, c in chosen) >= want:
                break
        total = sum(c.value for _, c in chosen)
        if total < want:
            raise ValueError(f"the wallet holds {total} sat, {want} needed")
        vout = [
            TransactionOutput(value, address_to_scriptpubkey(address)) for address, value in outputs
        ]
        if total - want >= P2WPKH_DUST:
            vout.append(TransactionOutput(total - want, Script(self.script)))
        tx = Transaction(
            version=2,
            vin=[TransactionInput(bytes.fromhex(op[0]), op[1]) for op, _ in chosen],
            vout=vout,
            locktime=0,
        )
        script_code = p2pkh(self.pubkey)
        for i, (_, coin) in enumerate(chosen):
            value = coin.value if sign_value is None else sign_value
            digest = tx.sighash_segwit(i, script_code, value, sighash=SIGHASH.ALL)
            signature = self.key.sign(digest).serialize() + bytes([SIGHASH.ALL])
            tx.vin[i].witness = Witness([signature, self.pubkey.sec()])
        return tx

    def send(self, outputs: list[tuple[str, int]], *, fee: int = 1_000) -> str:
        """Build, sign and submit; the txid."""
        return str(
            self.sim.rpc("sendrawtransaction", self.build(outputs, fee=fee).serialize().hex())
        )


def main() -> None:
    parser = argparse.ArgumentParser(description="A bitcoind regtest simulator (JSON-RPC).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=18443)
    parser.add_argument("--user", default="tradewind")
    parser.add_argument("--password", default="regtest-secret")
    args = parser.parse_args()
    sim = BitcoindSim(user=args.user, password=args.password).start(args.host, args.port)
    print(f"bitcoind simulator on {sim.url} (user {args.user}); Ctrl-C stops it", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        sim.stop()


if __name__ == "__main__":
    main()
