"""Roles, the back office's actions and two-person approvals (DESIGN §4, issue 5 item 7).

Roles: ``user`` (everyone, the default), ``support`` (reads users; asks for 2FA
resets), ``compliance`` (approves 2FA resets; freezes and unfreezes accounts) and
``admin`` (everything support and compliance do but approving a 2FA reset; grants
roles; asks for and approves balance adjustments).

Invariants:
- every action checks the actor's role, stored server-side (never taken from the
  request), before reading or changing anything, and is written to the audit log
  (:mod:`tradewind.services.audit`) with who, whom and what, refused attempts included;
- a balance adjustment or a 2FA reset happens only when a second person approves it:
  the approver is never the requester, and an approval is decided once (a
  compare-and-set from ``pending``), so two approvers cannot execute it twice;
- adjustments are core commands (journaled, replayable): a credit is a ``Deposit``
  into the exchange's adjustments account followed by a ``Transfer`` to the user, a
  debit a ``Transfer`` from the user to it; the books stay balanced and every unit
  added or removed by hand is visible in that one account (ADR 0013);
- freezing stores the flag first (for the back office and the gateways' fast refusal),
  then submits the core's ``Freeze``: the single writer cancels every open order and stop
  of the user (spot and margin) and refuses the user's orders, amends, withdrawal holds,
  transfers and borrows from then on (ADR 0031), so an order racing the freeze from
  another API process is refused by the core, not only by this process's cache. While
  frozen, :meth:`AdminService.check_order` and :meth:`check_withdrawal` also refuse
  (``account_frozen``) before anything reaches the core. Unfreezing clears the flag,
  then submits ``Unfreeze``; both commands are submitted again on a retry (an
  ``already_frozen``/``not_frozen`` rejection means the core agrees already);
- nobody changes their own role, and the last admin cannot be demoted.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from tradewind.core.commands import MAX_INT, AnyCommand, Deposit, Freeze, Transfer, Unfreeze
from tradewind.core.events import OrderCancelled, Rejected
from tradewind.services.audit import AuditEntry, AuditLog, DetailValue
from tradewind.services.errors import ServiceError
from tradewind.services.ports import Clock
from tradewind.services.trading import CommandBus, CoreFailure

ROLES = ("user", "support", "compliance", "admin")
STAFF = frozenset({"support", "compliance", "admin"})
ADJUSTMENT_ACCOUNT = 2**62
"""The exchange's adjustments account in the core: far above any user id (ids grow
from 1), so it can never be a user's."""
OWN_ACCOUNTS = frozenset({ADJUSTMENT_ACCOUNT + 1})
"""Exchange accounts a balance adjustment may fund although no user row has their id:
the withdrawal-fee account (services/funding/withdrawals.py ``FEE_ACCOUNT``), which pays
the network fees the exchange's transactions cost (ADR 0034) and may need topping up."""

APPROVAL_KINDS = ("balance_adjustment", "two_factor_reset")


class RoleRequired(ServiceError):
    code = "role_required"
    status_hint = 403
    default_message = "your role does not allow this action"


class UserNotFound(ServiceError):
    code = "unknown_user"
    status_hint = 404
    default_message = "no such user"


class InvalidRole(ServiceError):
    code = "invalid_role"
    status_hint = 400
    default_message = "role must be one of user, support, compliance, admin"


class SelfApproval(ServiceError):
    code = "self_approval"
    status_hint = 403
    default_message = "a second person must approve this; you requested it"


class ApprovalNotFound(ServiceError):
    code = "unknown_approval"
    status_hint = 404
    default_message = "no such approval request"


class ApprovalNotPending(ServiceError):
    code = "approval_not_pending"
    status_hint = 409
    default_message = "the request was already approved or rejected"


class AccountFrozen(ServiceError):
    code = "account_frozen"
    status_hint = 403
    default_message = "the account is frozen; contact support"


class InvalidAdjustment(ServiceError):
    code = "invalid_adjustment"
    status_hint = 400
    default_message = "the adjustment amount must be a non-zero integer of minor units"


class InvalidReason(ServiceError):
    code = "invalid_reason"
    status_hint = 400
    default_message = "give a reason of 3 to 256 printable characters"


class SelfRoleChange(ServiceError):
    code = "self_role_change"
    status_hint = 403
    default_message = "nobody changes their own role"


class LastAdmin(ServiceError):
    code = "last_admin"
    status_hint = 409
    default_message = "the last admin cannot be demoted"


class NotSupported(ServiceError):
    code = "not_supported"
    status_hint = 501
    default_message = "this exchange has no second factor to reset"


# -- records and the store port ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class UserSummary:
    id: int
    email: str
    status: str
    created_at_ms: int
    role: str
    frozen: bool
    frozen_reason: str | None


@dataclass(frozen=True, slots=True)
class Approval:
    id: int
    kind: str
    subject_id: int
    payload: str
    """Canonical JSON of what to do (asset and amount, reason...)."""
    requested_by: int
    requested_at_ms: int
    status: str
    """``pending``, ``rejected``, ``executed`` or ``failed``."""
    decided_by: int | None
    decided_at_ms: int | None
    result: str | None

    def payload_dict(self) -> dict[str, DetailValue]:
        value = json.loads(self.payload)
        return value if isinstance(value, dict) else {}


class AdminStore(Protocol):
    async def role_of(self, user_id: int) -> str:
        """``user`` when no role was granted."""
        ...

    async def set_role(self, user_id: int, role: str, *, by: int | None, at_ms: int) -> None: ...

    async def count_role(self, role: str) -> int: ...

    async def get_user(self, user_id: int) -> UserSummary | None: ...

    async def list_users(
        self, *, limit: int, after_id: int = 0, email_contains: str | None = None
    ) -> Sequence[UserSummary]:
        """Users by id ascending, after ``after_id``."""
        ...

    async def freeze(self, user_id: int, *, reason: str, by: int | None, at_ms: int) -> bool:
        """``False`` if already frozen (the first reason stays)."""
        ...

    async def unfreeze(self, user_id: int) -> bool: ...

    async def is_frozen(self, user_id: int) -> bool: ...

    async def frozen_users(self, *, after_id: int, limit: int) -> Sequence[int]:
        """Ids of frozen accounts above ``after_id``, ascending."""
        ...

    async def add_approval(
        self, *, kind: str, subject_id: int, payload: str, requested_by: int, at_ms: int
    ) -> Approval: ...

    async def get_approval(self, approval_id: int) -> Approval | None: ...

    async def decide_approval(self, approval_id: int, *, status: str, by: int, at_ms: int) -> bool:
        """Compare-and-set from ``pending`` to ``status``; ``False`` if it was not pending."""
        ...

    async def finish_approval(self, approval_id: int, *, status: str, result: str) -> None: ...

    async def list_approvals(self, *, status: str | None, limit: int) -> Sequence[Approval]:
        """Newest first."""
        ...


class ListenedFrozen(Protocol):
    """Frozen flags kept exact by notifications of every freeze and unfreeze
    (runtime/authcache.py ``ListenedCache``)."""

    async def get(self, key: int, load: Callable[[], Awaitable[bool]]) -> bool: ...

    def forget(self, key: int) -> None: ...


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is acting, as the gateway authenticated them (role looked up server-side)."""

    user_id: int | None
    """``None`` for the command line (the operator at the machine)."""
    role: str
    ip: str | None = None


CLI_ACTOR = Actor(None, "admin", None)


def _clean_reason(reason: object) -> str:
    if not isinstance(reason, str):
        raise InvalidReason()
    text = reason.strip()
    if not 3 <= len(text) <= 256 or not text.isprintable():
        raise InvalidReason()
    return text


def _json(payload: dict[str, DetailValue]) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"))


class AdminService:
    def __init__(
        self,
        *,
        store: AdminStore,
        bus: CommandBus,
        audit: AuditLog,
        clock: Clock,
        reset_second_factor: Callable[[int], Awaitable[object]] | None = None,
        frozen_cache_ms: int = 1000,
        sole_writer: bool = False,
        listened_frozen: ListenedFrozen | None = None,
    ) -> None:
        self._store = store
        # listened_frozen (distributed mode on PostgreSQL, ADR 0045): frozen flags kept
        # exact by the NOTIFY every freeze/unfreeze sends; while it is not listening it
        # serves nothing and every check reads SQL
        self._listened = listened_frozen
        # user -> (frozen, valid until): the order path must not pay a SQL read per order;
        # freezes made by this process update it at once, other processes' within the TTL
        self._frozen: dict[int, tuple[bool, int]] = {}
        self._frozen_cache_ms = frozen_cache_ms
        self._freeze_epoch = 0  # a read that raced a freeze here is not cached
        # sole_writer (embedded mode: no other process freezes): every frozen account,
        # read once and then kept exact by freeze/unfreeze, so the order guard never
        # reads SQL (its 1 s refreshes were most of a placement's SQL, docs/performance.md)
        self._sole_writer = sole_writer
        self._frozen_set: set[int] | None = None
        self._bus = bus
        self._audit = audit
        self._clock = clock
        self._reset_2fa = reset_second_factor

    @property
    def audit(self) -> AuditLog:
        return self._audit

    async def actor(self, user_id: int, ip: str | None = None) -> Actor:
        return Actor(user_id, await self._store.role_of(user_id), ip)

    async def _record(
        self,
        actor: Actor,
        action: str,
        subject_id: int | None = None,
        **details: DetailValue,
    ) -> None:
        await self._audit.record(
            action,
            actor_id=actor.user_id,
            actor_role=actor.role,
            subject_id=subject_id,
            details=details,
            ip=actor.ip,
        )

    async def _require(
        self, actor: Actor, roles: frozenset[str], action: str, subject_id: int | None = None
    ) -> None:
        if actor.role not in roles:
            await self._record(actor, "admin.denied", subject_id, attempted=action)
            raise RoleRequired(f"{action} needs the role {' or '.join(sorted(roles))}")

    async def _user(self, user_id: int) -> UserSummary:
        user = await self._store.get_user(user_id)
        if user is None:
            raise UserNotFound()
        return user

    # -- reading -------------------------------------------------------------------

    async def list_users(
        self,
        actor: Actor,
        *,
        limit: int = 100,
        after_id: int = 0,
        email_contains: str | None = None,
    ) -> Sequence[UserSummary]:
        await self._require(actor, STAFF, "users.list")
        return await self._store.list_users(
            limit=limit, after_id=after_id, email_contains=email_contains
        )

    async def get_user(self, actor: Actor, user_id: int) -> UserSummary:
        await self._require(actor, STAFF, "users.read", user_id)
        user = await self._user(user_id)
        await self._record(actor, "admin.user_viewed", user_id)
        return user

    async def audit_entries(
        self, actor: Actor, *, limit: int, before_seq: int | None, subject_id: int | None
    ) -> Sequence[AuditEntry]:
        await self._require(actor, frozenset({"compliance", "admin"}), "audit.read")
        return await self._audit.recent(limit=limit, before_seq=before_seq, subject_id=subject_id)

    # -- roles -----------------------------------------------------------------------

    async def set_role(self, actor: Actor, user_id: int, role: str) -> UserSummary:
        await self._require(actor, frozenset({"admin"}), "roles.set", user_id)
        if role not in ROLES:
            raise InvalidRole()
        if actor.user_id == user_id:
            await self._record(actor, "admin.denied", user_id, attempted="roles.set_own")
            raise SelfRoleChange()
        user = await self._user(user_id)
        if user.role == "admin" and role != "admin" and await self._store.count_role("admin") <= 1:
            raise LastAdmin()
        await self._store.set_role(user_id, role, by=actor.user_id, at_ms=self._clock.now_ms())
        await self._record(actor, "admin.role_set", user_id, role=role, previous=user.role)
        return await self._user(user_id)

    # -- freezing ----------------------------------------------------------------------

    async def freeze(self, actor: Actor, user_id: int, reason: str) -> list[int]:
        """Freeze and cancel every open order; returns the cancelled order ids."""
        await self._require(actor, frozenset({"compliance", "admin"}), "accounts.freeze", user_id)
        text = _clean_reason(reason)
        await self._user(user_id)
        newly = await self._store.freeze(
            user_id, reason=text, by=actor.user_id, at_ms=self._clock.now_ms()
        )
        self._freeze_epoch += 1
        self._frozen.pop(user_id, None)
        if self._listened is not None:
            self._listened.forget(user_id)
        if self._frozen_set is not None:
            self._frozen_set.add(user_id)
        applied = await self._bus.submit(Freeze(user=user_id))
        self._core_agrees(applied.events, "already_frozen")
        # margin orders are cancelled as their wallet's (another account id): by reason
        cancelled = [
            e.id for e in applied.events if type(e) is OrderCancelled and e.reason == "frozen"
        ]
        await self._record(
            actor,
            "admin.freeze",
            user_id,
            reason=text,
            already_frozen=not newly,
            orders_cancelled=len(cancelled),
        )
        return cancelled

    async def unfreeze(self, actor: Actor, user_id: int, reason: str) -> None:
        await self._require(actor, frozenset({"compliance", "admin"}), "accounts.unfreeze", user_id)
        text = _clean_reason(reason)
        await self._user(user_id)
        was = await self._store.unfreeze(user_id)
        self._freeze_epoch += 1
        self._frozen.pop(user_id, None)
        if self._listened is not None:
            self._listened.forget(user_id)
        if self._frozen_set is not None:
            self._frozen_set.discard(user_id)
        applied = await self._bus.submit(Unfreeze(user=user_id))
        self._core_agrees(applied.events, "not_frozen")
        await self._record(actor, "admin.unfreeze", user_id, reason=text, was_frozen=was)

    async def sync_frozen(self) -> int:
        """Freeze in the core every account frozen in SQL (those frozen before the core
        knew freezes, or whose ``Freeze`` was lost to a core failure); run at start.
        Returns how many the core froze now (``already_frozen`` ones are not counted)."""
        frozen_now, after = 0, 0
        while True:
            batch = await self._store.frozen_users(after_id=after, limit=500)
            for user_id in batch:
                applied = await self._bus.submit(Freeze(user=user_id))
                self._core_agrees(applied.events, "already_frozen")
                if not any(type(e) is Rejected for e in applied.events):
                    frozen_now += 1
            if len(batch) < 500:
                return frozen_now
            after = batch[-1]

    @staticmethod
    def _core_agrees(events: Sequence[object], agreeing: str) -> None:
        """A freeze or unfreeze the core refused for a reason other than already being
        in that state is a failure (the SQL flag stays; a retry submits again)."""
        rejected = next((e for e in events if type(e) is Rejected), None)
        if rejected is not None and rejected.reason != agreeing:
            raise CoreFailure(f"the core refused it: {rejected.reason}")

    async def _all_frozen(self) -> set[int]:
        """Every frozen account (sole-writer mode), read once; a freeze or unfreeze
        during the read makes it start again."""
        while True:
            epoch = self._freeze_epoch
            users: set[int] = set()
            after = 0
            while True:
                batch = await self._store.frozen_users(after_id=after, limit=500)
                users.update(batch)
                if len(batch) < 500:
                    break
                after = batch[-1]
            if epoch == self._freeze_epoch:
                self._frozen_set = users
                return users

    async def _is_frozen(self, user: int) -> bool:
        if self._sole_writer:
            frozen_set = self._frozen_set
            if frozen_set is None:
                frozen_set = await self._all_frozen()
            return user in frozen_set
        if self._listened is not None:
            store = self._store
            return await self._listened.get(user, lambda: store.is_frozen(user))
        now = self._clock.now_ms()
        cached = self._frozen.get(user)
        if cached is not None and now < cached[1]:
            return cached[0]
        epoch = self._freeze_epoch
        frozen = await self._store.is_frozen(user)
        if epoch == self._freeze_epoch:
            if len(self._frozen) >= 100_000:
                self._frozen.clear()
            self._frozen[user] = (frozen, now + self._frozen_cache_ms)
        return frozen

    async def check_order(self, user: int) -> None:
        """The trading path's guard (an ``OrderGuard``): frozen accounts do not trade.
        Read through a per-process cache of ``frozen_cache_ms``, or the exact set of a
        sole writer (see ``__init__``)."""
        if await self._is_frozen(user):
            raise AccountFrozen()

    async def check_withdrawal(self, user: int) -> None:
        """For the withdrawal workflow: frozen accounts do not withdraw (read from the
        database every time: withdrawals are rare and must see a freeze at once)."""
        if await self._store.is_frozen(user):
            raise AccountFrozen()

    # -- two-person requests -------------------------------------------------------------

    async def request_adjustment(
        self, actor: Actor, user_id: int, asset: str, amount: int, reason: str
    ) -> Approval:
        """Ask for a manual credit (``amount > 0``) or debit (``< 0``) in minor units."""
        await self._require(actor, frozenset({"admin"}), "balances.adjust", user_id)
        if (
            isinstance(amount, bool)
            or not isinstance(amount, int)
            or amount == 0
            or abs(amount) > MAX_INT
        ):
            raise InvalidAdjustment()
        text = _clean_reason(reason)
        if user_id not in OWN_ACCOUNTS:
            await self._user(user_id)
        payload = _json({"asset": asset, "amount": amount, "reason": text})
        return await self._request(actor, "balance_adjustment", user_id, payload)

    async def request_two_factor_reset(self, actor: Actor, user_id: int, reason: str) -> Approval:
        await self._require(actor, frozenset({"support", "admin"}), "2fa.reset", user_id)
        if self._reset_2fa is None:
            raise NotSupported()
        text = _clean_reason(reason)
        await self._user(user_id)
        return await self._request(actor, "two_factor_reset", user_id, _json({"reason": text}))

    async def _request(self, actor: Actor, kind: str, subject: int, payload: str) -> Approval:
        if actor.user_id is None:
            raise RoleRequired("two-person requests are made by a named staff member")
        approval = await self._store.add_approval(
            kind=kind,
            subject_id=subject,
            payload=payload,
            requested_by=actor.user_id,
            at_ms=self._clock.now_ms(),
        )
        await self._record(
            actor, f"admin.{kind}_requested", subject, approval=approval.id, payload=payload
        )
        return approval

    async def list_approvals(
        self, actor: Actor, *, status: str | None = "pending", limit: int = 100
    ) -> Sequence[Approval]:
        await self._require(actor, STAFF, "approvals.list")
        return await self._store.list_approvals(status=status, limit=limit)

    def _approver_roles(self, kind: str) -> frozenset[str]:
        # support asks, compliance approves a 2FA reset; admins approve each other
        return frozenset({"compliance"}) if kind == "two_factor_reset" else frozenset({"admin"})

    async def _pending(self, actor: Actor, approval_id: int, verb: str) -> Approval:
        approval = await self._store.get_approval(approval_id)
        if approval is None:
            raise ApprovalNotFound()
        await self._require(
            actor, self._approver_roles(approval.kind), f"approvals.{verb}", approval.subject_id
        )
        if approval.status != "pending":
            raise ApprovalNotPending()
        if actor.user_id is None or actor.user_id == approval.requested_by:
            await self._record(
                actor, "admin.denied", approval.subject_id, attempted=f"approvals.{verb}_own"
            )
            raise SelfApproval()
        return approval

    async def reject(self, actor: Actor, approval_id: int) -> Approval:
        approval = await self._pending(actor, approval_id, "reject")
        assert actor.user_id is not None
        if not await self._store.decide_approval(
            approval_id, status="rejected", by=actor.user_id, at_ms=self._clock.now_ms()
        ):
            raise ApprovalNotPending()
        await self._record(
            actor, f"admin.{approval.kind}_rejected", approval.subject_id, approval=approval_id
        )
        return await self._get(approval_id)

    async def approve(self, actor: Actor, approval_id: int) -> Approval:
        """Approve and execute; the approval ends ``executed`` or ``failed`` (with why)."""
        approval = await self._pending(actor, approval_id, "approve")
        assert actor.user_id is not None
        if not await self._store.decide_approval(
            approval_id, status="approved", by=actor.user_id, at_ms=self._clock.now_ms()
        ):
            raise ApprovalNotPending()
        try:
            if approval.kind == "balance_adjustment":
                result = await self._adjust(approval)
            else:
                assert self._reset_2fa is not None
                await self._reset_2fa(approval.subject_id)
                result = "second factor removed"
            status = "executed"
        except (ServiceError, CoreFailure) as e:
            status, result = "failed", f"{e.code}: {e.message}"
        await self._store.finish_approval(approval_id, status=status, result=result)
        await self._record(
            actor,
            f"admin.{approval.kind}_{status}",
            approval.subject_id,
            approval=approval_id,
            requested_by=approval.requested_by,
            result=result,
        )
        return await self._get(approval_id)

    async def _get(self, approval_id: int) -> Approval:
        approval = await self._store.get_approval(approval_id)
        if approval is None:
            raise ApprovalNotFound()
        return approval

    async def _adjust(self, approval: Approval) -> str:
        payload = approval.payload_dict()
        asset, amount = payload["asset"], payload["amount"]
        assert isinstance(asset, str) and isinstance(amount, int)
        user = approval.subject_id
        steps: list[AnyCommand]
        if amount > 0:
            steps = [
                Deposit(user=ADJUSTMENT_ACCOUNT, asset=asset, amount=amount),
                Transfer(user=ADJUSTMENT_ACCOUNT, to=user, asset=asset, amount=amount),
            ]
        else:
            steps = [Transfer(user=user, to=ADJUSTMENT_ACCOUNT, asset=asset, amount=-amount)]
        seqs: list[int] = []
        for cmd in steps:
            applied = await self._bus.submit(cmd)
            rejected = next((e for e in applied.events if type(e) is Rejected), None)
            if rejected is not None:
                raise InvalidAdjustment(f"the core refused it: {rejected.reason}")
            seqs.append(applied.seq)
        return f"applied at seq {', '.join(map(str, seqs))}"
