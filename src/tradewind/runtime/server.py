"""``tradewind serve`` / ``tradewind demo``: the embedded exchange behind uvicorn; and the
processes of distributed mode: ``tradewind core``, ``tradewind api``, ``tradewind
projector``.

Invariants: the exchange (or the process) is fully started (journal recovered, read
models rebuilt, migrations applied, demo seeded) before the HTTP port opens or commands
are taken, and it is stopped (journal committed and released, queued events published)
after, including on SIGINT/SIGTERM; a start-up failure is reported as one clear line and
exit code 1 (2 for a missing or bad setting), never a traceback.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import sys
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TYPE_CHECKING, Any

import structlog

from tradewind.journal.journal import JournalError
from tradewind.journal.snapshot import SnapshotError
from tradewind.runtime.config import ConfigError, Settings

if TYPE_CHECKING:
    import uvicorn

log = structlog.get_logger(__name__)

# uvicorn is imported by the processes that serve HTTP (serve, api), not by the core's
# and the projector's, which use only _run (docs/performance.md#start-up).


def _server(config: uvicorn.Config) -> uvicorn.Server:
    """A uvicorn server whose SIGINT/SIGTERM only stops serving (see ``_Server``)."""
    import uvicorn

    class _Server(uvicorn.Server):
        """uvicorn re-raises SIGINT/SIGTERM once it has stopped serving, which would
        end the process before the exchange is stopped; here the signal only stops the
        server and ``_serve`` stops the exchange, then the process exits normally."""

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            super().handle_exit(sig, frame)
            captured = getattr(self, "_captured_signals", None)
            if isinstance(captured, list):
                captured.clear()

    return _Server(config)


GC_THRESHOLDS = (10_000, 20, 100)
"""The cycle collector's generation thresholds in every server process (CPython's are
700, 10, 10; ADR 0047). Under order load the defaults ran a young collection every few
requests and a full one every second or two; the full ones walked every order, level and
view made since start-up and took 25-110 ms, most of the 32-connection p99. With these a
young collection is due after 10,000 net new tracked objects (1-7 ms measured) and a full
one after 100 of the middle generation's, which load reaches in minutes, not seconds
(docs/performance.md). Cycles are still found, later."""


def _freeze_startup_heap() -> None:
    """Collect once, then take everything alive after start-up (modules, the recovered
    core, the rebuilt read models) out of the cycle collector's scans, so that a full
    collection under load walks only what was made since (docs/performance.md: about
    110 ms down to under 10 ms). Frozen objects are still freed by reference counting;
    only one that later dies inside a reference cycle is kept (bounded by that heap)."""
    gc.collect()
    gc.freeze()


async def _serve(settings: Settings) -> None:
    import uvicorn

    from tradewind.runtime.bootstrap import build_embedded

    exchange = build_embedded(settings, manage_lifecycle=False)
    await exchange.start()
    _freeze_startup_heap()
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
            http=_http_protocol(),
            ws=_ws_protocol(),
        )
        server = _server(config)
        print(
            f"Tradewind is running at {settings.url}  (API docs: {settings.url}/docs)", flush=True
        )
        await server.serve()
    finally:
        await exchange.stop()


def run_server(settings: Settings) -> int:
    """Run until interrupted; returns the process exit code."""
    return _run(lambda: _serve(settings))


async def _serve_api(settings: Settings) -> None:
    import uvicorn

    from tradewind.runtime.bootstrap import ApiReplica

    replica = ApiReplica(settings, manage_lifecycle=False)
    await replica.start()
    try:
        config = uvicorn.Config(
            replica.app,
            host=settings.host,
            port=settings.port,
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=5,
            http=_http_protocol(),
            ws=_ws_protocol(),
        )
        print(f"Tradewind API replica at {settings.url}", flush=True)
        await _server(config).serve()
    finally:
        await replica.stop()


async def _until_signalled(
    start: Callable[[], Awaitable[None]], stop: Callable[[], Awaitable[None]], banner: str
) -> None:
    """Start, print ``banner``, wait for SIGINT/SIGTERM, stop."""
    done = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    try:
        await start()
        print(banner, flush=True)
        await done.wait()
    finally:
        await stop()


async def _serve_core(settings: Settings) -> None:
    from tradewind.runtime.bootstrap import CoreProcess

    core = CoreProcess(settings)
    await _until_signalled(
        core.start,
        core.stop,
        f"Tradewind core running (data dir {core.data_dir}, queues {core.names.prefix}.*)",
    )


async def _serve_projector(settings: Settings) -> None:
    from tradewind.runtime.bootstrap import ProjectorProcess

    projector = ProjectorProcess(settings)
    await _until_signalled(
        projector.start,
        projector.stop,
        f"Tradewind projector running (queue {projector.consumer.queue_name})",
    )


def run_api(settings: Settings) -> int:
    """``tradewind api``: one API replica until interrupted."""
    return _run(lambda: _serve_api(settings))


def run_core(settings: Settings) -> int:
    """``tradewind core``: the core process until interrupted."""
    return _run(lambda: _serve_core(settings))


def run_projector(settings: Settings) -> int:
    """``tradewind projector``: the projector process until interrupted."""
    return _run(lambda: _serve_projector(settings))


def _http_protocol() -> Any:
    """uvicorn's httptools protocol with coalesced writes (:mod:`.corked`); uvicorn's
    own choice if httptools is missing."""
    try:
        from tradewind.runtime.corked import CorkedHttpToolsProtocol
    except ImportError:
        return "auto"
    return CorkedHttpToolsProtocol


def _ws_protocol() -> Any:
    """uvicorn's websockets protocol framing text messages itself (:mod:`.corked`)."""
    try:
        from tradewind.runtime.corked import FastFrameWebSocketsProtocol
    except ImportError:
        return "auto"
    return FastFrameWebSocketsProtocol


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when it is installed (``uvicorn[standard]`` brings it), as ``uvicorn.run``
    would choose; else asyncio's own loop. The loop is made here, not by uvicorn, because
    the exchange starts on it before the server does."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _run(main: Callable[[], Awaitable[None]]) -> int:
    async def go() -> None:
        await main()

    gc.set_threshold(*GC_THRESHOLDS)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(go())
    except KeyboardInterrupt:
        return 0
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (JournalError, SnapshotError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except Exception as e:
        log.exception("exchange failed")
        print(f"error: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0
