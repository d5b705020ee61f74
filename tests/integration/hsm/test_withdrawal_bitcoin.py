"""Bitcoin withdrawals paid out for real (ADR 0029): the hot wallet is the P2WPKH address
of a key made in a SoftHSM2 token; the processor builds the transaction from the hot
wallet's coins (``scantxoutset`` on the node simulator), the signer checks what it pays
and signs each input's BIP 143 digest in the token, the simulator verifies every
signature with libsecp256k1 (coincurve) before taking it, mines it, and the core settles
once (SQLite and PostgreSQL).

- a withdrawal approved by compliance is paid: the destination's coin exists with the
  amount less the fee, the change is back on the hot wallet, the core debits once and
  books the fee;
- the node's fee estimate is used; coins of saved-but-unconfirmed payouts are not
  chosen again; a hot wallet too short makes a payout wait, then pays it once funded;
- a broadcast the node refuses releases the funds once, and the coins are free again;
- the processor killed after the signed transaction was saved (before and after the
  node took it) and restarted: the same txid, one payment, one debit;
- the signer refuses transactions that pay another address, another amount, change to
  a stranger or a runaway fee;
- an amount below the destination's dust limit fails and is released once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Collection, Mapping
from typing import Any

import pytest

from tests.support.bitcoin_payout_rig import COIN, FEE, SECRET, Rig, request, run
from tests.support.bitcoind_sim import SimWallet
from tests.support.custody_rig import Killed
from tradewind.adapters.chain.bitcoind_payout import BitcoindPayoutChain
from tradewind.adapters.sql import SqlUserRepository
from tradewind.services.admin import Actor
from tradewind.services.funding.networks import parse_networks
from tradewind.services.funding.signer import SignerError, signed_request
from tradewind.services.funding.withdrawal_ports import (
    SignedTx,
    SignerClient,
    SignerUnavailable,
    TxState,
    Withdrawal,
)
from tradewind.services.funding.withdrawals import FEE_ACCOUNT

async_test = pytest.mark.asyncio


class FlakySigner:
    """Down for the first ``down`` signatures."""

    def __init__(self, inner: SignerClient, down: int) -> None:
        self.inner = inner
        self.down = down

    async def address(self, network: str) -> str:
        return await self.inner.address(network)

    async def sign(self, withdrawal_id: int, network: str, tx: Mapping[str, object]) -> SignedTx:
        if self.down > 0:
            self.down -= 1
            raise SignerUnavailable("signer not reachable: ConnectError")
        return await self.inner.sign(withdrawal_id, network, tx)


class CrashingChain:
    """The node; the processor dies at a broadcast, ``before`` or after the node took it."""

    def __init__(self, inner: BitcoindPayoutChain, *, before: bool) -> None:
        self.inner = inner
        self.before = before

    async def build_spend(
        self, sender: str, to: str, value: int, reserved: Collection[str]
    ) -> Mapping[str, object]:
        return await self.inner.build_spend(sender, to, value, reserved)

    async def broadcast(self, raw: str) -> str | None:
        if not self.before:
            await self.inner.broadcast(raw)
        raise Killed("killed at the broadcast")

    async def state(self, txid: str) -> TxState:
        return await self.inner.state(txid)


def tx_of(w: Withdrawal) -> dict[str, Any]:
    assert w.tx is not None
    tx: dict[str, Any] = json.loads(w.tx)
    return tx


@async_test
async def test_an_approved_withdrawal_is_signed_in_the_token_mined_and_settled_once(
    rig: Rig,
) -> None:
    rig.fund_hot(3 * COIN)
    user = await rig.user(4 * COIN)
    service = rig.service()
    w = await service.request(user, request("1", rig.dest.address), "btc-payout-1", None)
    assert (w.status, w.required_approvals) == ("pending_approval", 1)
    staff = await SqlUserRepository(rig.db).add(
        email=f"staff{time.monotonic_ns()}@example.com", password_hash="x", created_at_ms=1
    )
    assert staff is not None
    approved = await service.approve(Actor(staff.id, "compliance"), w.id)
    assert approved.status == "approved"
    before = rig.hot_balance()

    await run(rig.processor(service), rig, w.id, "confirmed")

    done = await service.get_any(w.id)
    assert done.txid is not None and done.raw_tx is not None and done.block_number is not None
    tx = tx_of(done)
    fee = sum(i["value"] for i in tx["inputs"]) - sum(o["value"] for o in tx["outputs"])
    assert all(i["address"] == rig.hot for i in tx["inputs"])
    assert tx["outputs"][0] == {"address": rig.dest.address, "value": COIN - FEE}
    assert tx["outputs"][1]["address"] == rig.hot  # the change
    # the node took the token's signature (coincurve verified it) and mined it
    assert rig.paid() == [(done.txid, COIN - FEE)]
    assert rig.hot_balance() == before - (COIN - FEE) - fee
    mined = rig.sim.rpc("getrawtransaction", done.txid, True)
    assert mined["confirmations"] >= 2 and mined["hex"] == done.raw_tx
    assert 10 * mined["vsize"] <= fee <= 10 * (mined["vsize"] + 1)  # the fallback rate
    assert rig.balance(user) == (3 * COIN, 0)
    assert rig.withdrawn() == COIN
    assert rig.balance(FEE_ACCOUNT) == (FEE, 0)
    assert await rig.statuses(w.id) == [
        "holding",
        "pending_approval",
        "approved",
        "signing",
        "signed",
        "broadcast",
        "settling",
        "confirmed",
    ]
    signed = [e for e in await rig.audit.recent() if e.action == "signer.signed"]
    assert len(signed) == 1 and signed[0].details_dict()["txid"] == done.txid
    # later steps and blocks change nothing
    await rig.processor(service).step()
    rig.mine()
    await rig.processor(service).step()
    assert rig.balance(user) == (3 * COIN, 0) and rig.withdrawn() == COIN
    assert rig.paid() == [(done.txid, COIN - FEE)]


@async_test
async def test_coins_of_unconfirmed_payouts_are_not_chosen_again_and_a_short_wallet_waits(
    rig: Rig,
) -> None:
    rig.sim.fee_estimate = 20_000  # sat/kvB: 20 sat/vB from estimatesmartfee
    rig.fund_hot(30_000_000, 20_000_000, 25_000_000)
    user = await rig.user(5 * COIN)
    service = rig.service()
    a = await service.request(user, request("0.25", rig.dest.address), "btc-reserve-a", None)
    # the signer is down: A's transaction is saved (signing) and its coin reserved
    await rig.processor(service, signer=FlakySigner(rig.client(), down=1)).step()
    a = await service.get_any(a.id)
    assert a.status == "signing"
    b = await service.request(user, request("0.22", rig.dest.address), "btc-reserve-b", None)
    c = await service.request(user, request("0.15", rig.dest.address), "btc-reserve-c", None)
    counts = await rig.processor(service).step()
    assert counts.broadcast == 3 and counts.failed == 0
    fixed = [await service.get_any(x.id) for x in (a, b, c)]
    assert all(x.status == "broadcast" for x in fixed)
    spent = [{(i["txid"], i["vout"]) for i in tx_of(x)["inputs"]} for x in fixed]
    assert not (spent[0] & spent[1]) and not (spent[0] & spent[2]) and not (spent[1] & spent[2])
    assert len(rig.sim.mempool) == 3
    for x in fixed:
        tx = tx_of(x)
        fee = sum(i["value"] for i in tx["inputs"]) - sum(o["value"] for o in tx["outputs"])
        vsize = rig.sim.rpc("getrawtransaction", x.txid, True)["vsize"]
        assert tx["fee_rate"] == 20_000 and 20 * vsize <= fee <= 20 * (vsize + 1)
    for x in fixed:
        await run(rig.processor(service), rig, x.id, "confirmed")

    # what is left (three changes) does not cover 0.5 BTC: the payout waits, approved
    d = await service.request(user, request("0.5", rig.dest.address), "btc-short-d", None)
    d = await service.get_any(d.id)
    assert d.status == "pending_approval"  # 0.5 is not below auto_approve_below
    staff = await SqlUserRepository(rig.db).add(
        email=f"s{time.monotonic_ns()}@example.com", password_hash="x", created_at_ms=1
    )
    assert staff is not None
    await service.approve(Actor(staff.id, "compliance"), d.id)
    counts = await rig.processor(service).step()
    assert counts.waiting == 1 and (await service.get_any(d.id)).status == "approved"
    rig.fund_hot(COIN)
    await run(rig.processor(service), rig, d.id, "confirmed")
    assert sorted(v for _, v in rig.paid()) == sorted(
        [25_000_000 - FEE, 22_000_000 - FEE, 15_000_000 - FEE, 50_000_000 - FEE]
    )
    assert rig.balance(user) == (5 * COIN - 112_000_000, 0)
    assert rig.withdrawn() == 112_000_000


@async_test
async def test_a_broadcast_the_node_refuses_releases_the_funds_once(rig: Rig) -> None:
    rig.fund_hot(COIN)
    user = await rig.user(2 * COIN)
    service = rig.service()
    rig.sim.min_relay_fee = 50_000  # the node wants 50 sat/vB; the payout pays 10
    w = await service.request(user, request("0.3", rig.dest.address), "btc-refused-1", None)
    assert rig.balance(user) == (170_000_000, 30_000_000)
    processor = rig.processor(service)
    await run(processor, rig, w.id, "failed")
    failed = await service.get_any(w.id)
    assert failed.reason is not None and failed.reason.startswith("broadcast refused: -26")
    assert "min relay fee not met" in failed.reason
    assert rig.balance(user) == (2 * COIN, 0) and rig.balance(FEE_ACCOUNT) == (0, 0)
    await processor.step()
    assert rig.balance(user) == (2 * COIN, 0) and rig.withdrawn() == 0
    assert rig.paid() == []
    releases = [e for e in await rig.audit.recent() if e.action == "withdrawal.failed"]
    assert len(releases) == 1
    # the coin it would have spent is free again: the next payout spends it
    rig.sim.min_relay_fee = 1_000
    ok = await service.request(user, request("0.3", rig.dest.address), "btc-refused-2", None)
    await run(processor, rig, ok.id, "confirmed")
    assert tx_of(await service.get_any(ok.id))["inputs"] == tx_of(failed)["inputs"]
    assert rig.balance(user) == (170_000_000, 0) and rig.withdrawn() == 30_000_000


@async_test
async def test_killed_after_the_signed_transaction_was_saved_pays_once_with_the_same_txid(
    rig: Rig,
) -> None:
    rig.fund_hot(COIN)
    user = await rig.user(2 * COIN)
    service = rig.service()
    w = await service.request(user, request("0.4", rig.dest.address), "btc-killed-1", None)
    # killed after the signer saved the signed transaction, before the node got it
    with pytest.raises(Killed):
        await rig.processor(service, chain=CrashingChain(rig.chain, before=True)).step()
    signed = await service.get_any(w.id)
    assert signed.status == "signed" and signed.txid is not None
    assert rig.sim.mempool == {}
    # restarted: it sends the saved bytes, and is killed again once the node took them
    with pytest.raises(Killed):
        await rig.processor(service, chain=CrashingChain(rig.chain, before=False)).step()
    assert (await service.get_any(w.id)).status == "signed"
    assert list(rig.sim.mempool) == [signed.txid]
    # restarted again: the same bytes once more (the node has them), then confirmed
    await run(rig.processor(service), rig, w.id, "confirmed")
    final = await service.get_any(w.id)
    assert final.txid == signed.txid and final.raw_tx == signed.raw_tx
    assert rig.paid() == [(signed.txid, 40_000_000 - FEE)]
    assert rig.balance(user) == (160_000_000, 0) and rig.withdrawn() == 40_000_000
    signatures = [e for e in await rig.audit.recent() if e.action == "signer.signed"]
    assert len(signatures) == 1


@async_test
async def test_the_signer_refuses_a_transaction_paying_another_address(rig: Rig) -> None:
    rig.fund_hot(COIN)
    user = await rig.user(2 * COIN)
    service = rig.service()
    w = await service.request(user, request("0.4", rig.dest.address), "btc-forged-1", None)
    await rig.processor(service, signer=FlakySigner(rig.client(), down=1)).step()
    w = await service.get_any(w.id)
    assert w.status == "signing" and w.tx is not None
    good = tx_of(w)
    stranger = SimWallet(rig.sim, b"\x0b" * 32).address
    dest, change = good["outputs"]

    def altered(outputs: list[dict[str, Any]]) -> dict[str, Any]:
        return {**good, "outputs": outputs}

    forged = {
        "another address": altered([{**dest, "address": stranger}, change]),
        "another amount": altered(
            [{**dest, "value": dest["value"] + 5_000}, {**change, "value": change["value"] - 5_000}]
        ),
        "change to a stranger": altered([dest, {**change, "address": stranger}]),
        "a runaway fee": altered([dest, {**change, "value": change["value"] - 2_000_000}]),
        "a coin not the hot wallet's": {
            **good,
            "inputs": [{**good["inputs"][0], "address": stranger}],
        },
    }
    for what, tx in forged.items():
        # written to the withdrawal itself, so the request matches what is stored
        assert await rig.store.transition(
            w.id, ("signing",), "signing", at_ms=1, fields={"tx": json.dumps(tx)}
        )
        body, sig = signed_request(
            SECRET,
            {
                "op": "sign",
                "withdrawal_id": w.id,
                "network": "bitcoin",
                "tx": tx,
                "ts": rig.clock.now_ms(),
            },
        )
        with pytest.raises(SignerError) as info:
            await rig.signer.handle(body, sig)
        assert info.value.code == "terms_mismatch", what
        assert (await service.get_any(w.id)).status == "signing", what
    assert await rig.store.transition(
        w.id, ("signing",), "signing", at_ms=1, fields={"tx": json.dumps(good)}
    )
    await run(rig.processor(service), rig, w.id, "confirmed")
    assert rig.paid() == [((await service.get_any(w.id)).txid, 40_000_000 - FEE)]
    refused = [e for e in await rig.audit.recent() if e.action == "signer.refused"]
    assert len(refused) == len(forged)


@async_test
async def test_an_amount_below_the_dust_limit_fails_and_is_released_once(rig: Rig) -> None:
    rig.fund_hot(COIN)
    user = await rig.user(COIN)
    raw = {
        "networks": {
            "bitcoin": {
                "chain": "regtest",
                "assets": {
                    "BTC": {
                        "decimals": 8,
                        "confirmations": 2,
                        "min_deposit": "0.0001",
                        "withdrawal_fee": "0.0001",
                        "min_withdrawal": "0.00010001",
                        "auto_approve_below": "1",
                    }
                },
            }
        }
    }
    service = rig.service(parse_networks(raw))
    w = await service.request(user, request("0.0001029", rig.dest.address), "btc-dust-1", None)
    assert w.status == "approved" and w.net_amount == 290  # under 294 sat
    processor = rig.processor(service)
    counts = await processor.step()
    assert counts.failed == 1
    failed = await service.get_any(w.id)
    assert failed.status == "failed" and failed.tx is None
    assert failed.reason is not None and "dust" in failed.reason
    await processor.step()
    assert rig.balance(user) == (COIN, 0) and rig.withdrawn() == 0
    assert rig.sim.mempool == {} and rig.paid() == []
    assert await rig.statuses(w.id) == ["holding", "approved", "releasing", "failed"]
