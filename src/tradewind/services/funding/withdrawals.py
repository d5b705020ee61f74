"""The withdrawal workflow: a user's request, checked and locked in the core at once,
then approved (automatically when small, by compliance otherwise, by two people when
large), paid out by the processor (payouts.py) and settled, or released (DESIGN §5,
issue 6 item 5, ADR 0022).

The checks run in this order, each with its own code, and a refused request stores
nothing and changes no balance:

1. ``account_frozen``; ``unknown_network`` / ``unknown_asset``; ``withdrawals_disabled``
   (suspended, or no payouts on this network here); ``memo_not_supported``;
2. the address: ``invalid_address``, ``address_checksum_mismatch``,
   ``address_wrong_network`` (services/funding/addresses.py);
3. the amount: ``invalid_amount`` (not a positive decimal with at most the asset's
   decimals), ``below_minimum`` (under ``min_withdrawal`` or not above the fee);
4. the second factor: ``two_factor_required`` (policy requires 2FA and the account has
   none), ``totp_required`` / ``invalid_totp`` / ``login_locked``;
5. the address book: ``address_not_whitelisted``, ``address_cooling_off``;
6. the KYC level's daily limit: ``kyc_limit_exceeded`` (services/kyc.py);
7. AML screening: ``address_blocked`` (and an audit entry).

Invariants:
- the funds are locked by the core's ``WithdrawHold`` whose id is the store's id; the
  row is written (``holding``) before the command, so a crash in between is finished by
  the processor, and the core's ``duplicate_withdrawal`` says the lock exists already;
- every status change is a compare-and-set in the store (two approvers, a cancel racing
  an approval, two processors: one wins, the other changes nothing), is written to the
  audit log, and (except the internal intents ``signing``, ``settling``,
  ``releasing``) sends the user a notice email;
- a release (cancel, reject, failure) is written as ``releasing`` before the core's
  ``WithdrawRelease``; the core refuses a second release (``unknown_withdrawal``), so
  the funds come back exactly once;
- the same ``Idempotency-Key`` with the same request answers the same withdrawal
  (without asking for the 2FA code again); with another request it is refused.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

import structlog

from tradewind.core.commands import MAX_INT, Deposit, WithdrawHold, WithdrawRelease, WithdrawSettle
from tradewind.core.events import Rejected
from tradewind.services import admin, errors
from tradewind.services.admin import AccountFrozen, Actor, AdminService, RoleRequired
from tradewind.services.audit import AuditLog, DetailValue
from tradewind.services.errors import ServiceError
from tradewind.services.fiat.bank_ids import validate_iban
from tradewind.services.funding.addresses import validate_address
from tradewind.services.funding.deposit_addresses import UnknownAssetOnNetwork, UnknownNetwork
from tradewind.services.funding.networks import AssetOnNetwork, NetworkCatalog, parse_amount
from tradewind.services.funding.switches import FundingSwitches
from tradewind.services.funding.withdrawal_config import WithdrawalPolicy
from tradewind.services.funding.withdrawal_ports import (
    CANCELLABLE,
    IdempotencyConflict,
    Screening,
    WhitelistedAddress,
    Withdrawal,
    WithdrawalEvent,
    WithdrawalStore,
)
from tradewind.services.identity_ports import IdentityRepository
from tradewind.services.kyc import KycService
from tradewind.services.mail import Outbox, notice_mail
from tradewind.services.trading import CommandBus

log = structlog.get_logger(__name__)

DAY_MS = 86_400_000
FIAT_NETWORK = "sepa"
"""Bank transfers (services/fiat/withdrawals.py): the destination is an IBAN, the
address book entry's label the account holder's name."""
FEE_ACCOUNT = 2**62 + 1
"""The exchange's withdrawal-fee account in the core (next to the adjustments account,
2**62): a settled withdrawal's fee is credited there with ref ``withdrawal-fee:<id>``,
so the books keep the fee the hot wallet kept."""
REVIEWERS = frozenset({"compliance", "admin"})
QUIET = frozenset({"holding", "signing", "settling", "releasing"})
"""Internal intents: audited, no email (the visible state that follows sends one)."""


# -- errors ---------------------------------------------------------------------------


class WithdrawalsDisabled(ServiceError):
    code: ClassVar[str] = "withdrawals_disabled"
    status_hint: ClassVar[int] = 409
    default_message: ClassVar[str] = "withdrawals of this asset on this network are suspended"


class MemoNotSupported(ServiceError):
    code = "memo_not_supported"
    status_hint = 400
    default_message = "this network takes no memo; send the request without one"


class InvalidAmount(ServiceError):
    code = "invalid_amount"
    status_hint = 400
    default_message = "amount must be a positive decimal string within the asset's decimals"


class BelowMinimum(ServiceError):
    code = "below_minimum"
    status_hint = 400
    default_message = "the amount is below the minimum withdrawal"


class TwoFactorRequired(ServiceError):
    code = "two_factor_required"
    status_hint = 403
    default_message = "withdrawals need two-factor authentication: enable it first"


class AddressNotWhitelisted(ServiceError):
    code = "address_not_whitelisted"
    status_hint = 403
    default_message = "add this address to your withdrawal address book first"


class AddressCoolingOff(ServiceError):
    code = "address_cooling_off"
    status_hint = 403
    default_message = "this address was added recently and cannot be used yet"


class AddressBlocked(ServiceError):
    code = "address_blocked"
    status_hint = 403
    default_message = "withdrawals to this address are not allowed"


class IdempotencyMismatch(ServiceError):
    code = "idempotency_mismatch"
    status_hint = 422
    default_message = "this Idempotency-Key was used for a different request"


class InvalidIdempotencyKey(ServiceError):
    code = "invalid_idempotency_key"
    status_hint = 400
    default_message = "send an Idempotency-Key header of 8 to 64 letters, digits, - or _"


class WithdrawalNotFound(ServiceError):
    code = "unknown_withdrawal"
    status_hint = 404
    default_message = "no such withdrawal"


class WithdrawalNotCancellable(ServiceError):
    code = "withdrawal_not_cancellable"
    status_hint = 409
    default_message = "the withdrawal is being paid out or finished; it cannot be stopped now"


class WithdrawalNotPending(ServiceError):
    code = "withdrawal_not_pending"
    status_hint = 409
    default_message = "the withdrawal is not waiting for approval"


class AlreadyApproved(ServiceError):
    code = "already_approved"
    status_hint = 409
    default_message = "you approved this withdrawal already; a second person must"


class SelfApproval(admin.SelfApproval):
    """The back office's ``self_approval``, with the withdrawal's wording (one code, one
    meaning: error codes are unique across services)."""

    default_message = "nobody approves their own withdrawal"


class WithdrawalRefused(ServiceError):
    """The core would not lock the funds (the reason is the core's code)."""

    code = "withdrawal_refused"
    status_hint = 400

    def __init__(self, reason: str, message: str | None = None) -> None:
        super().__init__(message or f"the withdrawal was refused: {reason}")
        self.code = reason  # type: ignore[misc]  # the core's code, e.g. insufficient_balance


class AddressExists(ServiceError):
    code = "address_exists"
    status_hint = 409
    default_message = "this address is in your address book already"


class AddressNotFound(ServiceError):
    code = "unknown_address"
    status_hint = 404
    default_message = "no such address in your address book"


class InvalidLabel(errors.InvalidLabel):
    """The identity service's ``invalid_label``, for address-book labels."""

    default_message = "a label is up to 64 printable characters"


# -- ports of this service -------------------------------------------------------------


class TwoFactorGate(Protocol):
    async def enabled(self, user_id: int) -> bool: ...

    async def require(self, user_id: int, code: str | None) -> None:
        """Pass, or raise ``totp_required`` / ``invalid_totp`` / ``login_locked``."""
        ...


class Notifier(Protocol):
    async def notify(self, user_id: int, subject: str, text: str) -> None: ...


class MailNotifier:
    """Notice emails through the outbox, with the user's anti-phishing code."""

    def __init__(
        self, identity: IdentityRepository, outbox: Outbox, now_ms: Callable[[], int]
    ) -> None:
        self._identity = identity
        self._outbox = outbox
        self._now_ms = now_ms

    async def notify(self, user_id: int, subject: str, text: str) -> None:
        record = await self._identity.get_identity(user_id)
        if record is None:
            return
        await self._outbox.put(
            notice_mail(record.email, subject, text, record.anti_phishing_code, user_id),
            self._now_ms(),
        )


@dataclass(frozen=True, slots=True)
class WithdrawalRequest:
    asset: str
    network: str
    address: str
    amount: str
    """Decimal string in the asset's units (gross: the fee is taken from it)."""
    memo: str | None = None

    def digest(self) -> str:
        """What the idempotency key is bound to (the 2FA code is not part of it)."""
        body = json.dumps(
            [self.asset, self.network, self.address, self.amount, self.memo],
            separators=(",", ":"),
        )
        return hashlib.sha256(body.encode()).hexdigest()


def _idempotency_key(key: object) -> str:
    if not isinstance(key, str) or not 8 <= len(key) <= 64:
        raise InvalidIdempotencyKey()
    if not all(c.isascii() and (c.isalnum() or c in "-_") for c in key):
        raise InvalidIdempotencyKey()
    return key


def format_units(amount: int, decimals: int) -> str:
    if decimals == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, frac = divmod(abs(amount), 10**decimals)
    return f"{sign}{whole}.{frac:0{decimals}d}"


class WithdrawalService:
    def __init__(
        self,
        *,
        catalog: NetworkCatalog,
        store: WithdrawalStore,
        bus: CommandBus,
        two_factor: TwoFactorGate,
        kyc: KycService,
        admin: AdminService,
        audit: AuditLog,
        notifier: Notifier,
        screening: Screening,
        policy: WithdrawalPolicy,
        now_ms: Callable[[], int],
        payout_networks: frozenset[str] | None = None,
        switches: FundingSwitches | None = None,
        fiat: Mapping[str, AssetOnNetwork] | None = None,
    ) -> None:
        self.catalog = catalog
        self.fiat = dict(fiat or {})
        """Fiat currency -> its rules on ``sepa`` (services/fiat/withdrawals.py)."""
        self.switches = switches
        """Runtime switches (ADR 0032): read uncached by every request and payout."""
        self.store = store
        self._bus = bus
        self._2fa = two_factor
        self._kyc = kyc
        self._admin = admin
        self._audit = audit
        self._notifier = notifier
        self._screening = screening
        self.policy = policy
        self.now_ms = now_ms
        self.payout_networks = (
            payout_networks
            if payout_networks is not None
            else frozenset(n.name for n in catalog.networks if n.kind in ("evm", "utxo"))
        )
        if self.fiat:
            self.payout_networks |= {FIAT_NETWORK}
        """Networks a payout driver exists for (EVM; Bitcoin since ADR 0029); others
        refuse withdrawals."""

    # -- rules ---------------------------------------------------------------------

    def rules(self, asset: str, network: str) -> AssetOnNetwork:
        if network == FIAT_NETWORK and self.fiat:
            fiat = self.fiat.get(asset)
            if fiat is None:
                raise UnknownAssetOnNetwork(
                    f"{asset!r} is not a fiat currency here ({', '.join(sorted(self.fiat))})"
                )
            return fiat
        net = self.catalog.network(network)
        if net is None:
            known = ", ".join(n.name for n in self.catalog.networks) or "none"
            raise UnknownNetwork(f"unknown network {network!r} (known: {known})")
        rules = net.asset(asset)
        if rules is None:
            elsewhere = self.catalog.networks_of(asset)
            hint = f"; it is on {', '.join(elsewhere)}" if elsewhere else ""
            raise UnknownAssetOnNetwork(f"{asset!r} is not on {network}{hint}")
        return rules

    async def live_rules(self, asset: str, network: str) -> AssetOnNetwork:
        """``rules`` with the runtime switches, read from the store (no cache)."""
        rules = self.rules(asset, network)
        if self.switches is not None:
            rules = await self.switches.rules(rules, fresh=True)
        return rules

    async def live_catalog(self) -> NetworkCatalog:
        if self.switches is None:
            return self.catalog
        return await self.switches.live_catalog()

    @staticmethod
    def minimum(rules: AssetOnNetwork) -> int:
        """The smallest gross amount: at least ``min_withdrawal`` and above the fee."""
        return max(rules.min_withdrawal, rules.withdrawal_fee + 1)

    def required_approvals(self, rules: AssetOnNetwork, amount: int) -> int:
        if amount < rules.auto_approve_below:
            return 0
        if rules.two_person_above is not None and amount > rules.two_person_above:
            return 2
        return 1

    def canonical_address(self, network: str, address: str) -> str:
        if network == FIAT_NETWORK and self.fiat:
            return validate_iban(address)  # invalid_iban / iban_checksum_mismatch
        net = self.catalog.network(network)
        if net is None:
            raise UnknownNetwork(f"unknown network {network!r}")
        return validate_address(net, address)

    # -- the request -------------------------------------------------------------------

    async def request(
        self,
        user_id: int,
        req: WithdrawalRequest,
        idempotency_key: object,
        totp: str | None,
        *,
        ip: str | None = None,
    ) -> Withdrawal:
        key = _idempotency_key(idempotency_key)
        digest = req.digest()
        existing = await self.store.by_key(user_id, key)
        if existing is not None:
            return self._replayed(existing, digest)
        await self._admin.check_withdrawal(user_id)
        rules = await self.live_rules(req.asset, req.network)
        if not rules.withdrawal_enabled or req.network not in self.payout_networks:
            raise WithdrawalsDisabled(
                f"withdrawals of {req.asset} on {req.network} are suspended"
                if not rules.withdrawal_enabled
                else f"{req.network} has no payouts here yet"
            )
        if req.memo:
            raise MemoNotSupported()
        address = self.canonical_address(req.network, req.address)
        try:
            amount = parse_amount(req.amount, rules.decimals)
        except ValueError:
            raise InvalidAmount(
                f"amount must be a positive decimal with at most {rules.decimals} decimals"
            ) from None
        if amount <= 0 or amount > MAX_INT:
            raise InvalidAmount()
        minimum = self.minimum(rules)
        if amount < minimum:
            raise BelowMinimum(
                f"the minimum withdrawal of {req.asset} on {req.network} is "
                f"{format_units(minimum, rules.decimals)} (the fee is "
                f"{format_units(rules.withdrawal_fee, rules.decimals)})"
            )
        if self.policy.require_2fa and not await self._2fa.enabled(user_id):
            raise TwoFactorRequired()
        await self._2fa.require(user_id, totp)
        now = self.now_ms()
        entry = await self.store.find_address(user_id, req.network, address)
        if entry is None:
            raise AddressNotWhitelisted(
                f"{address} is not in your address book for {req.network}; add it first"
            )
        if now < entry.usable_from_ms:
            minutes = -(-(entry.usable_from_ms - now) // 60_000)
            raise AddressCoolingOff(
                f"this address can be used from {entry.usable_from_ms} (in {minutes} minutes)"
            )
        if req.network == FIAT_NETWORK:
            await self._kyc.check_fiat(user_id)  # kyc_level_required
        today = await self.store.amount_since(user_id, req.asset, now - DAY_MS)
        await self._kyc.check_withdrawal(user_id, req.asset, rules.decimals, amount, today)
        screened = await self._screening.screen(req.network, address)
        if screened.blocked:
            await self._audit.record(
                "withdrawal.address_blocked",
                actor_id=user_id,
                actor_role="user",
                subject_id=user_id,
                details={
                    "network": req.network,
                    "address": address,
                    "source": screened.source,
                    "reason": screened.reason,
                },
                ip=ip,
            )
            raise AddressBlocked()
        try:
            w = await self.store.create(
                user_id=user_id,
                asset=req.asset,
                network=req.network,
                address=address,
                amount=amount,
                fee=rules.withdrawal_fee,
                memo=entry.label if req.network == FIAT_NETWORK else None,  # the payee's name
                required_approvals=self.required_approvals(rules, amount),
                idempotency_key=key,
                request_hash=digest,
                at_ms=now,
            )
        except IdempotencyConflict:  # a racing request with the same key won
            raced = await self.store.by_key(user_id, key)
            assert raced is not None
            return self._replayed(raced, digest)
        await self._record(w, "requested", actor_id=user_id, ip=ip, amount=amount, address=address)
        return await self.hold(w)

    def _replayed(self, existing: Withdrawal, digest: str) -> Withdrawal:
        if existing.request_hash != digest:
            raise IdempotencyMismatch()
        if existing.status == "refused":
            raise WithdrawalRefused(existing.reason or "refused")
        return existing

    async def hold(self, w: Withdrawal) -> Withdrawal:
        """Lock the funds of a ``holding`` withdrawal (again after a crash: the core's
        ``duplicate_withdrawal`` means the first lock happened)."""
        applied = await self._bus.submit(
            WithdrawHold(id=w.id, user=w.user_id, asset=w.asset, amount=w.amount)
        )
        rejected = next((e for e in applied.events if type(e) is Rejected), None)
        if rejected is not None and rejected.reason != "duplicate_withdrawal":
            await self.move(w, ("holding",), "refused", reason=rejected.reason)
            raise WithdrawalRefused(rejected.reason, rejected.message)
        target = "approved" if w.required_approvals == 0 else "pending_approval"
        await self.move(w, ("holding",), target, note=f"funds locked at seq {applied.seq}")
        return await self.get_any(w.id)

    # -- moves -------------------------------------------------------------------------

    async def move(
        self,
        w: Withdrawal,
        from_statuses: Sequence[str],
        to_status: str,
        *,
        actor_id: int | None = None,
        actor_role: str = "system",
        note: str | None = None,
        reason: str | None = None,
        **fields: object,
    ) -> bool:
        if reason is not None:
            fields["reason"] = reason
        moved = await self.store.transition(
            w.id,
            from_statuses,
            to_status,
            at_ms=self.now_ms(),
            actor_id=actor_id,
            note=note or reason,
            fields=fields,
        )
        if not moved:
            return False
        await self._record(
            w, to_status, actor_id=actor_id, actor_role=actor_role, note=note, reason=reason
        )
        if to_status not in QUIET:
            await self._notify(w, to_status, reason)
        return True

    async def _record(
        self,
        w: Withdrawal,
        what: str,
        *,
        actor_id: int | None = None,
        actor_role: str = "system",
        ip: str | None = None,
        **details: DetailValue,
    ) -> None:
        await self._audit.record(
            f"withdrawal.{what}",
            actor_id=actor_id,
            actor_role=actor_role if actor_id != w.user_id else "user",
            subject_id=w.user_id,
            details={"withdrawal": w.id, "asset": w.asset, "network": w.network, **details},
            ip=ip,
        )

    async def _notify(self, w: Withdrawal, status: str, reason: str | None) -> None:
        rules = self.fiat.get(w.asset) if w.network == FIAT_NETWORK else None
        rules = rules or self.catalog.asset_on(w.asset, w.network)
        amount = format_units(w.amount, rules.decimals) if rules else str(w.amount)
        what = {
            "pending_approval": "is waiting for review by our compliance team",
            "approved": "was approved and will be sent shortly",
            "signed": "was signed",
            "broadcast": "was sent to the network and is waiting for confirmations",
            "confirmed": "is confirmed on the network",
            "failed": "failed; the funds are back in your balance",
            "cancelled": "was cancelled; the funds are back in your balance",
            "rejected": "was rejected by our compliance team; the funds are back in your balance",
            "refused": "could not be accepted",
        }.get(status, f"is now {status}")
        text = f"Your withdrawal {w.id} of {amount} {w.asset} on {w.network} to {w.address} {what}."
        if reason:
            text += f"\nReason: {reason}"
        await self._notifier.notify(w.user_id, f"withdrawal {w.id} {status}", text)

    async def release(self, w: Withdrawal) -> bool:
        """Return a ``releasing`` withdrawal's funds and end it in its ``final_status``;
        safe to repeat (the core refuses a second release)."""
        applied = await self._bus.submit(WithdrawRelease(id=w.id))
        rejected = next((e for e in applied.events if type(e) is Rejected), None)
        if rejected is not None and rejected.reason != "unknown_withdrawal":
            log.error("release refused by the core", withdrawal=w.id, reason=rejected.reason)
            return False
        final = w.final_status or "failed"
        return await self.move(w, ("releasing",), final, reason=w.reason)

    async def settle(self, w: Withdrawal) -> bool:
        """Take a ``settling`` withdrawal's funds off the books and credit its fee to
        the fee account; both are refused by the core when repeated."""
        applied = await self._bus.submit(WithdrawSettle(id=w.id))
        rejected = next((e for e in applied.events if type(e) is Rejected), None)
        if rejected is not None and rejected.reason != "unknown_withdrawal":
            log.error("settle refused by the core", withdrawal=w.id, reason=rejected.reason)
            return False
        if w.fee > 0:
            fee = await self._bus.submit(
                Deposit(user=FEE_ACCOUNT, asset=w.asset, amount=w.fee, ref=f"withdrawal-fee:{w.id}")
            )
            bad = next((e for e in fee.events if type(e) is Rejected), None)
            if bad is not None and bad.reason != "duplicate_deposit":
                log.error("withdrawal fee not booked", withdrawal=w.id, reason=bad.reason)
        return await self.move(w, ("settling",), "confirmed")

    async def payable(self, w: Withdrawal) -> bool:
        """``False`` while the account is frozen or withdrawals of the asset on the
        network are switched off: an approved withdrawal then waits (unsigned,
        cancellable) instead of being paid out."""
        try:
            await self._admin.check_withdrawal(w.user_id)
        except AccountFrozen:
            return False
        if self.switches is not None and w.network in {n.name for n in self.catalog.networks}:
            rules = self.catalog.asset_on(w.asset, w.network)
            if rules is not None and not (await self.switches.rules(rules)).withdrawal_enabled:
                return False
        return True

    # -- the user's view and cancel -----------------------------------------------------

    async def get_any(self, withdrawal_id: int) -> Withdrawal:
        w = await self.store.get(withdrawal_id)
        if w is None:
            raise WithdrawalNotFound()
        return w

    async def get(self, user_id: int, withdrawal_id: int) -> Withdrawal:
        w = await self.store.get(withdrawal_id)
        if w is None or w.user_id != user_id:
            raise WithdrawalNotFound()
        return w

    async def timeline(self, withdrawal_id: int) -> Sequence[WithdrawalEvent]:
        return await self.store.timeline(withdrawal_id)

    async def list(
        self, user_id: int, *, limit: int = 100, before_id: int | None = None
    ) -> Sequence[Withdrawal]:
        return await self.store.list_for_user(user_id, limit=limit, before_id=before_id)

    async def cancel(self, user_id: int, withdrawal_id: int) -> Withdrawal:
        w = await self.get(user_id, withdrawal_id)
        if not await self.move(
            w,
            tuple(CANCELLABLE),
            "releasing",
            actor_id=user_id,
            actor_role="user",
            note="cancelled by the user",
            final_status="cancelled",
        ):
            raise WithdrawalNotCancellable()
        await self.release(await self.get_any(w.id))
        return await self.get_any(w.id)

    # -- the back office -----------------------------------------------------------------

    async def _reviewer(self, actor: Actor, action: str, subject: int | None = None) -> None:
        if actor.role not in REVIEWERS:
            await self._audit.record(
                "admin.denied",
                actor_id=actor.user_id,
                actor_role=actor.role,
                subject_id=subject,
                details={"attempted": action},
                ip=actor.ip,
            )
            raise RoleRequired(f"{action} needs the role compliance or admin")

    async def review_queue(
        self, actor: Actor, *, statuses: Sequence[str] = ("pending_approval",), limit: int = 100
    ) -> Sequence[Withdrawal]:
        await self._reviewer(actor, "withdrawals.list")
        return await self.store.list_by_status(statuses, limit=limit)

    async def approve(self, actor: Actor, withdrawal_id: int) -> Withdrawal:
        w = await self.get_any(withdrawal_id)
        await self._reviewer(actor, "withdrawals.approve", w.user_id)
        if actor.user_id is None:
            raise RoleRequired("approvals are made by a named staff member")
        if actor.user_id == w.user_id:
            raise SelfApproval()
        if w.status != "pending_approval":
            raise WithdrawalNotPending()
        count = await self.store.add_approval(w.id, actor.user_id, self.now_ms())
        if count is None:
            raise AlreadyApproved()
        await self._record(
            w,
            "approval",
            actor_id=actor.user_id,
            actor_role=actor.role,
            ip=actor.ip,
            approvals=count,
            required=w.required_approvals,
        )
        if count >= w.required_approvals:
            await self.move(
                w,
                ("pending_approval",),
                "approved",
                actor_id=actor.user_id,
                actor_role=actor.role,
                note=f"approved by {count} of {w.required_approvals}",
            )
        return await self.get_any(w.id)

    async def reject(self, actor: Actor, withdrawal_id: int, reason: str) -> Withdrawal:
        w = await self.get_any(withdrawal_id)
        await self._reviewer(actor, "withdrawals.reject", w.user_id)
        text = reason.strip() if isinstance(reason, str) else ""
        if not 3 <= len(text) <= 256:
            from tradewind.services.admin import InvalidReason

            raise InvalidReason()
        if not await self.move(
            w,
            tuple(CANCELLABLE),
            "releasing",
            actor_id=actor.user_id,
            actor_role=actor.role,
            reason=text,
            final_status="rejected",
        ):
            raise WithdrawalNotPending("the withdrawal is being paid out or finished")
        await self.release(await self.get_any(w.id))
        return await self.get_any(w.id)

    # -- the address book ----------------------------------------------------------------

    async def addresses(self, user_id: int) -> Sequence[WhitelistedAddress]:
        return await self.store.addresses(user_id)

    async def add_address(
        self,
        user_id: int,
        network: str,
        address: str,
        label: str,
        totp: str | None,
        *,
        ip: str | None = None,
    ) -> WhitelistedAddress:
        fiat = network == FIAT_NETWORK and bool(self.fiat)
        if self.catalog.network(network) is None and not fiat:
            known = ", ".join(n.name for n in self.catalog.networks) or "none"
            raise UnknownNetwork(f"unknown network {network!r} (known: {known})")
        canonical = self.canonical_address(network, address)
        text = label.strip()
        if len(text) > 64 or not text.isprintable():
            raise InvalidLabel()
        if fiat and (len(text) < 2 or len(text) > 64):
            raise InvalidLabel("a bank account's label is its holder's name, as the bank has it")
        if self.policy.require_2fa and not await self._2fa.enabled(user_id):
            raise TwoFactorRequired()
        await self._2fa.require(user_id, totp)
        now = self.now_ms()
        entry = await self.store.add_address(
            user_id=user_id,
            network=network,
            address=canonical,
            label=text,
            at_ms=now,
            usable_from_ms=now + self.policy.cooling_off_ms,
        )
        if entry is None:
            raise AddressExists()
        await self._audit.record(
            "withdrawal.address_added",
            actor_id=user_id,
            actor_role="user",
            subject_id=user_id,
            details={"network": network, "address": canonical, "usable_from": entry.usable_from_ms},
            ip=ip,
        )
        hours = self.policy.cooling_off_ms / 3_600_000
        await self._notifier.notify(
            user_id,
            "withdrawal address added",
            f"The address {canonical} on {network} was added to your withdrawal address "
            f"book. It can be used in {hours:g} hours. If this was not you, remove it at "
            "once and change your password.",
        )
        return entry

    async def remove_address(self, user_id: int, address_id: int) -> None:
        if not await self.store.remove_address(user_id, address_id):
            raise AddressNotFound()
        await self._audit.record(
            "withdrawal.address_removed",
            actor_id=user_id,
            actor_role="user",
            subject_id=user_id,
            details={"address_id": address_id},
        )
