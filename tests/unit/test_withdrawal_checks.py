"""The withdrawal workflow's rules against in-memory ports and a real core: the order of
the checks (the first failing one answers, nothing stored, no balance touched), the
approval thresholds, idempotency keys, a lock the core refuses, the approvers' rules,
release and settle once; the settings' parser; and the EVM payout codec (what a
transaction pays, read back; a digest signed elsewhere assembles into a transaction
that recovers to its sender)."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, cast

import coincurve
import pytest
from eth_account import Account

from tests.fakes import FakeClock, MemoryAuditStore
from tests.unit.helpers import Exchange
from tradewind.adapters.aml_list import ListScreening
from tradewind.adapters.chain.evm_tx import EvmTxCodec, transfer_data
from tradewind.core.commands import AddAsset, AnyCommand, Deposit
from tradewind.core.events import Event
from tradewind.services.admin import Actor, RoleRequired
from tradewind.services.audit import AuditLog
from tradewind.services.errors import ServiceError
from tradewind.services.funding.addresses import evm_address
from tradewind.services.funding.networks import NetworkConfigError, parse_networks
from tradewind.services.funding.payouts import PayoutProcessor
from tradewind.services.funding.withdrawal_config import (
    parse_signer_settings,
    parse_withdrawal_policy,
)
from tradewind.services.funding.withdrawal_ports import (
    NOT_COUNTED,
    IdempotencyConflict,
    SignedTx,
    SignerRefused,
    TxState,
    WhitelistedAddress,
    Withdrawal,
    WithdrawalEvent,
)
from tradewind.services.funding.withdrawals import (
    FEE_ACCOUNT,
    WithdrawalRequest,
    WithdrawalService,
)
from tradewind.services.identity_errors import InvalidTotp, TotpRequired
from tradewind.services.kyc import KycProfile, KycService, LevelLimits

TO = "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed"
CONTRACT = "0xdAC17F958D2ee523a2206206994597C13D831ec7"
USER = 7


class MemoryWithdrawals:
    """The ``WithdrawalStore`` port in dictionaries (the SQL one is tested in
    tests/integration)."""

    def __init__(self) -> None:
        self.rows: dict[int, Withdrawal] = {}
        self.events: list[WithdrawalEvent] = []
        self.approvals: dict[int, list[int]] = {}
        self.book: list[WhitelistedAddress] = []
        self.extra: dict[int, dict[str, object]] = {}

    async def create(self, **kw: Any) -> Withdrawal:
        if any(
            w.user_id == kw["user_id"] and w.idempotency_key == kw["idempotency_key"]
            for w in self.rows.values()
        ):
            raise IdempotencyConflict(kw["idempotency_key"])
        at = kw.pop("at_ms")
        w = Withdrawal(
            id=len(self.rows) + 1,
            status="holding",
            created_at_ms=at,
            updated_at_ms=at,
            **kw,
        )
        self.rows[w.id] = w
        self.events.append(WithdrawalEvent(w.id, "holding", at, w.user_id, "requested"))
        return w

    async def get(self, withdrawal_id: int) -> Withdrawal | None:
        return self.rows.get(withdrawal_id)

    async def by_key(self, user_id: int, idempotency_key: str) -> Withdrawal | None:
        return next(
            (
                w
                for w in self.rows.values()
                if w.user_id == user_id and w.idempotency_key == idempotency_key
            ),
            None,
        )

    async def list_for_user(
        self, user_id: int, *, limit: int, before_id: int | None
    ) -> Sequence[Withdrawal]:
        found = [
            w
            for w in sorted(self.rows.values(), key=lambda w: -w.id)
            if w.user_id == user_id and (before_id is None or w.id < before_id)
        ]
        return found[:limit]

    async def list_by_status(
        self, statuses: Sequence[str], *, limit: int, network: str | None = None
    ) -> Sequence[Withdrawal]:
        return [w for w in self.rows.values() if w.status in statuses][:limit]

    async def amount_since(self, user_id: int, asset: str, since_ms: int) -> int:
        return sum(
            w.amount
            for w in self.rows.values()
            if w.user_id == user_id
            and w.asset == asset
            and w.created_at_ms >= since_ms
            and w.status not in NOT_COUNTED
        )

    async def transition(
        self,
        withdrawal_id: int,
        from_statuses: Sequence[str],
        to_status: str,
        *,
        at_ms: int,
        actor_id: int | None = None,
        note: str | None = None,
        fields: Mapping[str, object] | None = None,
    ) -> bool:
        w = self.rows.get(withdrawal_id)
        if w is None or w.status not in from_statuses:
            return False
        known = {k: v for k, v in (fields or {}).items() if k not in ("sender", "nonce")}
        self.rows[w.id] = replace(w, status=to_status, updated_at_ms=at_ms, **known)  # type: ignore[arg-type]
        self.events.append(WithdrawalEvent(w.id, to_status, at_ms, actor_id, note))
        return True

    async def timeline(self, withdrawal_id: int) -> Sequence[WithdrawalEvent]:
        return [e for e in self.events if e.withdrawal_id == withdrawal_id]

    async def add_approval(self, withdrawal_id: int, approver_id: int, at_ms: int) -> int | None:
        who = self.approvals.setdefault(withdrawal_id, [])
        if approver_id in who:
            return None
        who.append(approver_id)
        return len(who)

    async def approvers(self, withdrawal_id: int) -> Sequence[int]:
        return self.approvals.get(withdrawal_id, [])

    async def highest_nonce(self, network: str, sender: str) -> int | None:
        return None

    async def add_address(self, **kw: Any) -> WhitelistedAddress | None:
        if any(
            (a.user_id, a.network, a.address) == (kw["user_id"], kw["network"], kw["address"])
            for a in self.book
        ):
            return None
        entry = WhitelistedAddress(
            len(self.book) + 1,
            kw["user_id"],
            kw["network"],
            kw["address"],
            kw["label"],
            kw["at_ms"],
            kw["usable_from_ms"],
        )
        self.book.append(entry)
        return entry

    async def addresses(self, user_id: int) -> Sequence[WhitelistedAddress]:
        return [a for a in self.book if a.user_id == user_id]

    async def find_address(
        self, user_id: int, network: str, address: str
    ) -> WhitelistedAddress | None:
        return next(
            (
                a
                for a in self.book
                if (a.user_id, a.network, a.address) == (user_id, network, address)
            ),
            None,
        )

    async def remove_address(self, user_id: int, address_id: int) -> bool:
        before = len(self.book)
        self.book = [a for a in self.book if not (a.id == address_id and a.user_id == user_id)]
        return len(self.book) < before


@dataclass
class Applied:
    seq: int
    ts: int
    events: list[Event]


class CoreBus:
    """A real core, applied in process; ``commands`` records what was sent."""

    def __init__(self) -> None:
        self.exchange = Exchange()
        self.commands: list[AnyCommand] = []
        self.exchange.ok(AddAsset(asset="ETH", decimals=8))

    @property
    def available(self) -> bool:
        return True

    async def submit(self, cmd: AnyCommand) -> Applied:
        self.commands.append(cmd)
        events = self.exchange.do(cmd)
        return Applied(self.exchange.seq, 0, events)

    def balance(self, user: int = USER) -> tuple[int, int]:
        b = self.exchange.core.accounts.get(user, {}).get("ETH")
        return (0, 0) if b is None else (b.available, b.locked)


class Gate:
    def __init__(self, enabled: bool = True) -> None:
        self.on = enabled
        self.asked = 0

    async def enabled(self, user_id: int) -> bool:
        return self.on

    async def require(self, user_id: int, code: str | None) -> None:
        self.asked += 1
        if not self.on:
            return
        if not code:
            raise TotpRequired()
        if code != "123456":
            raise InvalidTotp()


class Levels:
    def __init__(self, level: int = 1) -> None:
        self.level = level

    async def profile(self, user_id: int) -> KycProfile:
        return KycProfile(user_id, self.level, None, None)


class NotFrozen:
    frozen = False

    async def check_withdrawal(self, user: int) -> None:
        if self.frozen:
            from tradewind.services.admin import AccountFrozen

            raise AccountFrozen()


class Inbox:
    def __init__(self) -> None:
        self.sent: list[tuple[int, str]] = []

    async def notify(self, user_id: int, subject: str, text: str) -> None:
        self.sent.append((user_id, subject))


def catalog_raw() -> dict[str, object]:
    return {
        "networks": {
            "ethereum": {
                "chain_id": 1,
                "assets": {
                    "ETH": {
                        "decimals": 8,
                        "chain_decimals": 18,
                        "confirmations": 12,
                        "min_deposit": "0.001",
                        "withdrawal_fee": "0.002",
                        "min_withdrawal": "0.01",
                        "auto_approve_below": "1",
                        "two_person_above": "10",
                    }
                },
            },
            "bitcoin": {
                "chain": "mainnet",
                "assets": {
                    "BTC": {
                        "decimals": 8,
                        "confirmations": 3,
                        "min_deposit": "0.0001",
                        "withdrawal_fee": "0.0002",
                        "withdrawal_enabled": False,
                    }
                },
            },
        },
        "aml": {"blocked_addresses": ["0xfb6916095ca1df60bb79ce92ce3ea74c37c5d359"]},
    }


class Desk:
    def __init__(self) -> None:
        self.clock = FakeClock()
        self.store = MemoryWithdrawals()
        self.bus = CoreBus()
        self.gate = Gate()
        self.levels = Levels()
        self.admin = NotFrozen()
        self.inbox = Inbox()
        self.audit_store = MemoryAuditStore()
        audit = AuditLog(self.audit_store, self.clock)
        raw = catalog_raw()
        self.policy = parse_withdrawal_policy(raw)
        self.service = WithdrawalService(
            catalog=parse_networks(raw),
            store=self.store,
            bus=cast(Any, self.bus),
            two_factor=self.gate,
            kyc=KycService(
                store=cast(Any, self.levels),
                documents=cast(Any, None),
                audit=audit,
                clock=self.clock,
                limits={1: LevelLimits({"ETH": 60})},
            ),
            admin=cast(Any, self.admin),
            audit=audit,
            notifier=self.inbox,
            screening=ListScreening(self.policy.blocked_addresses),
            policy=self.policy,
            now_ms=self.clock.now_ms,
        )
        self.bus.exchange.ok(Deposit(user=USER, asset="ETH", amount=50 * 10**8))

    def run(self, coro: Any) -> Any:
        return asyncio.run(coro)

    def whitelist(self, address: str = TO, cooled: bool = True) -> None:
        self.run(self.service.add_address(USER, "ethereum", address, "", "123456"))
        if cooled:
            self.clock.advance(self.policy.cooling_off_ms)

    def ask(self, amount: str = "0.5", key: str = "key-00001", **kw: Any) -> Withdrawal:
        req = WithdrawalRequest(
            kw.pop("asset", "ETH"),
            kw.pop("network", "ethereum"),
            kw.pop("address", TO),
            amount,
            kw.pop("memo", None),
        )
        return cast(
            Withdrawal, self.run(self.service.request(USER, req, key, kw.pop("totp", "123456")))
        )

    def refused(self, code: str, **kw: Any) -> None:
        with pytest.raises(ServiceError) as info:
            self.ask(**kw)
        assert info.value.code == code, info.value


@pytest.fixture
def desk() -> Desk:
    return Desk()


def test_the_first_failing_check_answers_and_nothing_is_stored(desk: Desk) -> None:
    desk.whitelist()
    # several things wrong at once: the earlier check in the documented order answers
    desk.refused("unknown_network", network="dogecoin", address="nope", amount="0")
    desk.refused("unknown_asset", asset="BTC", address="nope")
    desk.refused("withdrawals_disabled", network="bitcoin", asset="BTC", address="nope")
    desk.refused("memo_not_supported", memo="x", address="nope")
    desk.refused("invalid_address", address="0x12", amount="0.001")
    desk.refused("address_checksum_mismatch", address=TO.replace("a", "A", 1), amount="0.001")
    desk.refused("invalid_amount", amount="-1", totp=None)
    desk.refused("invalid_amount", amount="0.123456789", totp=None)
    desk.refused("below_minimum", amount="0.009", totp=None)
    desk.refused("below_minimum", amount="0.002", totp=None)  # not above the fee
    desk.refused("totp_required", totp=None, address="0x" + "12" * 20)
    desk.refused("invalid_totp", totp="000000", address="0x" + "12" * 20)
    desk.refused("address_not_whitelisted", address="0x" + "12" * 20, amount="31")
    desk.refused("kyc_limit_exceeded", amount="61")
    desk.levels.level = 0
    desk.refused("kyc_limit_exceeded", amount="0.5")
    desk.levels.level = 1
    desk.admin.frozen = True
    desk.refused("account_frozen", network="dogecoin")
    desk.admin.frozen = False
    assert desk.store.rows == {} and desk.bus.balance() == (50 * 10**8, 0)
    assert [type(c).__name__ for c in desk.bus.commands] == []


def test_cooling_blocked_and_2fa_policy(desk: Desk) -> None:
    desk.whitelist(cooled=False)
    desk.refused("address_cooling_off")
    desk.clock.advance(desk.policy.cooling_off_ms - 1)
    desk.refused("address_cooling_off")
    desk.clock.advance(1)
    blocked = "0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359"
    desk.whitelist(blocked)
    desk.refused("address_blocked", address=blocked)
    assert [e.action for e in desk.audit_store.entries].count("withdrawal.address_blocked") == 1
    desk.gate.on = False  # policy requires 2FA, the account has none
    desk.refused("two_factor_required")
    assert desk.store.rows == {} and desk.bus.balance() == (50 * 10**8, 0)


def test_approval_thresholds_and_the_lock(desk: Desk) -> None:
    desk.whitelist()
    small = desk.ask("0.99", key="key-small")
    one = desk.ask("1", key="key-one1")
    ten = desk.ask("10", key="key-ten1")
    two = desk.ask("10.00000001", key="key-two1")
    assert [w.required_approvals for w in (small, one, ten, two)] == [0, 1, 1, 2]
    assert [w.status for w in (small, one, ten, two)] == [
        "approved",
        "pending_approval",
        "pending_approval",
        "pending_approval",
    ]
    locked = 99_000_000 + 100_000_000 + 1_000_000_000 + 1_000_000_001
    assert desk.bus.balance() == (50 * 10**8 - locked, locked)
    # the daily limit counts what is under way: 60 ETH a day at level 1
    desk.refused("kyc_limit_exceeded", amount="38.1", key="key-over")


def test_idempotency_keys(desk: Desk) -> None:
    desk.whitelist()
    first = desk.ask("0.5", key="same-key-1")
    asked = desk.gate.asked
    again = desk.ask("0.5", key="same-key-1", totp=None)  # no new code needed
    assert again.id == first.id and desk.gate.asked == asked
    desk.refused("idempotency_mismatch", amount="0.6", key="same-key-1")
    desk.refused("invalid_idempotency_key", key="short")
    desk.refused("invalid_idempotency_key", key="has space in it")
    assert len(desk.store.rows) == 1 and desk.bus.balance()[1] == 50_000_000


def test_a_lock_the_core_refuses_is_stored_refused_and_answered_the_same_again(
    desk: Desk,
) -> None:
    desk.whitelist()
    desk.refused("insufficient_balance", amount="55", key="too-much-1")
    desk.refused("insufficient_balance", amount="55", key="too-much-1", totp=None)
    (w,) = desk.store.rows.values()
    assert w.status == "refused" and w.reason == "insufficient_balance"
    assert desk.bus.balance() == (50 * 10**8, 0)


def test_approvers_cancel_reject_release_and_settle_once(desk: Desk) -> None:
    desk.whitelist()
    two = desk.ask("12", key="key-approve")
    user, support = Actor(USER, "compliance"), Actor(8, "support")
    c1, c2 = Actor(9, "compliance"), Actor(10, "admin")
    s = desk.service
    with pytest.raises(RoleRequired):
        desk.run(s.approve(support, two.id))
    with pytest.raises(ServiceError) as info:
        desk.run(s.approve(user, two.id))
    assert info.value.code == "self_approval"
    assert desk.run(s.approve(c1, two.id)).status == "pending_approval"
    with pytest.raises(ServiceError) as info:
        desk.run(s.approve(c1, two.id))
    assert info.value.code == "already_approved"
    assert desk.run(s.approve(c2, two.id)).status == "approved"

    other = desk.ask("2", key="key-reject")
    rejected = desk.run(s.reject(c1, other.id, "source of funds unclear"))
    assert (rejected.status, rejected.reason) == ("rejected", "source of funds unclear")
    with pytest.raises(ServiceError) as info:
        desk.run(s.cancel(USER, other.id))
    assert info.value.code == "withdrawal_not_cancellable"
    assert desk.bus.balance() == (50 * 10**8 - 12 * 10**8, 12 * 10**8)

    # settle: the funds leave once and the fee is booked once, however often repeated
    assert desk.run(s.move(two, ("approved",), "settling"))
    fresh = desk.run(s.get_any(two.id))
    assert desk.run(s.settle(fresh))
    assert not desk.run(s.settle(fresh))  # the status moved on: nothing more
    assert desk.bus.balance() == (38 * 10**8, 0)
    assert desk.bus.balance(FEE_ACCOUNT) == (200_000, 0)
    subjects = [subject for _, subject in desk.inbox.sent]
    assert f"withdrawal {two.id} confirmed" in subjects
    assert f"withdrawal {other.id} rejected" in subjects
    assert not any("releasing" in x or "settling" in x for x in subjects)


def test_the_settings_refuse_unknown_keys_and_weak_secrets() -> None:
    assert parse_withdrawal_policy(None).cooling_off_ms == 24 * 3_600_000
    assert parse_withdrawal_policy(None).require_2fa is True
    bad: list[dict[str, object]] = [
        {"withdrawals": {"cooling_of_hours": 1}},
        {"withdrawals": {"cooling_off_hours": -1}},
        {"withdrawals": {"require_2fa": "yes"}},
        {"withdrawals": {"signer_url": "http://127.0.0.1:8620"}},  # no secret
        {"withdrawals": {"signer_url": "http://x", "signer_secret": "short"}},
        {"withdrawals": {"rpc": {"dogecoin": "http://node"}}},
        {"aml": {"blocked_addresses": "0xabc"}},
    ]
    for table in bad:
        with pytest.raises(NetworkConfigError):
            parse_withdrawal_policy(table)
    ok = parse_withdrawal_policy(
        {"withdrawals": {"signer_url": "http://127.0.0.1:8620"}},
        {"TRADEWIND_SIGNER_SECRET": "z" * 32},
    )
    assert ok.signer_secret == "z" * 32
    with pytest.raises(NetworkConfigError):
        parse_signer_settings({"signer": {"pin": "", "keys": {}}})
    with pytest.raises(NetworkConfigError):
        parse_signer_settings({"signer": {"keys": {"ethereum": 3}}})
    signer = parse_signer_settings(
        {"signer": {"keys": {"ethereum": "hot-eth"}}}, {"TRADEWIND_SIGNER_PIN": "1234"}
    )
    assert (signer.pin, signer.keys["ethereum"], signer.host) == ("1234", "hot-eth", "127.0.0.1")
    assert "1234" not in repr(signer)
    with pytest.raises(NetworkConfigError):  # a typo in an asset's withdrawal rule
        raw = catalog_raw()
        eth = raw["networks"]["ethereum"]["assets"]["ETH"]  # type: ignore[index]
        eth["auto_approve_bellow"] = "1"
        parse_networks(raw)


def base_tx(**over: object) -> dict[str, object]:
    tx: dict[str, object] = {
        "type": 2,
        "chainId": 1,
        "nonce": 4,
        "maxFeePerGas": 3 * 10**9,
        "maxPriorityFeePerGas": 10**9,
        "gas": 21_000,
        "to": TO,
        "value": 5 * 10**17,
        "data": "0x",
    }
    tx.update(over)
    return tx


def test_the_codec_reads_back_what_a_payout_pays_and_refuses_anything_else() -> None:
    codec = EvmTxCodec()
    native = codec.terms(base_tx())
    assert (native.to, native.contract, native.value, native.nonce) == (TO, None, 5 * 10**17, 4)
    token = codec.terms(base_tx(to=CONTRACT, value=0, data=transfer_data(TO, 25_000_000)))
    assert (token.to, token.contract, token.value) == (TO, CONTRACT, 25_000_000)
    for bad in (
        base_tx(type=0),
        base_tx(data="0xdeadbeef"),  # a contract call that is no transfer
        base_tx(to=CONTRACT, value=1, data=transfer_data(TO, 1)),  # value and transfer
        base_tx(accessList=[{"address": TO, "storageKeys": []}]),
        base_tx(nonce=-1),
        {**base_tx(), "input": "0x"},
    ):
        with pytest.raises(ValueError):
            codec.terms(bad)


def test_a_digest_signed_elsewhere_assembles_into_a_transaction_from_the_key() -> None:
    codec = EvmTxCodec()
    key = coincurve.PrivateKey(
        bytes.fromhex("4c0883a69102937d6231471b5dbb6204fe512961708279f0a8a0b1e4e2f3a1c1")
    )
    sender = evm_address(key.public_key.format(compressed=False))
    tx = base_tx(**{"from": sender})
    assert codec.terms(tx).sender == sender
    digest = codec.digest(tx)
    sig = key.sign_recoverable(digest, hasher=None)
    r, s, v = int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:64], "big"), sig[64]
    signed = codec.assemble(tx, r, s, v)
    assert Account.recover_transaction(signed.raw) == sender
    assert signed.txid.startswith("0x") and len(signed.txid) == 66


class RecordingChain:
    """A chain that records what the processor asks (no node)."""

    def __init__(self) -> None:
        self.built = 0
        self.sent: list[str] = []

    async def build(
        self, sender: str, to: str, contract: str | None, value: int, nonce_floor: int
    ) -> Mapping[str, object]:
        self.built += 1
        return base_tx(**{"from": sender, "to": to, "value": value, "nonce": nonce_floor})

    async def broadcast(self, raw: str) -> str | None:
        self.sent.append(raw)
        return None

    async def state(self, txid: str) -> TxState:
        return TxState("pending")


class RefusingSigner:
    def __init__(self) -> None:
        self.asked = 0

    async def address(self, network: str) -> str:
        return TO

    async def sign(self, withdrawal_id: int, network: str, tx: Mapping[str, object]) -> SignedTx:
        self.asked += 1
        raise SignerRefused("terms_mismatch", "the transaction does not pay the withdrawal")


def test_the_processor_pays_no_frozen_account_and_fails_a_refused_signature_once(
    desk: Desk,
) -> None:
    desk.whitelist()
    w = desk.ask("0.5", key="frozen-01")
    assert w.status == "approved"
    chain, signer = RecordingChain(), RefusingSigner()
    processor = PayoutProcessor(desk.service, {"ethereum": chain}, signer)
    desk.admin.frozen = True
    desk.run(processor.step())
    assert desk.run(desk.service.get_any(w.id)).status == "approved"
    assert chain.built == 0 and signer.asked == 0
    desk.admin.frozen = False
    desk.run(processor.step())
    failed = desk.run(desk.service.get_any(w.id))
    assert failed.status == "failed" and signer.asked == 1 and chain.sent == []
    assert failed.reason is not None and "terms_mismatch" in failed.reason
    desk.run(processor.step())
    assert signer.asked == 1 and desk.bus.balance() == (50 * 10**8, 0)
    releases = [c for c in desk.bus.commands if type(c).__name__ == "WithdrawRelease"]
    assert len(releases) == 1


class BrokenSigner(RefusingSigner):
    async def address(self, network: str) -> str:
        raise SignerRefused("unknown_network", f"no hot-wallet key for {network!r}")


def test_a_withdrawal_that_cannot_proceed_does_not_stop_the_others(desk: Desk) -> None:
    desk.whitelist()
    first, second = desk.ask("0.5", key="broken-01"), desk.ask("0.5", key="broken-02")
    chain = RecordingChain()
    counts = desk.run(PayoutProcessor(desk.service, {"ethereum": chain}, BrokenSigner()).step())
    assert counts.waiting == 2
    for w in (first, second):
        assert desk.run(desk.service.get_any(w.id)).status == "approved"
