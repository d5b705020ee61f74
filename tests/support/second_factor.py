"""A second-factor check for services built in tests whose users have no 2FA."""

from __future__ import annotations


class NoSecondFactor:
    """No user has a second factor: every request passes without a code."""

    async def enabled(self, user_id: int) -> bool:
        return False

    async def require(self, user_id: int, code: str | None) -> None:
        return None
