"""The margin figures' inputs in Redis (distributed mode, ADR 0033): written by the core
process, read by the API replicas.

Keys under the prefix ``P`` (setting ``redis_prefix``):

- ``P:margin:state`` (hash): ``seq`` (every change up to it is published) and
  ``globals`` (terms, marks, markets, pool cash; msgpack);
- ``P:margin:u:<user>`` (hash): one field per wallet of the user (its id) -> the
  wallet's row (msgpack);
- ``P:margin:changes`` (pub/sub channel): ``[seq, marks moved, [users]]`` after each
  update that changed something.

Invariants:
- an update (seq, globals, rows, notice) is one ``MULTI``/``EXEC``: a reader never sees
  half of one; a reader reads ``P:margin:state`` and its user's hash in one transaction;
- a rewrite (a core's start) replaces every user hash: a user's ``DEL`` and new fields
  go in one transaction, hashes of users the core does not know are deleted; the state
  hash is deleted before and written after all of them, so a reader never sees the new
  seq (or an old one) beside a user hash not yet rewritten.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Final

from redis.asyncio import Redis

from tradewind.services.margin_mirror import decode_notice, encode_notice

CHUNK: Final = 500
"""Users per transaction of a rewrite."""


class _Keys:
    def __init__(self, prefix: str) -> None:
        self.state = f"{prefix}:margin:state"
        self.user_prefix = f"{prefix}:margin:u:"
        self.changes = f"{prefix}:margin:changes"

    def user(self, user: int) -> str:
        return f"{self.user_prefix}{user}"


class RedisMarginSink:
    """:class:`~tradewind.services.margin_mirror.MarginSink` on Redis."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._keys = _Keys(prefix)

    async def write(
        self,
        seq: int,
        glob: bytes | None,
        rows: dict[int, dict[int, bytes]],
        marks_moved: bool,
    ) -> None:
        k = self._keys
        fields: dict[Any, Any] = {"seq": seq}
        if glob is not None:
            fields["globals"] = glob
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(k.state, mapping=fields)
            for user, user_rows in rows.items():
                pipe.hset(k.user(user), mapping={str(w): r for w, r in user_rows.items()})
            if rows or marks_moved or glob is not None:
                pipe.publish(k.changes, encode_notice(seq, marks_moved or glob is not None, rows))
            await pipe.execute()

    async def rewrite(self, seq: int, glob: bytes, rows: dict[int, dict[int, bytes]]) -> None:
        k = self._keys
        # The state goes first and comes back last: while the user hashes are rewritten
        # (several transactions) a reader finds no seq and no globals, so it waits or
        # answers "not published yet", never trusts a half-written user as up to date
        # (nor a previous core's seq, which may be ahead of this one's).
        await self._redis.delete(k.state)
        stale: list[str] = []
        async for key in self._redis.scan_iter(match=f"{k.user_prefix}*", count=1000):
            name = key.decode() if isinstance(key, bytes) else str(key)
            tail = name[len(k.user_prefix) :]
            if not tail.lstrip("-").isdigit() or int(tail) not in rows:
                stale.append(name)
        for i in range(0, len(stale), CHUNK):
            await self._redis.delete(*stale[i : i + CHUNK])
        users = sorted(rows)
        for i in range(0, len(users), CHUNK):
            async with self._redis.pipeline(transaction=True) as pipe:
                for user in users[i : i + CHUNK]:
                    pipe.delete(k.user(user))
                    pipe.hset(k.user(user), mapping={str(w): r for w, r in rows[user].items()})
                await pipe.execute()
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hset(k.state, mapping={"seq": seq, "globals": glob})
            pipe.publish(k.changes, encode_notice(seq, True, users))
            await pipe.execute()


class RedisMarginSource:
    """:class:`~tradewind.services.margin_mirror.MarginSource` on Redis, and the change
    notices for a replica's WebSocket channel."""

    def __init__(self, redis: Redis, *, prefix: str) -> None:
        self._redis = redis
        self._keys = _Keys(prefix)

    async def read(self, user: int | None) -> tuple[int, bytes | None, dict[int, bytes]]:
        k = self._keys
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(k.state)
            if user is not None:
                pipe.hgetall(k.user(user))
            out = await pipe.execute()
        state: dict[bytes, bytes] = out[0]
        rows_raw: dict[bytes, bytes] = out[1] if user is not None else {}
        seq = int(state.get(b"seq", b"0"))
        rows = {int(w): r for w, r in rows_raw.items()}
        return seq, state.get(b"globals"), rows

    async def changes(self) -> AsyncIterator[tuple[int, bool, list[int]]]:
        """Change notices as they come (none are replayed: a notice missed while not
        subscribed is only a level update that comes at the next change)."""
        pubsub = self._redis.pubsub()
        await pubsub.subscribe(self._keys.changes)
        try:
            async for message in pubsub.listen():
                if message.get("type") == "message":
                    yield decode_notice(message["data"])
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
