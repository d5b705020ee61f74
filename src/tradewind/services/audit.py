"""The audit log: append-only and hash-chained, for every security and admin action.

Why a chain: an insider or an attacker with database access who edits, inserts or
removes an entry to hide what was done must then recompute every later hash; the
verifier (``tradewind audit verify``) recomputes the chain and names the first entry
that does not match. Rewriting the whole chain from the altered entry on is detected
only against a head recorded elsewhere (the verifier prints the head hash to keep,
and ``--expect-head`` checks it; docs/security.md).

Invariants:
- entry ``n`` (from 1, no gaps) holds ``prev_hash`` = the hash of entry ``n - 1``
  (64 zeros for the first) and ``hash`` = SHA-256 of its canonical encoding
  (:func:`entry_hash`), which covers every field but ``hash`` itself;
- appending is atomic with reading the previous head (the store's job): two writers
  never chain onto the same entry;
- details are small JSON values chosen by the caller and never hold secrets
  (passwords, tokens, API secrets, TOTP codes): callers pass ids and outcomes only.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from tradewind.services.ports import Clock

GENESIS = "0" * 64
log = logging.getLogger(__name__)
DetailValue = str | int | bool | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    seq: int
    ts_ms: int
    actor_id: int | None
    """The user who acted; ``None`` for the system or the command line."""
    actor_role: str
    action: str
    """A dotted name, e.g. ``admin.freeze``, ``api_key.create``, ``auth.login_failed``."""
    subject_id: int | None
    """The user the action was about, if any."""
    details: str
    """Canonical JSON of the details (sorted keys, no spaces)."""
    ip: str | None
    prev_hash: str
    hash: str

    def details_dict(self) -> dict[str, DetailValue]:
        value = json.loads(self.details)
        return value if isinstance(value, dict) else {}


def canonical_details(details: Mapping[str, DetailValue] | None) -> str:
    return json.dumps(dict(details or {}), sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def entry_hash(
    seq: int,
    ts_ms: int,
    actor_id: int | None,
    actor_role: str,
    action: str,
    subject_id: int | None,
    details: str,
    ip: str | None,
    prev_hash: str,
) -> str:
    """SHA-256 over the canonical JSON array of the fields (unambiguous: no separator
    inside a field can shift a boundary)."""
    body = json.dumps(
        [seq, ts_ms, actor_id, actor_role, action, subject_id, details, ip, prev_hash],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(body.encode("ascii")).hexdigest()


def recompute(entry: AuditEntry) -> str:
    return entry_hash(
        entry.seq,
        entry.ts_ms,
        entry.actor_id,
        entry.actor_role,
        entry.action,
        entry.subject_id,
        entry.details,
        entry.ip,
        entry.prev_hash,
    )


class AuditStore(Protocol):
    async def append(self, build: Callable[[int, str], AuditEntry]) -> AuditEntry:
        """In one transaction: read the head (its seq and hash; ``0, GENESIS`` when
        empty), store ``build(head_seq + 1, head_hash)`` and return it. Concurrent
        appenders must not both chain onto the same head (retry or lock)."""
        ...

    async def read(self, after_seq: int, limit: int) -> Sequence[AuditEntry]:
        """Entries with ``seq > after_seq`` in seq order, at most ``limit``."""
        ...

    async def list_recent(
        self, *, limit: int, before_seq: int | None = None, subject_id: int | None = None
    ) -> Sequence[AuditEntry]:
        """Newest first (for the admin API)."""
        ...


@dataclass(frozen=True, slots=True)
class AuditVerification:
    ok: bool
    entries: int
    """Entries checked (up to and including the first bad one)."""
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str | None = None


class AuditLog:
    """Writes and checks the chain; the gateways and services call :meth:`record`."""

    def __init__(self, store: AuditStore, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._pending: set[asyncio.Task[AuditEntry | None]] = set()

    async def record(
        self,
        action: str,
        *,
        actor_id: int | None = None,
        actor_role: str = "system",
        subject_id: int | None = None,
        details: Mapping[str, DetailValue] | None = None,
        ip: str | None = None,
    ) -> AuditEntry:
        return await self._append(
            self._clock.now_ms(), action, actor_id, actor_role, subject_id, details, ip
        )

    def record_soon(
        self,
        action: str,
        *,
        actor_id: int | None = None,
        actor_role: str = "system",
        subject_id: int | None = None,
        details: Mapping[str, DetailValue] | None = None,
        ip: str | None = None,
    ) -> None:
        """Like :meth:`record` (the entry's time is now), but written by a background
        task: the caller's answer does not wait for the database.

        Why: an entry written on the request path only in some cases (a failed sign-in
        of an existing account, never of an unknown email) makes those answers slower,
        which tells an attacker which emails have accounts. A failed write is logged;
        :meth:`drain` waits for the writes still in flight (tests, shutdown)."""
        ts = self._clock.now_ms()

        async def write() -> AuditEntry | None:
            try:
                return await self._append(ts, action, actor_id, actor_role, subject_id, details, ip)
            except Exception:
                log.exception("audit entry %s could not be written", action)
                return None

        task = asyncio.get_running_loop().create_task(write())
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def drain(self) -> None:
        """Wait until every :meth:`record_soon` entry so far is written (or failed)."""
        while self._pending:
            await asyncio.gather(*self._pending)

    async def _append(
        self,
        ts: int,
        action: str,
        actor_id: int | None,
        actor_role: str,
        subject_id: int | None,
        details: Mapping[str, DetailValue] | None,
        ip: str | None,
    ) -> AuditEntry:
        text = canonical_details(details)
        address = ip[:45] if ip else None

        def build(seq: int, prev: str) -> AuditEntry:
            digest = entry_hash(
                seq, ts, actor_id, actor_role, action, subject_id, text, address, prev
            )
            return AuditEntry(
                seq, ts, actor_id, actor_role, action, subject_id, text, address, prev, digest
            )

        return await self._store.append(build)

    async def recent(
        self, *, limit: int = 100, before_seq: int | None = None, subject_id: int | None = None
    ) -> Sequence[AuditEntry]:
        return await self._store.list_recent(
            limit=limit, before_seq=before_seq, subject_id=subject_id
        )

    async def entries(self, chunk: int = 1000) -> AsyncIterator[AuditEntry]:
        after = 0
        while True:
            batch = await self._store.read(after, chunk)
            if not batch:
                return
            for entry in batch:
                yield entry
            after = batch[-1].seq

    async def verify(self, *, expect_head: str | None = None) -> AuditVerification:
        """Walk the chain from the first entry; stop at the first one that is wrong.

        ``expect_head``: a hash recorded earlier (``seq:hash`` or just the hash); the
        chain must still contain it at that position, which detects a rewritten or
        truncated tail."""
        expected_seq: int | None = None
        expected_hash = expect_head
        if expect_head is not None and ":" in expect_head:
            seq_text, _, expected_hash = expect_head.partition(":")
            expected_seq = int(seq_text) if seq_text.isdigit() else -1
        prev_hash, prev_seq, count = GENESIS, 0, 0
        found_anchor = expect_head is None
        async for entry in self.entries():
            count += 1
            problem: str | None = None
            if entry.seq != prev_seq + 1:
                problem = f"expected seq {prev_seq + 1}, found {entry.seq} (entries removed)"
            elif entry.prev_hash != prev_hash:
                problem = "prev_hash does not match the previous entry's hash"
            elif recompute(entry) != entry.hash:
                problem = "hash does not match the entry's content (entry altered)"
            if problem is not None:
                return AuditVerification(False, count, prev_seq, prev_hash, entry.seq, problem)
            if not found_anchor and entry.hash == expected_hash:
                if expected_seq is not None and expected_seq != entry.seq:
                    return AuditVerification(
                        False,
                        count,
                        entry.seq,
                        entry.hash,
                        entry.seq,
                        f"the expected head is at seq {entry.seq}, not {expected_seq}",
                    )
                found_anchor = True
            prev_hash, prev_seq = entry.hash, entry.seq
        if not found_anchor:
            return AuditVerification(
                False,
                count,
                prev_seq,
                prev_hash,
                expected_seq if expected_seq is not None and expected_seq > 0 else prev_seq + 1,
                "the expected head is not in the chain (tail rewritten or truncated)",
            )
        return AuditVerification(True, count, prev_seq, prev_hash)
