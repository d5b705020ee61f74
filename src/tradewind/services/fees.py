"""Fee tiers from the back office: read the core's tiers, set a tier's rates (core
``SetFees``) and put a user on a tier (core ``SetTier``) (issue 8 item 4, ADR 0030).

Invariants:
- the core owns the rates: they change only by journaled ``SetFees``/``SetTier``
  commands, so replay, snapshots and every API replica agree; nothing is cached here;
- admins only, role looked up server-side; every change and every refused attempt is
  in the audit log with the previous value;
- bad input is refused before anything reaches the core: rates are integer basis points
  in ``0..10000`` (``invalid_fee_rate``), tiers ``0..100`` (``invalid_tier``); a tier that
  the core has not configured cannot be given to a user (the core's ``unknown_tier``,
  checked here first and refused by the core too).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tradewind.core.commands import SetFees, SetTier
from tradewind.core.events import Rejected
from tradewind.services.admin import Actor, AdminService, RoleRequired
from tradewind.services.audit import AuditLog
from tradewind.services.errors import ServiceError
from tradewind.services.trading import CommandBus

MAX_BPS = 10_000
MAX_TIER = 100
FEE_ROLES = frozenset({"admin"})

FeeTable = Callable[[], tuple[Mapping[int, tuple[int, int]], Mapping[int, int]]]
"""Returns the core's ``({tier: (maker_bps, taker_bps)}, {account: tier})``; accounts
include margin wallets (negative ids), which this service leaves out."""


class InvalidFeeRate(ServiceError):
    code = "invalid_fee_rate"
    status_hint = 400
    default_message = "fee rates are whole basis points from 0 to 10000"


class InvalidTier(ServiceError):
    code = "invalid_tier"
    status_hint = 400
    default_message = "a fee tier is a whole number from 0 to 100"


class UnknownTier(ServiceError):
    code = "unknown_tier"
    status_hint = 404
    default_message = "that fee tier is not configured; set its rates first"


class FeeChangeRefused(ServiceError):
    code = "fee_change_refused"
    status_hint = 409
    default_message = "the core refused the fee change"


@dataclass(frozen=True, slots=True)
class Tier:
    tier: int
    maker_bps: int
    taker_bps: int
    users: tuple[int, ...]
    """User ids on this tier, ascending. Tier 0 is the base: everyone on no other tier,
    so it lists nobody."""


def _bps(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_BPS:
        raise InvalidFeeRate()
    return value


def _tier(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TIER:
        raise InvalidTier()
    return value


class FeeAdmin:
    def __init__(
        self, *, bus: CommandBus, admin: AdminService, audit: AuditLog, table: FeeTable
    ) -> None:
        self._bus = bus
        self._admin = admin
        self._audit = audit
        self._table = table

    async def _require(self, actor: Actor, action: str, subject: int | None = None) -> None:
        if actor.role not in FEE_ROLES:
            await self._audit.record(
                "admin.denied",
                actor_id=actor.user_id,
                actor_role=actor.role,
                subject_id=subject,
                details={"attempted": action},
                ip=actor.ip,
            )
            raise RoleRequired(f"{action} needs the role admin")

    def _tiers(self) -> list[Tier]:
        rates, accounts = self._table()
        users: dict[int, list[int]] = {}
        for account, tier in accounts.items():
            if account > 0 and tier:  # margin wallets have negative ids
                users.setdefault(tier, []).append(account)
        return [
            Tier(t, m, k, tuple(sorted(users.get(t, ())))) for t, (m, k) in sorted(rates.items())
        ]

    async def tiers(self, actor: Actor) -> list[Tier]:
        await self._require(actor, "fees.read")
        return self._tiers()

    async def set_rates(self, actor: Actor, tier: int, maker_bps: int, taker_bps: int) -> Tier:
        await self._require(actor, "fees.set")
        tier, maker, taker = _tier(tier), _bps(maker_bps), _bps(taker_bps)
        previous = self._table()[0].get(tier)
        applied = await self._bus.submit(SetFees(maker_bps=maker, taker_bps=taker, tier=tier))
        rejected = next((e for e in applied.events if type(e) is Rejected), None)
        if rejected is not None:  # cannot happen for checked input; never hide it
            raise FeeChangeRefused(f"the core refused it: {rejected.reason}")
        await self._audit.record(
            "admin.fees_set",
            actor_id=actor.user_id,
            actor_role=actor.role,
            details={
                "tier": tier,
                "maker_bps": maker,
                "taker_bps": taker,
                "previous": None if previous is None else f"{previous[0]}/{previous[1]}",
                "seq": applied.seq,
            },
            ip=actor.ip,
        )
        return next(t for t in self._tiers() if t.tier == tier)

    async def set_user_tier(self, actor: Actor, user_id: int, tier: int) -> int:
        """Put ``user_id`` on ``tier``; returns the tier it was on."""
        await self._require(actor, "fees.set_tier", user_id)
        tier = _tier(tier)
        await self._admin.get_user(actor, user_id)  # unknown_user; a staff read, audited
        rates, accounts = self._table()
        if tier not in rates:
            raise UnknownTier()
        previous = accounts.get(user_id, 0)
        applied = await self._bus.submit(SetTier(user=user_id, tier=tier))
        rejected = next((e for e in applied.events if type(e) is Rejected), None)
        if rejected is not None:
            if rejected.reason == "unknown_tier":
                raise UnknownTier()
            raise FeeChangeRefused(f"the core refused it: {rejected.reason}")
        await self._audit.record(
            "admin.tier_set",
            actor_id=actor.user_id,
            actor_role=actor.role,
            subject_id=user_id,
            details={"tier": tier, "previous": previous, "seq": applied.seq},
            ip=actor.ip,
        )
        return previous
