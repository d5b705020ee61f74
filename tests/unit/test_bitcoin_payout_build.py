"""How a Bitcoin payout is built and encoded (ADR 0029), against a node that answers
``scantxoutset`` and ``estimatesmartfee`` from a table:

- coins are taken largest first, reserved and immature ones never; the change goes back
  to the hot wallet, or is left to the fee when it would be dust; the fee is the rate
  asked times the vsize (signatures at their largest), and the signed transaction is
  never bigger than that vsize;
- the node's estimate is used (BTC/kvB, exactly), else the fallback, never below
  1 sat/vB; a wallet too short raises ``HotWalletShort``, an amount below the
  destination's dust limit ``PayoutImpossible``;
- the codec refuses other shapes, and a transaction signed from its digests verifies
  input by input with libsecp256k1 (BIP 143 through embit, checked with coincurve).
"""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any, cast

import coincurve
import pytest
from embit.script import p2pkh_from_p2wpkh
from embit.transaction import SIGHASH, Transaction

from tests.support.bitcoind_sim import stripped
from tradewind.adapters.chain.bitcoin_tx import BitcoinTxCodec, dust_limit, script_of
from tradewind.adapters.chain.bitcoind_payout import BitcoindPayoutChain
from tradewind.adapters.hsm.pkcs11_custody import normalise
from tradewind.services.funding.withdrawal_ports import HotWalletShort, PayoutImpossible

CODEC = BitcoinTxCodec("regtest")
KEY = coincurve.PrivateKey(b"\x11" * 32)
HOT = CODEC.sender_of(KEY.public_key.format(compressed=False))
TO = BitcoinTxCodec("regtest").sender_of(
    coincurve.PrivateKey(b"\x22" * 32).public_key.format(compressed=False)
)
TXIDS = [f"{n:02x}" * 32 for n in range(1, 9)]


class Node:
    def __init__(self, coins: list[dict[str, Any]], feerate: object = None) -> None:
        self.coins = coins
        self.feerate = feerate

    async def call(self, method: str, *params: Any) -> Any:
        if method == "estimatesmartfee":
            if self.feerate is None:
                return {"errors": ["Insufficient data or no feerate found"], "blocks": 0}
            return {"feerate": self.feerate, "blocks": params[0]}
        assert method == "scantxoutset" and params[1] == [f"addr({HOT})"]
        return {"success": True, "height": 500, "unspents": self.coins}


def coin(n: int, sats: int, *, height: int = 300, coinbase: bool = False) -> dict[str, Any]:
    btc = Decimal(sats).scaleb(-8)
    return {"txid": TXIDS[n], "vout": n, "amount": btc, "height": height, "coinbase": coinbase}


def chain(node: Node, fallback: int = 10) -> BitcoindPayoutChain:
    return BitcoindPayoutChain(cast(Any, node), fallback_fee_rate=fallback)


def build(node: Node, value: int, reserved: frozenset[str] = frozenset()) -> dict[str, Any]:
    return dict(asyncio.run(chain(node).build_spend(HOT, TO, value, reserved)))


def fee_of(tx: dict[str, Any]) -> int:
    return sum(i["value"] for i in tx["inputs"]) - sum(o["value"] for o in tx["outputs"])


def test_largest_coins_first_reserved_and_immature_ones_never_change_back() -> None:
    node = Node(
        [
            coin(0, 5_000_000),
            coin(1, 90_000_000, coinbase=True, height=450),  # 51 deep: immature
            coin(2, 40_000_000),
            coin(3, 30_000_000),
            coin(4, 20_000_000),
        ]
    )
    tx = build(node, 45_000_000, frozenset({f"{TXIDS[2]}:2"}))
    assert [(i["txid"], i["vout"]) for i in tx["inputs"]] == [(TXIDS[3], 3), (TXIDS[4], 4)]
    assert tx["outputs"][0] == {"address": TO, "value": 45_000_000}
    change = tx["outputs"][1]
    assert change["address"] == HOT
    terms = CODEC.utxo_terms(tx)
    assert terms.fee == fee_of(tx) == -(-terms.vsize * 10_000 // 1_000)  # 10 sat/vB fallback
    assert change["value"] == 50_000_000 - 45_000_000 - terms.fee


def test_a_change_below_dust_is_left_to_the_fee() -> None:
    node = Node([coin(0, 1_000_000)])
    alone = CODEC.utxo_terms(
        {
            "version": 2,
            "locktime": 0,
            "inputs": [{"txid": TXIDS[0], "vout": 0, "address": HOT, "value": 1_000_000}],
            "outputs": [{"address": TO, "value": 1}],
        }
    ).vsize
    value = 1_000_000 - alone * 10 - 200  # 200 sat left: less than a change output is worth
    tx = build(node, value)
    assert tx["outputs"] == [{"address": TO, "value": value}]
    assert fee_of(tx) == alone * 10 + 200


def test_the_fee_rate_is_the_estimate_or_the_fallback_never_below_one_sat_per_vbyte() -> None:
    assert asyncio.run(chain(Node([], Decimal("0.00012345"))).fee_rate()) == 12_345
    assert asyncio.run(chain(Node([]), fallback=7).fee_rate()) == 7_000
    assert asyncio.run(chain(Node([], Decimal("0.00000100"))).fee_rate()) == 1_000


def test_a_short_wallet_waits_and_dust_is_never_paid() -> None:
    with pytest.raises(HotWalletShort, match="30000000 sat spendable in 2 coins"):
        build(Node([coin(0, 10_000_000), coin(1, 20_000_000)]), 30_000_000)
    with pytest.raises(HotWalletShort):
        build(Node([]), 1_000)
    assert dust_limit(script_of(TO)) == 294
    with pytest.raises(PayoutImpossible, match="dust"):
        build(Node([coin(0, 10_000_000)]), 293)


def test_the_codec_refuses_other_shapes() -> None:
    good = build(Node([coin(0, 10_000_000)]), 1_000_000)
    other_chain = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4"
    bad: list[dict[str, Any]] = [
        {**good, "memo": "x"},
        {**good, "version": 1},
        {**good, "locktime": 5},
        {**good, "inputs": good["inputs"] * 2},
        {**good, "outputs": [*good["outputs"], good["outputs"][0]]},
        {**good, "outputs": [{"address": other_chain, "value": 1_000_000}]},
        {**good, "outputs": [{"address": TO, "value": 0}]},
        {**good, "outputs": [{"address": TO, "value": 20_000_000}]},  # more than the inputs
        {**good, "inputs": [{**good["inputs"][0], "txid": "AB" * 32}]},
    ]
    for tx in bad:
        with pytest.raises(ValueError):
            CODEC.utxo_terms(tx)


def test_a_transaction_signed_from_its_digests_verifies_input_by_input() -> None:
    tx = build(Node([coin(0, 3_000_000), coin(1, 2_000_000), coin(2, 1_000_000)]), 4_500_000)
    assert len(tx["inputs"]) == 2
    digests = CODEC.digests(tx)
    signatures = []
    for digest in digests:
        der = KEY.sign(digest, hasher=None)
        r, s = _rs(der)
        signatures.append(normalise(r, s))
    signed = CODEC.assemble_signed(tx, signatures, KEY.public_key.format(compressed=False))
    parsed = Transaction.parse(bytes.fromhex(signed.raw))
    assert parsed.txid().hex() == signed.txid
    weight = len(stripped(parsed)) * 3 + len(parsed.serialize())
    assert -(-weight // 4) <= CODEC.utxo_terms(tx).vsize
    for n, item in enumerate(tx["inputs"]):
        sig, pubkey = parsed.vin[n].witness.items
        assert sig[-1] == SIGHASH.ALL and pubkey == KEY.public_key.format(compressed=True)
        digest = parsed.sighash_segwit(
            n, p2pkh_from_p2wpkh(_script(item["address"])), item["value"], SIGHASH.ALL
        )
        assert coincurve.PublicKey(pubkey).verify(sig[:-1], digest, hasher=None)


def _rs(der: bytes) -> tuple[int, int]:
    from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

    return decode_dss_signature(der)


def _script(address: str) -> Any:
    from embit.script import Script

    return Script(script_of(address))


def test_the_processor_reaches_bitcoind_with_the_url_or_the_watchers_credentials() -> None:
    from types import SimpleNamespace

    from tradewind.runtime.config import load_settings
    from tradewind.runtime.withdrawals import build_processor
    from tradewind.services.funding.defaults import demo_networks
    from tradewind.services.funding.withdrawal_config import parse_withdrawal_policy

    policy = parse_withdrawal_policy(
        {
            "withdrawals": {
                "signer_url": "http://127.0.0.1:8620",
                "signer_secret": "x" * 40,
                "rpc": {"bitcoin": "http://127.0.0.1:18443"},
                "bitcoin_fee_fallback": 25,
                "bitcoin_fee_target": 3,
            }
        }
    )
    service = SimpleNamespace(policy=policy, catalog=demo_networks(), now_ms=lambda: 0, store=None)
    settings = load_settings(
        None,
        environ={},
        overrides={"bitcoin_rpc_user": "watcher", "bitcoin_rpc_password": "pw"},
    )
    processor = build_processor(cast(Any, service), settings)
    assert processor is not None
    btc = processor.chains["bitcoin"]
    assert isinstance(btc, BitcoindPayoutChain)
    assert (btc.fallback_fee_rate, btc.fee_target_blocks) == (25, 3)
    node = btc._node  # the watcher's credentials, since the URL has none
    assert (node._user, node._password, node.url) == ("watcher", "pw", "http://127.0.0.1:18443")
    with pytest.raises(Exception, match="bitcoin_fee_fallback"):
        parse_withdrawal_policy({"withdrawals": {"bitcoin_fee_fallback": 0}})
