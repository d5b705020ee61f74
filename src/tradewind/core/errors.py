"""The core's one internal exception: a check failed before any mutation.

``Core.apply`` turns it into a ``Rejected`` event; it never leaves the core. It lives in
a module of its own so that the margin modules, which the engine imports, can raise it
too without importing the engine.
"""

from __future__ import annotations


class Reject(Exception):
    """Raised by a check before any mutation; ``apply`` turns it into ``Rejected``."""

    def __init__(self, reason: str, message: str, filter: str | None = None) -> None:
        self.reason = reason
        self.message = message
        self.filter = filter
