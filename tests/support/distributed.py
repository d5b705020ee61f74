"""The processes of distributed mode (``tradewind core``, ``api``, ``projector``) as real
subprocesses for end-to-end tests, sharing one deployment's settings."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
import pytest

START_TIMEOUT_S = 30.0
CLI = "from tradewind.runtime.cli import main; main()"


class Process:
    """One ``tradewind <command>`` subprocess, logging to ``<log_dir>/<name>.log``."""

    def __init__(
        self, name: str, command: list[str], env: Mapping[str, str], log_dir: Path
    ) -> None:
        self.name = name
        self.command = command
        self.env = dict(env)
        self.log = log_dir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", CLI, *self.command], env=self.env, stdout=out, stderr=out
            )

    def start(self, ready: Callable[[], bool], timeout_s: float = START_TIMEOUT_S) -> None:
        self.spawn()
        self.wait(ready, timeout_s)

    def wait(self, ready: Callable[[], bool], timeout_s: float = START_TIMEOUT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                pytest.fail(f"{self.name} exited with {self.proc.returncode}: {self.tail()}")
            try:
                if ready():
                    return
            except (httpx.HTTPError, OSError):
                pass
            time.sleep(0.05)
        pytest.fail(f"{self.name} not ready after {timeout_s} s: {self.tail()}")

    def printed(self, text: str) -> bool:
        return self.log.exists() and text in self.log.read_text(errors="replace")

    def tail(self, n: int = 4000) -> str:
        return self.log.read_text(errors="replace")[-n:] if self.log.exists() else ""

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def stop(self) -> None:
        stop_all([self])


def stop_all(processes: list[Process], timeout_s: float = 15.0) -> None:
    """SIGTERM to every running process at once, then wait for each (SIGKILL after
    ``timeout_s``): a deployment's five or six graceful shutdowns overlap instead of
    adding up in every test's teardown."""
    running = [p for p in processes if p.proc is not None and p.proc.poll() is None]
    for p in running:
        assert p.proc is not None
        p.proc.terminate()
    deadline = time.monotonic() + timeout_s
    for p in running:
        assert p.proc is not None
        try:
            p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.proc.kill()
            p.proc.wait()
    for p in processes:
        p.proc = None


def base_env(**settings: str) -> dict[str, str]:
    """The environment of every process of one deployment: this one's ``TRADEWIND_*``
    settings, none inherited from the caller's."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRADEWIND_")}
    env.update({f"TRADEWIND_{k.upper()}": v for k, v in settings.items()})
    return env
