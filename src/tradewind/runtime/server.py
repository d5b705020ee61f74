"""``tradewind serve`` / ``tradewind demo``: the embedded exchange behind uvicorn.

Invariants: the exchange is fully started (journal recovered, read models rebuilt,
migrations applied, demo seeded) before the HTTP port opens, and it is stopped (journal
committed and released) after the server stops, including on SIGINT/SIGTERM; a start-up
failure is reported as one clear line and exit code 1, never a traceback.
"""

from __future__ import annotations

import asyncio
import sys
from types import FrameType

import structlog
import uvicorn

from tradewind.journal.journal import JournalError
from tradewind.journal.snapshot import SnapshotError
from tradewind.runtime.config import Settings

log = structlog.get_logger(__name__)


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGINT/SIGTERM once it has stopped serving, which would end the
    process before the exchange is stopped; here the signal only stops the server and
    ``_serve`` stops the exchange, then the process exits normally."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()


async def _serve(settings: Settings) -> None:
    from tradewind.runtime.bootstrap import build_embedded

    exchange = build_embedded(settings, manage_lifecycle=False)
    await exchange.start()
    try:
        config = uvicorn.Config(
            exchange.app,
            host=settings.host,
            port=settings.port,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
        )
        server = _Server(config)
        print(
            f"Tradewind is running at {settings.url}  (API docs: {settings.url}/docs)", flush=True
        )
        await server.serve()
    finally:
        await exchange.stop()


def run_server(settings: Settings) -> int:
    """Run until interrupted; returns the process exit code."""
    try:
        asyncio.run(_serve(settings))
    except KeyboardInterrupt:
        return 0
    except (JournalError, SnapshotError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        log.exception("exchange failed")
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0
