"""Fiat withdrawals through the withdrawal workflow (docs/fiat.md): an IBAN from the
user's own address book (checked, cooling off, holder's name required), funds locked in
the core at once, compliance approval, one pain.001 file per withdrawal (an interrupted
run writes the same file again, a second run pays nothing), settled or released once."""

from __future__ import annotations

from typing import Any, cast

import pytest

from tests.support.camt import Entry, Tx, camt053
from tests.unit.test_withdrawal_checks import USER, Desk
from tradewind.adapters.banks.camt053 import Camt053Reader
from tradewind.adapters.banks.pain001 import read_pain001, write_pain001
from tradewind.core.commands import AddAsset, Deposit
from tradewind.services.admin import Actor
from tradewind.services.errors import ServiceError
from tradewind.services.fiat.config import (
    BankAccount,
    FiatConfigError,
    FiatWithdrawalTerms,
    parse_fiat,
)
from tradewind.services.fiat.withdrawals import FiatPayouts, fiat_withdrawal_rules
from tradewind.services.funding.withdrawal_ports import Withdrawal
from tradewind.services.funding.withdrawals import WithdrawalRequest
from tradewind.services.kyc import KycService, LevelLimits

IBAN = "DE89370400440532013000"
OTHER_IBAN = "GB82WEST12345698765432"
BANK = BankAccount("FR1420041010050500013M02606", "BNPAFRPPXXX", "Tradewind Ltd")
OFFICER = Actor(9, "compliance")
EUR = 10**2


class FiatDesk(Desk):
    def __init__(self, fiat_level: bool = True) -> None:
        super().__init__()
        s = self.service
        s.fiat = fiat_withdrawal_rules({"EUR": 2})
        s.payout_networks = s.payout_networks | {"sepa"}
        s._kyc = KycService(  # type: ignore[misc]
            store=cast(Any, self.levels),
            documents=cast(Any, None),
            audit=s._audit,
            clock=self.clock,
            limits={1: LevelLimits({"ETH": 60, "EUR": 10_000}, fiat=fiat_level)},
        )
        self.bus.exchange.ok(AddAsset(asset="EUR", decimals=2))
        self.bus.exchange.ok(Deposit(user=USER, asset="EUR", amount=5_000 * EUR))
        self.payouts = FiatPayouts(s)

    def eur(self, user: int = USER) -> tuple[int, int]:
        return self.bus.exchange.bal(user, "EUR")

    def add_iban(self, iban: str = IBAN, name: str = "Erika Mustermann") -> None:
        self.run(self.service.add_address(USER, "sepa", iban, name, "123456"))

    def ask_eur(self, amount: str, key: str, iban: str = IBAN) -> Withdrawal:
        req = WithdrawalRequest("EUR", "sepa", iban, amount, None)
        return cast(Withdrawal, self.run(self.service.request(USER, req, key, "123456")))

    def status(self, w: Withdrawal) -> str:
        return cast(Withdrawal, self.run(self.service.get_any(w.id))).status


def test_ibans_are_checked_and_named_and_cool_off_like_addresses() -> None:
    desk = FiatDesk()
    for bad, code in (
        ("DE89370400440532013001", "iban_checksum_mismatch"),
        ("XX00", "invalid_iban"),
    ):
        with pytest.raises(ServiceError) as info:
            desk.add_iban(bad)
        assert info.value.code == code
    with pytest.raises(ServiceError) as info:
        desk.add_iban(name="")
    assert info.value.code == "invalid_label"
    desk.run(desk.service.add_address(USER, "sepa", "de89 3704 0044 0532 0130 00", "E M", "123456"))
    with pytest.raises(ServiceError) as info:
        desk.ask_eur("100", "cool-0001")
    assert info.value.code == "address_cooling_off"
    with pytest.raises(ServiceError) as info:
        desk.ask_eur("100", "cool-0002", iban=OTHER_IBAN)
    assert info.value.code == "address_not_whitelisted"
    assert desk.eur() == (5_000 * EUR, 0) and desk.store.rows == {}


def test_fiat_withdrawals_need_the_fiat_kyc_level() -> None:
    desk = FiatDesk(fiat_level=False)
    desk.add_iban()
    desk.clock.advance(desk.policy.cooling_off_ms)
    with pytest.raises(ServiceError) as info:
        desk.ask_eur("100", "kyc-00001")
    assert info.value.code == "kyc_level_required"
    assert desk.eur() == (5_000 * EUR, 0)


def test_lock_approve_one_file_once_settle_once_and_a_cancel_before_the_file() -> None:
    desk = FiatDesk()
    desk.add_iban()
    desk.clock.advance(desk.policy.cooling_off_ms)
    paid = desk.ask_eur("1200.50", "pay-00001")
    assert paid.status == "pending_approval" and paid.memo == "Erika Mustermann"
    assert desk.eur() == (5_000 * EUR - 120_050, 120_050)  # locked at once
    cancelled = desk.ask_eur("300", "cancel-001")
    desk.run(desk.service.approve(OFFICER, cancelled.id))
    desk.run(desk.service.cancel(USER, cancelled.id))  # before any file: released
    assert desk.status(cancelled) == "cancelled"
    assert desk.eur() == (5_000 * EUR - 120_050, 120_050)

    assert desk.run(desk.payouts.take()).withdrawal_ids == ()  # not approved yet
    assert desk.run(desk.service.approve(OFFICER, paid.id)).status == "approved"
    batch = desk.run(desk.payouts.take())
    assert batch.withdrawal_ids == (paid.id,) and desk.status(paid) == "signing"
    with pytest.raises(ServiceError):  # in a file now: the user cannot cancel any more
        desk.run(desk.service.cancel(USER, paid.id))
    # an interrupted run (file not marked sent) is taken again with the same message id
    again = desk.run(desk.payouts.take())
    assert again.withdrawal_ids == batch.withdrawal_ids
    assert again.message_id == batch.message_id
    data = write_pain001(
        list(batch.payouts),
        debtor=BANK,
        message_id=batch.message_id,
        created_at="2026-11-27T12:00:00",
        execution_date="2026-11-27",
    )
    payment = read_pain001(data).payouts
    assert [(p.iban, p.name, str(p.amount), p.currency) for p in payment] == [
        (IBAN, "Erika Mustermann", "1200.50", "EUR")
    ]
    assert desk.run(desk.payouts.sent(batch)) == 1
    assert desk.run(desk.payouts.sent(batch)) == 0
    assert desk.status(paid) == "broadcast"
    assert desk.run(desk.payouts.take()).withdrawal_ids == ()  # paid in one file only

    assert desk.run(desk.payouts.paid([paid.id, cancelled.id, 999], "camt.053")) == [paid.id]
    assert desk.run(desk.payouts.paid([paid.id], "again")) == []
    assert desk.run(desk.payouts.finish()) == 1
    assert desk.run(desk.payouts.finish()) == 0
    assert desk.status(paid) == "confirmed"
    assert desk.eur() == (5_000 * EUR - 120_050, 0)
    settles = [c for c in desk.bus.commands if type(c).__name__ == "WithdrawSettle"]
    assert len(settles) == 1


def test_a_returned_transfer_releases_the_funds_once() -> None:
    desk = FiatDesk()
    desk.add_iban()
    desk.clock.advance(desk.policy.cooling_off_ms)
    w = desk.ask_eur("10", "ret-00001")
    desk.run(desk.service.approve(OFFICER, w.id))
    batch = desk.run(desk.payouts.take())
    desk.run(desk.payouts.sent(batch))
    assert desk.run(desk.payouts.returned([w.id], "AC04 account closed")) == [w.id]
    assert desk.run(desk.payouts.finish()) == 1
    assert desk.run(desk.payouts.finish()) == 0
    done = cast(Withdrawal, desk.run(desk.service.get_any(w.id)))
    assert (done.status, done.reason) == ("failed", "AC04 account closed")
    assert desk.eur() == (5_000 * EUR, 0)


def test_a_booked_debit_in_a_statement_marks_the_withdrawal_paid_once() -> None:
    desk = FiatDesk()
    desk.add_iban()
    desk.clock.advance(desk.policy.cooling_off_ms)
    w = desk.ask_eur("99.90", "debit-001")
    odd = desk.ask_eur("5", "debit-002")
    for x in (w, odd):
        desk.run(desk.service.approve(OFFICER, x.id))
    desk.run(desk.payouts.sent(desk.run(desk.payouts.take())))

    def debit(wid: int, amount: str, ref: str) -> Entry:
        return Entry(
            amount, indicator="DBIT", ref=ref, txs=[Tx(end_to_end_id=f"WD-{wid}", debtor_name=None)]
        )

    statement = Camt053Reader().read(
        camt053(
            [
                debit(w.id, "99.90", "D-1"),
                debit(odd.id, "4.00", "D-2"),  # not the amount sent: left for a person
                Entry("10.00", indicator="DBIT", ref="D-3"),  # no end-to-end id
                Entry("1.00", ustrd=["RF18 5390 0754 7034"], ref="C-1"),
            ]
        )
    )
    assert [(d.end_to_end_id, d.amount) for d in statement.debits] == [
        (f"WD-{w.id}", "99.90"),
        (f"WD-{odd.id}", "4.00"),
    ]
    assert len(statement.credits) == 1
    assert desk.run(desk.payouts.paid_by_statement(statement)) == [w.id]
    assert desk.run(desk.payouts.paid_by_statement(statement)) == []  # imported again
    desk.run(desk.payouts.finish())
    assert desk.status(w) == "confirmed" and desk.status(odd) == "broadcast"
    assert desk.eur() == (5_000 * EUR - 9_990 - 500, 500)


def test_the_fiat_withdrawal_terms_come_from_the_config_and_are_checked() -> None:
    base = {
        "currencies": {"EUR": 2, "JPY": 0},
        "bank": {"iban": IBAN, "bic": "COBADEFFXXX", "beneficiary": "Tradewind Ltd"},
    }
    terms = {"fee": "1", "minimum": "20", "auto_approve_below": "500", "two_person_above": "9000"}
    config = parse_fiat({**base, "withdrawals": terms})
    eur = fiat_withdrawal_rules(config.currencies, config.withdrawals)["EUR"]
    assert (eur.withdrawal_fee, eur.min_withdrawal) == (100, 2_000)
    assert (eur.auto_approve_below, eur.two_person_above) == (50_000, 900_000)
    assert fiat_withdrawal_rules(config.currencies, config.withdrawals)["JPY"].withdrawal_fee == 1
    with pytest.raises(FiatConfigError, match=r"fiat.withdrawals.fee: .*JPY"):
        parse_fiat({**base, "withdrawals": {"fee": "0.50"}})  # JPY has no decimals
    with pytest.raises(FiatConfigError, match="unknown key 'max'"):
        parse_fiat({**base, "withdrawals": {"max": "1"}})
    default = fiat_withdrawal_rules({"EUR": 2})["EUR"]
    assert (default.withdrawal_fee, default.min_withdrawal, default.auto_approve_below) == (
        0,
        100,
        0,
    )


def test_a_fee_is_kept_and_the_file_pays_the_net_amount() -> None:
    desk = FiatDesk()
    desk.service.fiat = fiat_withdrawal_rules(
        {"EUR": 2}, FiatWithdrawalTerms(fee="0.50", auto_approve_below="100")
    )
    desk.add_iban()
    desk.clock.advance(desk.policy.cooling_off_ms)
    w = desk.ask_eur("50", "fee-00001")
    assert (w.status, w.fee) == ("approved", 50)  # below 100 EUR: no review
    batch = desk.run(desk.payouts.take())
    assert [str(p.amount) for p in batch.payouts] == ["49.50"]
