"""``tradewind serve`` as a real process for end-to-end tests (free port, own data dir)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

START_TIMEOUT_S = 60.0
_NOT_INHERITED = ("TRADEWIND_DATABASE_URL", "TRADEWIND_CONFIG")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Server:
    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / f"serve-{port}.log"

    def start(self, **extra_env: str) -> None:
        # a config file or database of the caller's shell is not inherited; one given
        # in extra_env is used (e.g. TRADEWIND_CONFIG for a [funding] table)
        inherited = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
        env = {
            **inherited,
            "TRADEWIND_DATA_DIR": str(self.data_dir),
            "TRADEWIND_HOST": "127.0.0.1",
            "TRADEWIND_PORT": str(self.port),
            "TRADEWIND_DEMO": "1",
            "TRADEWIND_DEMO_BOT": "0",
            "TRADEWIND_LOG_LEVEL": "warning",
            **extra_env,
        }
        code = "from tradewind.runtime.cli import main; main()"
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, "serve"], env=env, stdout=out, stderr=out
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"server exited with {self.proc.returncode}: {self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"server not ready after {START_TIMEOUT_S} s: {self.log.read_text()}")

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@contextmanager
def running_server(data_dir: Path, **extra_env: str) -> Iterator[Server]:
    """A started :class:`Server` on a free port, stopped on exit (fixtures' one-liner)."""
    srv = Server(data_dir, free_port())
    srv.start(**extra_env)
    try:
        yield srv
    finally:
        srv.stop()
