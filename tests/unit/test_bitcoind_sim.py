"""The bitcoind simulator holds what a node holds: regtest's real genesis block, headers
that hash and chain like bitcoind's, and only transactions whose P2WPKH signatures
verify (BIP 143: the signature commits to the amount spent) and whose inputs are
unspent. The watcher's Bitcoin tests are only as good as this."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from embit.transaction import Transaction

from tests.support.bitcoind_sim import (
    COIN,
    REGTEST_BITS,
    REGTEST_GENESIS_HASH,
    BitcoindSim,
    RpcFailure,
    SimWallet,
    dsha256,
    merkle_root,
)

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
ALICE = b"\x01" * 32
BOB = b"\x02" * 32


@pytest.fixture
def sim() -> BitcoindSim:
    return BitcoindSim()


@pytest.fixture
def alice(sim: BitcoindSim) -> SimWallet:
    wallet = SimWallet(sim, ALICE)
    wallet.fund(1)  # one mature 50 BTC coinbase
    return wallet


def refused(sim: BitcoindSim, tx: Transaction | str) -> RpcFailure:
    raw = tx if isinstance(tx, str) else tx.serialize().hex()
    with pytest.raises(RpcFailure) as info:
        sim.rpc("sendrawtransaction", raw)
    assert sim.rpc("getrawmempool") == []
    return info.value


def over_json(sim: BitcoindSim, method: str, *params: Any) -> Any:
    body = json.dumps({"id": 1, "method": method, "params": list(params)}).encode()
    status, raw = sim.answer(body)
    assert status == 200
    return json.loads(raw, parse_float=Decimal)["result"]


def test_the_genesis_block_is_regtests_own(sim: BitcoindSim) -> None:
    assert sim.rpc("getblockhash", 0) == REGTEST_GENESIS_HASH
    assert sim.rpc("getblockchaininfo")["chain"] == "regtest"


def test_blocks_chain_by_hash_with_real_headers_and_merkle_roots(
    sim: BitcoindSim, alice: SimWallet
) -> None:
    bob = SimWallet(sim, BOB)
    alice.send([(bob.address, 10 * COIN)])
    alice.send([(bob.address, 2 * COIN)])  # spends the first one's change (mempool)
    (tip,) = sim.rpc("generatetoaddress", 1, bob.address)
    assert sim.rpc("getblockcount") == 102 and sim.rpc("getbestblockhash") == tip
    target = (REGTEST_BITS & 0xFFFFFF) << (8 * ((REGTEST_BITS >> 24) - 3))
    previous = None
    for height in range(sim.height + 1):
        block = sim.rpc("getblock", sim.rpc("getblockhash", height), 2)
        raw = bytes.fromhex(sim.rpc("getblock", block["hash"], 0))
        header = raw[:80]
        assert dsha256(header)[::-1].hex() == block["hash"]
        assert int.from_bytes(dsha256(header), "little") <= target
        assert header[4:36][::-1].hex() == (previous or "00" * 32)
        assert block.get("previousblockhash") == previous
        txids = [bytes.fromhex(tx["txid"])[::-1] for tx in block["tx"]]
        assert merkle_root(txids)[::-1].hex() == block["merkleroot"] == header[36:68][::-1].hex()
        previous = block["hash"]
    last = over_json(sim, "getblock", tip, 2)  # as a client reads it
    assert last["nTx"] == 3 and last["confirmations"] == 1
    first = last["tx"][1]
    assert first["fee"] == Decimal("0.00001000")
    assert sum(v["value"] for v in first["vout"]) == Decimal(50) - first["fee"]
    # both payments are confirmed; bob's coinbase of that block is not spendable yet
    assert bob.balance() == 12 * COIN


def test_a_valid_p2wpkh_spend_is_accepted_once(sim: BitcoindSim, alice: SimWallet) -> None:
    bob = SimWallet(sim, BOB)
    tx = alice.build([(bob.address, COIN)], fee=500)
    txid = sim.rpc("sendrawtransaction", tx.serialize().hex())
    assert txid == tx.txid().hex() and sim.rpc("getrawmempool") == [txid]
    assert sim.rpc("sendrawtransaction", tx.serialize().hex()) == txid  # idempotent
    decoded = sim.rpc("getrawtransaction", txid, True)
    assert decoded["vout"][0]["scriptPubKey"]["address"] == bob.address
    assert decoded["vout"][0]["scriptPubKey"]["type"] == "witness_v0_keyhash"
    sim.rpc("generatetoaddress", 1, bob.address)
    with pytest.raises(RpcFailure) as info:
        sim.rpc("sendrawtransaction", tx.serialize().hex())
    assert info.value.code == -27


def test_a_corrupted_signature_is_refused(sim: BitcoindSim, alice: SimWallet) -> None:
    tx = alice.build([(SimWallet(sim, BOB).address, COIN)])
    sig = bytearray(tx.vin[0].witness.items[0])
    sig[-2] ^= 0x01  # the last byte of s
    tx.vin[0].witness.items[0] = bytes(sig)
    failure = refused(sim, tx)
    assert failure.code == -26 and "mandatory-script-verify-flag-failed" in failure.message


def test_a_signature_over_another_amount_is_refused(sim: BitcoindSim, alice: SimWallet) -> None:
    """BIP 143 signs the amount of the coin spent: a signer lied to about it (a fee
    attack on hardware wallets) produces a signature the node refuses."""
    coin = sim.coins_of(alice.script)[0]
    tx = alice.build([(SimWallet(sim, BOB).address, COIN)], sign_value=coin[1].value - 1)
    assert refused(sim, tx).code == -26


def test_a_high_s_signature_is_refused(sim: BitcoindSim, alice: SimWallet) -> None:
    tx = alice.build([(SimWallet(sim, BOB).address, COIN)])
    sig = tx.vin[0].witness.items[0]
    r, s = _der_decode(sig[:-1])
    tx.vin[0].witness.items[0] = _der_encode(r, SECP256K1_N - s) + sig[-1:]
    assert "mandatory-script-verify-flag-failed" in refused(sim, tx).message


def test_anothers_key_cannot_spend_the_coin(sim: BitcoindSim, alice: SimWallet) -> None:
    mallory = SimWallet(sim, b"\x03" * 32)
    coin = sim.coins_of(alice.script)[0]
    tx = mallory.build([(mallory.address, COIN)], coins=[coin])
    assert "Witness program hash mismatch" in refused(sim, tx).message


def test_a_double_spend_is_refused_in_the_mempool_and_after_mining(
    sim: BitcoindSim, alice: SimWallet
) -> None:
    bob = SimWallet(sim, BOB)
    coin = sim.coins_of(alice.script)[0]
    first = alice.build([(bob.address, COIN)], coins=[coin])
    second = alice.build([(alice.address, COIN)], coins=[coin])
    sim.rpc("sendrawtransaction", first.serialize().hex())
    with pytest.raises(RpcFailure, match="txn-mempool-conflict") as info:
        sim.rpc("sendrawtransaction", second.serialize().hex())
    assert info.value.code == -26
    sim.rpc("generatetoaddress", 1, bob.address)
    with pytest.raises(RpcFailure, match="bad-txns-inputs-missingorspent") as info:
        sim.rpc("sendrawtransaction", second.serialize().hex())
    assert info.value.code == -25


def test_immature_coinbases_overspends_dust_and_garbage_are_refused(sim: BitcoindSim) -> None:
    wallet = SimWallet(sim, ALICE)
    sim.rpc("generatetoaddress", 99, wallet.address)  # block 100 may not spend block 1's
    coinbase = next(
        (op, c) for op, c in sim.utxos.items() if c.script == wallet.script and c.height == 1
    )
    premature = wallet.build([(wallet.address, COIN)], coins=[coinbase])
    assert "premature-spend-of-coinbase" in refused(sim, premature).message
    sim.rpc("generatetoaddress", 1, wallet.address)
    overspend = wallet.build([(wallet.address, COIN)], coins=[coinbase])
    overspend.vout[0].value = 51 * COIN
    assert "bad-txns-in-belowout" in refused(sim, overspend).message  # (signature aside)
    dust = wallet.build([(wallet.address, 293)], coins=[coinbase])
    assert refused(sim, dust).message == "dust"
    assert refused(sim, "00ff").code == -22


def test_invalidateblock_disconnects_and_returns_transactions_to_the_mempool(
    sim: BitcoindSim, alice: SimWallet
) -> None:
    bob = SimWallet(sim, BOB)
    spent = sim.coins_of(alice.script)[0]
    txid = str(
        sim.rpc(
            "sendrawtransaction",
            alice.build([(bob.address, COIN)], coins=[spent]).serialize().hex(),
        )
    )
    old_hash, _ = sim.rpc("generatetoaddress", 2, bob.address)
    height = sim.rpc("getblock", old_hash)["height"]
    sim.rpc("invalidateblock", old_hash)
    assert sim.rpc("getblockcount") == height - 1
    assert sim.rpc("getrawmempool") == [txid]
    assert sim.rpc("getblock", old_hash)["confirmations"] == -1
    with pytest.raises(RpcFailure, match="out of range"):
        sim.rpc("getblockhash", height)
    (new_hash,) = sim.rpc("generatetoaddress", 1, bob.address)
    assert new_hash != old_hash and sim.rpc("getblockhash", height) == new_hash
    assert sim.block_of(txid) == new_hash
    assert spent[0] not in sim.utxos and (txid, 0) in sim.utxos
    sim.rpc("invalidateblock", new_hash)  # the spent coin is unspent again on the chain
    assert sim.utxos[spent[0]] == spent[1] and (txid, 0) not in sim.utxos
    with pytest.raises(RpcFailure, match="Block not found"):
        sim.rpc("invalidateblock", "ab" * 32)


def test_the_json_rpc_envelope_is_bitcoinds(sim: BitcoindSim) -> None:
    def call(body: Any) -> tuple[int, Any]:
        status, raw = sim.answer(json.dumps(body).encode())
        return status, json.loads(raw)

    status, reply = call({"jsonrpc": "1.0", "id": 7, "method": "getblockcount", "params": []})
    assert (status, reply) == (200, {"result": 0, "error": None, "id": 7})
    status, reply = call({"id": 8, "method": "getwalletinfo", "params": []})
    assert status == 404 and reply["error"] == {"code": -32601, "message": "Method not found"}
    status, reply = call({"id": 9, "method": "getblockhash", "params": [5]})
    assert status == 500 and reply["error"]["code"] == -8
    status, reply = call(
        [{"id": 1, "method": "getblockcount"}, {"id": 2, "method": "getblockhash", "params": [0]}]
    )
    assert status == 200 and [r["result"] for r in reply] == [0, REGTEST_GENESIS_HASH]
    assert sim.answer(b"{not json")[0] == 500


def _der_decode(der: bytes) -> tuple[int, int]:
    assert der[0] == 0x30
    r_len = der[3]
    r = int.from_bytes(der[4 : 4 + r_len], "big")
    s_len = der[5 + r_len]
    s = int.from_bytes(der[6 + r_len : 6 + r_len + s_len], "big")
    return r, s


def _der_encode(r: int, s: int) -> bytes:
    def part(n: int) -> bytes:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        if raw[0] & 0x80:
            raw = b"\x00" + raw
        return b"\x02" + bytes([len(raw)]) + raw

    body = part(r) + part(s)
    return b"\x30" + bytes([len(body)]) + body
