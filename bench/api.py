"""The REST and WebSocket APIs under load, written to bench/results/api.json.

Tradewind (``tradewind demo --no-bot``: the embedded exchange, one process, journal with
fsync, SQLite) and the anchor (the ``matching-engine`` package's gateway: FastAPI +
uvicorn/httptools, fsync on, no authentication, balances or database; it needs
Python >= 3.12 and runs from ``bench/.anchor-venv``) are started side by side as
subprocesses on free loopback ports with fresh data directories, then driven by the same
closed-loop load generator (aiohttp; each of N workers owns one keep-alive connection
and sends its next request when the previous one has been answered):

- Tradewind: 32 users are registered, each gets an API key (read, trade) and funds from
  the demo faucet; every order request is signed (``TW-KEY``/``TW-TIMESTAMP``/
  ``TW-SIGNATURE``, docs/api.md). The anchor takes the same requests unsigned, with the
  worker's account number in the body.
- The order flow on BTC-USDT (per worker, seeded): GTC limits of 0.001-0.01 BTC resting
  0.50 to 20.00 USDT from a fixed mid of 65,000; one order in four an IOC limit of the
  same size priced 25 USDT through the mid, sent as the next worker's user (so it
  trades rather than meeting self-trade prevention); a cancel of the worker's oldest
  order once it has ``MAX_OPEN`` of them, and now and then of a random one. The book
  stays bounded (at most workers x ``MAX_OPEN`` resting orders); a cancel may find its
  order filled meanwhile (Tradewind 409, the anchor 200 "rejected"), which counts as a
  request like any other. The mix and the answers' statuses are recorded.
- 1 and 32 connections, ``--runs`` times each, Tradewind and the anchor in turn
  (A B A B ...) so that a drift of the (shared) machine's speed hits both; each run has
  a warm-up (not counted) and then ``--duration`` seconds counted. The figures that
  count are the medians over runs.
- WebSocket fan-out: 100 subscribers, in a child process (so that their CPU does not
  stretch the load generator's latencies), each subscribed to trades and book of
  BTC-USDT, during 32-connection load. Messages/s delivered in total, the updates they
  carry (a book diff's ``u - U + 1``, a trades message's trades), and lag = receive
  time - the server's event ``ts`` (Tradewind: the command's ``ts``, stamped by the core
  runner before the journal write, in ms; the anchor: trade messages only, its depth
  messages carry no time).
- CPU seconds of the server process (all threads, /proc) and of the load generator over
  each counted window, so ``server_cpu_us_per_request`` is comparable across runs even
  when other processes share the cores.
- Distributed mode (``--mode distributed|both``; ``both``, the default, when PostgreSQL,
  Redis and RabbitMQ answer, else embedded only): ``tradewind projector``, ``tradewind
  core`` and ``--replicas`` (2) ``tradewind api`` processes on a fresh database, Redis key
  prefix and AMQP prefix, all removed afterwards; worker ``i`` (and subscriber ``i``) on
  replica ``i % N``, users onboarded through the replica their worker uses; the same runs,
  results in ``tradewind_distributed``. Server CPU is the sum over the Tradewind processes;
  the service daemons' CPU (postgres, redis-server, beam.smp) is given separately.
- ``--profile``: one more 32-connection run of Tradewind under ``py-spy record``; the
  samples are classified (HTTP stack, signature, SQL, core runner, publish path...) into
  ``profile`` and the raw collapsed stacks kept (``--profile-out``).

Run: ``.venv/bin/python bench/api.py [--quick] [--runs N] [--duration S] [--profile]
[--mode embedded|distributed|both] [--replicas N]``,
or ``.venv/bin/python bench/run.py --api``. Needs aiohttp (and py-spy for --profile).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import contextlib
import datetime as dt
import json
import os
import random
import re
import secrets
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiohttp
import msgspec

from tradewind.runtime.benchmark import machine_info
from tradewind.services.accounts import sign_request

BENCH_DIR = Path(__file__).resolve().parent
RESULTS = BENCH_DIR / "results"
ANCHOR_PYTHON = BENCH_DIR / ".anchor-venv" / "bin" / "python"
SYMBOL = "BTC-USDT"
MID_CENTS = 6_500_000
"""Mid price in cents (65,000.00 USDT); the book is built around it."""
REST_STEP_CENTS = 50
REST_LEVELS = 40
"""Resting limits sit 1..REST_LEVELS steps of REST_STEP_CENTS from the mid."""
CROSS_CENTS = 2_500
"""IOC limits are priced this far through the mid: beyond every resting level."""
P_CROSS = 0.25
P_RANDOM_CANCEL = 0.1
MAX_OPEN = 16
MAX_CONNECTIONS = 32
WS_SUBSCRIBERS = 100
PROFILE_RATE_HZ = 200
PASSWORD = "bench-password-not-secret"
FUNDING = {"BTC": 100, "USDT": 1_000_000}
"""Whole units per user; the faucet gives at most 100,000 per request."""
START_TIMEOUT_S = 90.0
TW_OPEN = frozenset({"new", "partially_filled"})
ANCHOR_OPEN = frozenset({"resting", "partially_filled"})


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _median(xs: list[float]) -> float:
    return statistics.median(xs) if xs else 0.0


def percentiles_ms(samples_ns: list[int]) -> dict[str, float]:
    """Nearest-rank percentiles (ms) of latencies in ns."""
    if not samples_ns:
        return {}
    s = sorted(samples_ns)
    n = len(s)

    def pct(q: float) -> float:
        rank = max(1, -(-n * q // 100))
        return round(s[int(min(rank, n)) - 1] / 1e6, 3)

    return {
        "p50": pct(50),
        "p90": pct(90),
        "p99": pct(99),
        "p99_9": pct(99.9),
        "max": round(s[-1] / 1e6, 3),
        "mean": round(sum(s) / n / 1e6, 3),
    }


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process, all threads, and of its child processes,
    live (the journal's fsync helper, ADR 0048) or reaped (Linux /proc)."""
    stats: dict[int, list[str]] = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                    stats[int(entry.name)] = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
    if pid not in stats:
        return 0.0
    tree, todo = set(), [pid]
    while todo:
        p = todo.pop()
        tree.add(p)
        todo += [c for c, fields in stats.items() if int(fields[1]) == p and c not in tree]
    ticks = sum(int(stats[p][11]) + int(stats[p][12]) for p in tree)
    ticks += int(stats[pid][13]) + int(stats[pid][14])
    return ticks / os.sysconf("SC_CLK_TCK")


SERVICE_COMMS = {"postgres": "postgresql", "redis-server": "redis", "beam.smp": "rabbitmq"}
"""The service daemons' process names (/proc/PID/comm) and the service each belongs to."""


def services_cpu_seconds() -> dict[str, float]:
    """CPU seconds of the service daemons by service: every process whose comm is in
    ``SERVICE_COMMS``, user + system plus its reaped children's (a PostgreSQL backend
    that exits moves its time into the postmaster's), so the difference of two readings
    covers processes that came or went in between. Shared daemons: other clients' work
    counts too."""
    tick = os.sysconf("SC_CLK_TCK")
    out = dict.fromkeys(SERVICE_COMMS.values(), 0.0)
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                head, _, tail = f.read().rpartition(")")
        except OSError:
            continue
        service = SERVICE_COMMS.get(head.partition("(")[2])
        if service is None:
            continue
        fields = tail.split()
        out[service] += sum(int(x) for x in fields[11:15]) / tick
    return out


def _cents(c: int) -> str:
    return f"{c // 100}.{c % 100:02d}"


async def verify_email(http: aiohttp.ClientSession, email: str) -> None:
    """Verify a new account with the token the demo outbox shows at /dev/mail."""
    async with http.get("/dev/mail/messages", params={"to": email}) as r:
        assert r.status == 200, await r.text()
        mails = [m for m in await r.json() if m["kind"] == "verify_email"]
    lines = mails[0]["body"].splitlines()
    token = next(
        lines[i + 2].strip()
        for i, line in enumerate(lines)
        if line.endswith(":") and i + 2 < len(lines) and not lines[i + 1]
    )
    async with http.post("/api/v1/auth/verify-email", json={"token": token}) as r:
        assert r.status == 200, await r.text()


# ---------------------------------------------------------------- servers


@dataclass
class ServerProcess:
    """A server under test, as a subprocess with its own data directory and log."""

    name: str
    argv: list[str]
    env: dict[str, str]
    ready_path: str
    root: Path
    unset_env: tuple[str, ...] = ()
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.root / f"{self.name}.log"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        self.spawn()
        self.wait(self.answers_ready)

    def spawn(self) -> None:
        with open(self.log_path, "ab") as out:
            self.proc = subprocess.Popen(
                [a.replace("{port}", str(self.port)) for a in self.argv],
                env={
                    **{k: v for k, v in os.environ.items() if k not in self.unset_env},
                    **self.env,
                },
                stdout=out,
                stderr=out,
                cwd=self.root,
            )

    def wait(self, ready: Callable[[], bool]) -> None:
        """Until ``ready()`` holds; an error if the process exits or takes too long."""
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            with contextlib.suppress(OSError, IndexError):
                if ready():
                    return
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"{self.name} not ready after {START_TIMEOUT_S} s: {self.log_tail()}")

    def get(self, path: str) -> tuple[int, bytes]:
        """A plain HTTP/1.0 GET on the server: (status, body)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=2.0) as s:
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        return int(head.split(b" ")[1]), body

    def answers_ready(self) -> bool:
        return self.get(self.ready_path)[0] == 200

    def printed(self, text: str) -> bool:
        return text in self.log_tail(1_000_000)

    def log_tail(self, n: int = 2000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def tradewind_server(root: Path) -> ServerProcess:
    data = root / "tradewind-data"
    code = "from tradewind.runtime.cli import main; main()"
    return ServerProcess(
        name="tradewind",
        argv=[sys.executable, "-c", code, "demo", "--no-bot", "--port", "{port}"],
        env={
            "TRADEWIND_DATA_DIR": str(data),
            "TRADEWIND_HOST": "127.0.0.1",
            # measures throughput, not the rate limiter (docs/security.md)
            "TRADEWIND_RATE_LIMITS": "off",
        },
        unset_env=("TRADEWIND_DATABASE_URL", "TRADEWIND_CONFIG", "TRADEWIND_PORT"),
        ready_path="/readyz",
        root=root,
    )


def anchor_server(root: Path) -> ServerProcess:
    return ServerProcess(
        name="anchor",
        argv=[
            str(ANCHOR_PYTHON),
            "-m",
            "matching_engine",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
        ],
        env={
            "ME_DATA_DIR": str(root / "anchor-data"),
            # the same tick (0.01) and lot (0.0001) as Tradewind's demo BTC-USDT
            "ME_MARKETS": f"{SYMBOL}:0.01:0.0001",
            "ME_FSYNC": "1",
        },
        ready_path="/healthz",
        root=root,
    )


PG_URL = os.environ.get(
    "TRADEWIND_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TRADEWIND_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TRADEWIND_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
SERVICE_TIMEOUT_S = 3.0


async def services_problem(pg_url: str, redis_url: str, amqp_url: str) -> str | None:
    """Why distributed mode cannot run here (a service that does not answer), or None."""
    import aio_pika
    import asyncpg  # type: ignore[import-untyped]
    from redis.asyncio import Redis

    async def pg() -> None:
        conn = await asyncpg.connect(pg_url, timeout=SERVICE_TIMEOUT_S)
        await conn.close()

    async def redis() -> None:
        r = Redis.from_url(redis_url, socket_connect_timeout=SERVICE_TIMEOUT_S)
        try:
            await r.ping()
        finally:
            await r.aclose()

    async def amqp() -> None:
        conn = await aio_pika.connect(amqp_url, timeout=SERVICE_TIMEOUT_S)
        await conn.close()

    for name, url, check in (
        ("PostgreSQL", pg_url, pg),
        ("Redis", redis_url, redis),
        ("RabbitMQ", amqp_url, amqp),
    ):
        try:
            await asyncio.wait_for(check(), SERVICE_TIMEOUT_S + 1)
        except Exception as exc:
            where = urlsplit(url)
            return f"{name} not reachable at {where.hostname}:{where.port}: {exc!r}"
    return None


class Deployment:
    """Distributed mode as real processes (as tests/e2e/test_distributed.py runs it):
    ``tradewind projector``, ``tradewind core`` and ``replicas`` x ``tradewind api`` on a
    fresh PostgreSQL database, a fresh Redis key prefix and a fresh AMQP name prefix; all
    of it removed on exit."""

    def __init__(
        self, root: Path, pg_url: str, redis_url: str, amqp_url: str, replicas: int
    ) -> None:
        token = secrets.token_hex(4)
        self.root = root
        self.prefix = f"twbench{token}"
        self.database = f"tradewind_bench_{token}"
        self.pg_url = pg_url
        self.redis_url = redis_url
        self.amqp_url = amqp_url
        db_url = urlsplit(pg_url)._replace(scheme="postgresql+asyncpg", path=f"/{self.database}")
        settings = {
            "database_url": db_url.geturl(),
            "redis_url": redis_url,
            "redis_prefix": self.prefix,
            "amqp_url": amqp_url,
            "amqp_prefix": self.prefix,
            "secret_key": base64.urlsafe_b64encode(os.urandom(32)).decode(),
            "demo": "1",
            "demo_bot": "0",
            # measures throughput, not the rate limiter (docs/security.md)
            "rate_limits": "off",
            "host": "127.0.0.1",
        }
        env = {f"TRADEWIND_{k.upper()}": v for k, v in settings.items()}
        unset = tuple(k for k in os.environ if k.startswith("TRADEWIND_"))
        code = "from tradewind.runtime.cli import main; main()"

        def process(name: str, *command: str) -> ServerProcess:
            return ServerProcess(
                name=name,
                argv=[sys.executable, "-c", code, *command],
                env={**env, "TRADEWIND_DATA_DIR": str(root / name)},
                unset_env=unset,
                ready_path="/readyz",
                root=root,
            )

        self.projector = process("projector", "projector")
        self.core = process("core", "core")
        self.apis = [process(f"api{i}", "api", "--port", "{port}") for i in range(replicas)]

    @property
    def processes(self) -> list[ServerProcess]:
        return [self.core, self.projector, *self.apis]

    @property
    def urls(self) -> list[str]:
        return [a.url for a in self.apis]

    async def _pg(self, sql: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.pg_url, timeout=SERVICE_TIMEOUT_S)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    @staticmethod
    def _core_up(api: ServerProcess) -> bool:
        status, body = api.get("/metrics")
        match = re.search(rb"^tradewind_core_up ([0-9.]+)$", body, re.M)
        return status == 200 and match is not None and float(match.group(1)) == 1.0

    async def __aenter__(self) -> Deployment:
        self.root.mkdir(parents=True, exist_ok=True)
        await self._pg(f'CREATE DATABASE "{self.database}"')
        try:
            # as the e2e test: the core and the projector start at once, the APIs (which
            # read the schema the projector migrates) after both are running
            self.projector.spawn()
            self.core.spawn()
            self.projector.wait(lambda: self.projector.printed("Tradewind projector running"))
            self.core.wait(lambda: self.core.printed("Tradewind core running"))
            for api in self.apis:
                api.spawn()
            for api in self.apis:
                api.wait(lambda api=api: api.answers_ready() and self._core_up(api))  # type: ignore[misc]
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is not None:
            for p in self.processes:
                log(f"{p.name} log tail:\n{p.log_tail()}")
        self.stop()
        await self.cleanup()

    def stop(self) -> None:
        """SIGTERM to every process at once, then wait for each (SIGKILL after 20 s)."""
        running = [p for p in self.processes if p.proc is not None and p.proc.poll() is None]
        for p in running:
            assert p.proc is not None
            p.proc.terminate()
        deadline = time.monotonic() + 20
        for p in running:
            assert p.proc is not None
            try:
                p.proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.proc.kill()
                p.proc.wait()
        for p in self.processes:
            p.proc = None

    async def cleanup(self) -> None:
        """Delete the Redis keys and AMQP queues and exchanges under the prefix (as
        tests/support/cleanup.py does), and drop the database."""
        import aio_pika
        from redis.asyncio import Redis

        p = self.prefix
        try:
            redis = Redis.from_url(self.redis_url)
            try:
                keys = [k async for k in redis.scan_iter(match=f"{p}:*", count=1000)]
                if keys:
                    await redis.delete(*keys)
            finally:
                await redis.aclose()
        except Exception as exc:
            log(f"cleanup: Redis keys {p}:* not deleted: {exc!r}")
        try:
            connection = await aio_pika.connect(self.amqp_url)
            try:
                for queue in (f"{p}.commands", f"{p}.replay", f"{p}.projector"):
                    with contextlib.suppress(Exception):
                        channel = await connection.channel()
                        await channel.queue_delete(queue)
                for exchange in (f"{p}.events", f"{p}.status"):
                    with contextlib.suppress(Exception):
                        channel = await connection.channel()
                        await channel.exchange_delete(exchange)
            finally:
                await connection.close()
        except Exception as exc:
            log(f"cleanup: AMQP names {p}.* not deleted: {exc!r}")
        await self._pg(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')


def anchor_problem() -> str | None:
    """Why the anchor cannot run here, or None."""
    if not ANCHOR_PYTHON.exists():
        return (
            "bench/.anchor-venv missing: python3.12 -m venv bench/.anchor-venv && "
            "bench/.anchor-venv/bin/pip install 'matching-engine[gateway]'"
        )
    probe = subprocess.run(
        [str(ANCHOR_PYTHON), "-c", "import matching_engine.gateway, uvicorn, httptools"],
        capture_output=True,
        text=True,
        check=False,
    )
    if probe.returncode != 0:
        return (
            "the anchor's gateway extra is missing: "
            "bench/.anchor-venv/bin/pip install 'matching-engine[gateway]'"
        )
    return None


def anchor_versions() -> dict[str, str]:
    code = (
        "import json, importlib.metadata as m, platform\n"
        "v = {p: m.version(p) for p in ('matching-engine', 'fastapi', 'uvicorn', 'httptools',"
        " 'pydantic')}\n"
        "try:\n    v['uvloop'] = m.version('uvloop')\n"
        "except m.PackageNotFoundError:\n    v['uvloop'] = 'not installed (asyncio loop)'\n"
        "v['python'] = platform.python_version()\nprint(json.dumps(v))"
    )
    out = subprocess.run(
        [str(ANCHOR_PYTHON), "-c", code], capture_output=True, text=True, check=False
    )
    return json.loads(out.stdout) if out.returncode == 0 else {"error": out.stderr[-500:]}


def tradewind_versions() -> dict[str, str]:
    import importlib.metadata as m

    out = {}
    for p in ("fastapi", "starlette", "uvicorn", "httptools", "uvloop", "pydantic", "aiohttp"):
        try:
            out[p] = m.version(p)
        except m.PackageNotFoundError:
            out[p] = "not installed"
    return out


# ---------------------------------------------------------------- clients


@dataclass
class User:
    id: int
    key_id: str = ""
    secret: str = ""
    last_signed: tuple[int, bytes] = (0, b"")


class Driver(Protocol):
    name: str
    urls: list[str]
    """The server's base URLs; worker ``i``'s connection goes to ``urls[i % len(urls)]``
    (its requests use paths relative to its session's base URL)."""
    users: list[User]
    error_samples: dict[str, str]
    """The first answer of each refused kind of request (method and status)."""

    async def place(
        self, http: aiohttp.ClientSession, user: User, side: str, price: str, qty: str, ioc: bool
    ) -> tuple[int, int | None]:
        """Place an order: (HTTP status, the order's id if it still rests, else None)."""
        ...

    async def cancel(self, http: aiohttp.ClientSession, user: User, order_id: int) -> int:
        """Cancel an order: the HTTP status."""
        ...

    async def cleanup(self, http: aiohttp.ClientSession, user: User, open_ids: list[int]) -> None:
        """Cancel what the user still has open (untimed, between runs)."""
        ...


class TradewindDriver:
    """Signed requests (docs/api.md): HMAC-SHA256 of ts + METHOD + path + body."""

    name = "tradewind"

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.users: list[User] = []
        self.error_samples: dict[str, str] = {}

    async def _signed(
        self, http: aiohttp.ClientSession, user: User, method: str, target: str, body: bytes
    ) -> tuple[int, bytes]:
        ts = time.time_ns() // 1_000_000
        while (ts, method.encode() + target.encode() + body) == user.last_signed:
            # the very same request in the same ms would be a replayed signature
            await asyncio.sleep(0.0005)
            ts = time.time_ns() // 1_000_000
        user.last_signed = (ts, method.encode() + target.encode() + body)
        headers = {
            "TW-KEY": user.key_id,
            "TW-TIMESTAMP": str(ts),
            "TW-SIGNATURE": sign_request(user.secret, ts, method, target, body),
        }
        if body:
            headers["Content-Type"] = "application/json"
        async with http.request(method, target, data=body, headers=headers) as r:
            data = await r.read()
        if r.status >= 300:
            self.error_samples.setdefault(
                f"{method} {r.status}", data[:300].decode(errors="replace")
            )
        return r.status, data

    async def place(
        self, http: aiohttp.ClientSession, user: User, side: str, price: str, qty: str, ioc: bool
    ) -> tuple[int, int | None]:
        order = {"symbol": SYMBOL, "side": side, "type": "limit", "price": price, "quantity": qty}
        if ioc:
            order["time_in_force"] = "IOC"
        status, data = await self._signed(
            http, user, "POST", "/api/v1/orders", json.dumps(order).encode()
        )
        if status != 201:
            return status, None
        out = json.loads(data)
        return status, (out["id"] if out["status"] in TW_OPEN else None)

    async def cancel(self, http: aiohttp.ClientSession, user: User, order_id: int) -> int:
        status, _ = await self._signed(http, user, "DELETE", f"/api/v1/orders/{order_id}", b"")
        return status

    async def cleanup(self, http: aiohttp.ClientSession, user: User, open_ids: list[int]) -> None:
        await self._signed(http, user, "DELETE", f"/api/v1/orders?symbol={SYMBOL}", b"")

    async def onboard(self, n: int) -> None:
        """Register ``n`` users, each with an API key and funds from the faucet; user
        ``i`` through ``urls[i % len(urls)]``, the replica its worker will use."""
        sessions = [aiohttp.ClientSession(url) for url in self.urls]
        try:

            async def one(i: int) -> User:
                http = sessions[i % len(sessions)]
                email = f"bench-{i}@example.com"
                creds = {"email": email, "password": PASSWORD}
                async with http.post("/api/v1/auth/register", json=creds) as r:
                    assert r.status == 201, await r.text()
                    user = User((await r.json())["user_id"])
                await verify_email(http, email)
                async with http.post("/api/v1/auth/login", json=creds) as r:
                    assert r.status == 200, await r.text()
                    bearer = {"Authorization": f"Bearer {(await r.json())['token']}"}
                key = {"label": "bench", "permissions": ["read", "trade"]}
                async with http.post("/api/v1/api-keys", json=key, headers=bearer) as r:
                    assert r.status == 201, await r.text()
                    out = await r.json()
                    user.key_id, user.secret = out["key_id"], out["secret"]
                for asset, units in FUNDING.items():
                    left = units
                    while left > 0:
                        chunk = min(left, 100_000)
                        left -= chunk
                        body = {"asset": asset, "amount": str(chunk)}
                        async with http.post("/api/v1/demo/faucet", json=body, headers=bearer) as r:
                            assert r.status == 200, await r.text()
                return user

            # a server refuses parallel password checks (busy): one at a time per server
            sems = [asyncio.Semaphore(1) for _ in sessions]

            async def limited(i: int) -> User:
                async with sems[i % len(sems)]:
                    return await one(i)

            self.users = list(await asyncio.gather(*(limited(i) for i in range(n))))
        finally:
            for http in sessions:
                await http.close()


class AnchorDriver:
    """The ``matching-engine`` gateway: no authentication, the account in the body."""

    name = "anchor"

    def __init__(self, url: str, n: int) -> None:
        self.urls = [url]
        self.users = [User(i + 1) for i in range(n)]
        self.error_samples: dict[str, str] = {}

    async def place(
        self, http: aiohttp.ClientSession, user: User, side: str, price: str, qty: str, ioc: bool
    ) -> tuple[int, int | None]:
        order = {
            "account": user.id,
            "side": side,
            "price": price,
            "quantity": qty,
            "time_in_force": "ioc" if ioc else "gtc",
        }
        body = json.dumps(order).encode()
        async with http.post(
            f"/markets/{SYMBOL}/orders",
            data=body,
            headers={"Content-Type": "application/json"},
        ) as r:
            data = await r.read()
            if r.status != 200:
                self.error_samples.setdefault(f"POST {r.status}", data[:300].decode())
                return r.status, None
        out = json.loads(data)
        return r.status, (out["order_id"] if out["status"] in ANCHOR_OPEN else None)

    async def cancel(self, http: aiohttp.ClientSession, user: User, order_id: int) -> int:
        async with http.delete(f"/markets/{SYMBOL}/orders/{order_id}?account={user.id}") as r:
            data = await r.read()
            if r.status != 200:
                self.error_samples.setdefault(f"DELETE {r.status}", data[:300].decode())
            return r.status

    async def cleanup(self, http: aiohttp.ClientSession, user: User, open_ids: list[int]) -> None:
        for order_id in open_ids:
            await self.cancel(http, user, order_id)


# ---------------------------------------------------------------- the load generator


@dataclass
class Window:
    """The counted part of a run, in perf_counter_ns."""

    start_ns: int
    end_ns: int


@dataclass
class WorkerStats:
    latencies: dict[str, list[int]] = field(
        default_factory=lambda: {"place_rest": [], "place_cross": [], "cancel": []}
    )
    statuses: collections.Counter[str] = field(default_factory=collections.Counter)


async def _worker(
    driver: Driver,
    http: aiohttp.ClientSession,
    user: User,
    taker: User,
    rng: random.Random,
    window: Window,
    stats: WorkerStats,
) -> list[int]:
    """Rests and cancels orders as ``user``, crosses as ``taker`` (another worker's
    user), so that crossing orders trade instead of meeting self-trade prevention."""
    open_ids: collections.deque[int] = collections.deque()
    clock = time.perf_counter_ns
    lat = stats.latencies
    statuses = stats.statuses
    while True:
        t0 = clock()
        if t0 >= window.end_ns:
            break
        if open_ids and (len(open_ids) >= MAX_OPEN or rng.random() < P_RANDOM_CANCEL):
            kind = "cancel"
            if len(open_ids) >= MAX_OPEN:
                order_id = open_ids.popleft()
            else:
                i = rng.randrange(len(open_ids))
                order_id = open_ids[i]
                del open_ids[i]
            status = await driver.cancel(http, user, order_id)
        else:
            side = "buy" if rng.random() < 0.5 else "sell"
            sign = 1 if side == "buy" else -1
            if rng.random() < P_CROSS:
                kind = "place_cross"
                price = MID_CENTS + sign * CROSS_CENTS
            else:
                kind = "place_rest"
                price = MID_CENTS - sign * REST_STEP_CENTS * rng.randint(1, REST_LEVELS)
            lots = rng.randint(10, 100)  # 0.0010 to 0.0100 BTC
            cross = kind == "place_cross"
            qty = f"{lots // 10_000}.{lots % 10_000:04d}"
            status, resting = await driver.place(
                http, taker if cross else user, side, _cents(price), qty, cross
            )
            if resting is not None and not cross:
                open_ids.append(resting)
        t1 = clock()
        if t0 >= window.start_ns and t1 <= window.end_ns:
            lat[kind].append(t1 - t0)
            statuses[f"{kind}:{status}"] += 1
    return list(open_ids)


async def run_load(
    driver: Driver,
    server_pids: dict[str, int],
    connections: int,
    warmup_s: float,
    duration_s: float,
    seed: int,
    on_window_start: Callable[[], Awaitable[None]] | None = None,
    services: bool = False,
) -> dict[str, Any]:
    """One closed-loop run: ``connections`` workers, each with one keep-alive connection
    (worker ``i`` to ``driver.urls[i % len(driver.urls)]``) and its own user; counts the
    requests started and answered within the window. The server's CPU is the sum over
    ``server_pids``; ``services``: the service daemons' CPU is measured too."""
    sessions = [
        aiohttp.ClientSession(
            driver.urls[i % len(driver.urls)],
            connector=aiohttp.TCPConnector(limit=1, force_close=False),
            timeout=aiohttp.ClientTimeout(total=30),
        )
        for i in range(connections)
    ]
    driver.error_samples.clear()
    now = time.perf_counter_ns()
    window = Window(now + int(warmup_s * 1e9), now + int((warmup_s + duration_s) * 1e9))
    stats = [WorkerStats() for _ in range(connections)]
    marks: dict[str, float] = {}
    svc: list[dict[str, float]] = []

    async def meter() -> None:
        await asyncio.sleep(max(0.0, (window.start_ns - time.perf_counter_ns()) / 1e9))
        for name, pid in server_pids.items():
            marks[f"cpu0:{name}"] = cpu_seconds(pid)
        if services:
            svc.append(services_cpu_seconds())
        marks["client_cpu0"] = time.process_time()
        if on_window_start is not None:
            await on_window_start()
        await asyncio.sleep(max(0.0, (window.end_ns - time.perf_counter_ns()) / 1e9))
        for name, pid in server_pids.items():
            marks[f"cpu1:{name}"] = cpu_seconds(pid)
        if services:
            svc.append(services_cpu_seconds())
        marks["client_cpu1"] = time.process_time()

    try:
        meter_task = asyncio.create_task(meter())
        left = await asyncio.gather(
            *(
                _worker(
                    driver,
                    sessions[i],
                    driver.users[i],
                    driver.users[(i + 1) % len(driver.users)],
                    random.Random(seed * 1000 + i),
                    window,
                    stats[i],
                )
                for i in range(connections)
            )
        )
        await meter_task
        await asyncio.gather(
            *(driver.cleanup(sessions[i], driver.users[i], left[i]) for i in range(connections))
        )
    finally:
        for s in sessions:
            await s.close()

    lat_all: list[int] = []
    by_kind: dict[str, list[int]] = {"place_rest": [], "place_cross": [], "cancel": []}
    statuses: collections.Counter[str] = collections.Counter()
    for st in stats:
        for kind, xs in st.latencies.items():
            by_kind[kind].extend(xs)
            lat_all.extend(xs)
        statuses.update(st.statuses)
    n = len(lat_all)
    placements = len(by_kind["place_rest"]) + len(by_kind["place_cross"])
    by_process = {
        name: round(marks[f"cpu1:{name}"] - marks[f"cpu0:{name}"], 3) for name in server_pids
    }
    server_cpu = sum(by_process.values())
    ok = sum(v for k, v in statuses.items() if k.rsplit(":", 1)[1] in ("200", "201"))
    out: dict[str, Any] = {
        "connections": connections,
        "duration_s": duration_s,
        "requests": n,
        "requests_per_sec": round(n / duration_s, 1),
        "placements_per_sec": round(placements / duration_s, 1),
        "ok_share": round(ok / n, 4) if n else 0.0,
        "mix": {k: round(len(v) / n, 3) if n else 0.0 for k, v in by_kind.items()},
        "statuses": dict(sorted(statuses.items())),
        "error_samples": dict(driver.error_samples),
        "latency_ms": percentiles_ms(lat_all),
        "latency_ms_by_kind": {k: percentiles_ms(v) for k, v in by_kind.items() if v},
        "server_cpu_s": round(server_cpu, 3),
        "server_cpu_us_per_request": round(server_cpu * 1e6 / n, 1) if n else None,
        "loadgen_cpu_s": round(marks["client_cpu1"] - marks["client_cpu0"], 3),
    }
    if len(server_pids) > 1:
        out["server_cpu_s_by_process"] = by_process
    if services:
        by_service = {k: round(svc[1][k] - svc[0][k], 3) for k in svc[0]}
        total = sum(by_service.values())
        out["services_cpu_s"] = round(total, 3)
        out["services_cpu_s_by_service"] = by_service
        out["services_cpu_us_per_request"] = round(total * 1e6 / n, 1) if n else None
    return out


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over runs of the figures that matter."""
    out = {
        "runs": len(runs),
        "requests_per_sec": _median([r["requests_per_sec"] for r in runs]),
        "placements_per_sec": _median([r["placements_per_sec"] for r in runs]),
        "p50_ms": _median([r["latency_ms"]["p50"] for r in runs]),
        "p99_ms": _median([r["latency_ms"]["p99"] for r in runs]),
        "server_cpu_us_per_request": _median([r["server_cpu_us_per_request"] or 0.0 for r in runs]),
        "requests_per_sec_runs": [r["requests_per_sec"] for r in runs],
    }
    if runs and "services_cpu_us_per_request" in runs[0]:
        out["services_cpu_us_per_request"] = _median(
            [r["services_cpu_us_per_request"] or 0.0 for r in runs]
        )
    return out


# ---------------------------------------------------------------- WebSocket subscribers


class _TwTrade(msgspec.Struct):
    ts: int


class _TwMessage(msgspec.Struct):
    channel: str | None = None
    op: str | None = None
    type: str | None = None
    ts: int | None = None
    U: int | None = None
    u: int | None = None
    data: list[_TwTrade] | None = None


class _AnchorMessage(msgspec.Struct):
    type: str | None = None
    ts: int | None = None


async def ws_child(urls: str, kind: str, n: int) -> dict[str, Any]:
    """``n`` subscribers to trades + book of SYMBOL, subscriber ``i`` on the ``i % N``-th
    of the N comma-separated ``urls``; says ``ready`` on stdout, measures for the duration
    the parent sends (``go <seconds>``), then returns the counts."""
    servers = urls.split(",")
    decode_tw = msgspec.json.Decoder(_TwMessage).decode
    decode_anchor = msgspec.json.Decoder(_AnchorMessage).decode
    state = {"measuring": False}
    counts = {
        "messages": 0,
        "trades": 0,
        "book": 0,
        "updates": 0,
        "book_updates": 0,
        "trade_updates": 0,
        "gaps": 0,
        "closed": 0,
    }
    close_codes: collections.Counter[str] = collections.Counter()
    lags: list[float] = []
    ready = 0
    all_ready = asyncio.Event()
    http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def subscriber(i: int) -> None:
        nonlocal ready
        path = "/ws" if kind == "tradewind" else f"/markets/{SYMBOL}/ws"
        url = servers[i % len(servers)]
        async with http.ws_connect(url + path, max_msg_size=0, autoping=True) as ws:
            if kind == "tradewind":
                for cid, channel in enumerate(("trades", "book")):
                    await ws.send_str(
                        json.dumps(
                            {"op": "subscribe", "channel": channel, "symbol": SYMBOL, "id": cid}
                        )
                    )
            acks = 0
            last_u: int | None = None
            async for msg in ws:
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                now_ms = time.time_ns() / 1e6
                if kind == "tradewind":
                    m = decode_tw(msg.data)
                    if m.op is not None:
                        if m.op == "subscribed":
                            acks += 1
                        elif m.op == "ping":
                            await ws.send_str('{"op":"pong"}')
                    elif m.channel == "book":
                        if m.type == "snapshot":
                            last_u = m.u
                        else:
                            if last_u is not None and last_u + 1 != m.U:
                                counts["gaps"] += 1
                            last_u = m.u
                            if state["measuring"]:
                                counts["messages"] += 1
                                counts["book"] += 1
                                assert m.ts is not None and m.U is not None and m.u is not None
                                # a diff may cover several updates (one per group commit)
                                counts["updates"] += m.u - m.U + 1
                                counts["book_updates"] += m.u - m.U + 1
                                lags.append(now_ms - m.ts)
                    elif m.channel == "trades" and state["measuring"]:
                        counts["messages"] += 1
                        counts["trades"] += 1
                        if m.data:
                            counts["updates"] += len(m.data)
                            counts["trade_updates"] += len(m.data)
                            # the oldest trade of the message: the longest wait in it
                            lags.append(now_ms - m.data[0].ts)
                    if acks == 2:
                        acks = 3
                        ready += 1
                        if ready == n:
                            all_ready.set()
                else:
                    a = decode_anchor(msg.data)
                    if acks == 0:  # the depth snapshot comes first
                        acks = 1
                        ready += 1
                        if ready == n:
                            all_ready.set()
                    elif state["measuring"]:
                        counts["messages"] += 1
                        if a.type == "trade":
                            counts["trades"] += 1
                            if a.ts is not None:
                                lags.append(now_ms - a.ts / 1e6)
                        else:
                            counts["book"] += 1
            counts["closed"] += 1
            close_codes[str(ws.close_code)] += 1

    tasks = [asyncio.create_task(subscriber(i)) for i in range(n)]
    try:
        await asyncio.wait_for(all_ready.wait(), 60)
        print("ready", flush=True)
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        duration = float(line.split()[1])
        cpu0 = time.process_time()
        state["measuring"] = True
        await asyncio.sleep(duration)
        state["measuring"] = False
        cpu = time.process_time() - cpu0
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await http.close()
    lags.sort()
    m = len(lags)

    def pct(q: float) -> float | None:
        return round(lags[min(m - 1, int(m * q / 100))], 2) if m else None

    return {
        "subscribers": n,
        "duration_s": duration,
        "messages": counts["messages"],
        "messages_per_sec": round(counts["messages"] / duration, 1),
        "trades_messages": counts["trades"],
        "book_messages": counts["book"],
        "updates_per_sec": round(counts["updates"] / duration, 1),
        "book_updates": counts["book_updates"],
        "trade_updates": counts["trade_updates"],
        "lag_samples": m,
        "lag_ms": {"p50": pct(50), "p99": pct(99), "max": round(lags[-1], 2) if m else None},
        "book_gaps": counts["gaps"],
        "closed_during_run": counts["closed"],
        "close_codes": dict(close_codes),
        "client_cpu_s": round(cpu, 3),
    }


async def run_fanout(
    driver: Driver,
    server_pids: dict[str, int],
    connections: int,
    warmup_s: float,
    duration_s: float,
    seed: int,
    subscribers: int,
    on_window_start: Callable[[], Awaitable[None]] | None = None,
    services: bool = False,
) -> dict[str, Any]:
    """``subscribers`` WebSocket clients in a child process during a load run, spread
    over the driver's servers like the load's workers."""
    ws_urls = ",".join(u.replace("http://", "ws://") for u in driver.urls)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        __file__,
        "--ws-child",
        ws_urls,
        driver.name,
        str(subscribers),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        line = await asyncio.wait_for(child.stdout.readline(), 90)
        if line.strip() != b"ready":
            raise RuntimeError(f"WebSocket child failed: {line!r}")

        async def go() -> None:
            assert child.stdin is not None
            child.stdin.write(f"go {duration_s}\n".encode())
            await child.stdin.drain()
            if on_window_start is not None:
                await on_window_start()

        load = await run_load(
            driver,
            server_pids,
            connections,
            warmup_s,
            duration_s,
            seed,
            on_window_start=go,
            services=services,
        )
        out, _ = await asyncio.wait_for(child.communicate(), 60)
        if child.returncode != 0:
            raise RuntimeError(f"WebSocket child exited with {child.returncode}")
        ws = json.loads(out.decode().strip().splitlines()[-1])
    finally:
        if child.returncode is None:
            child.kill()
            await child.wait()
    return {"ws": ws, "load": load}


# ---------------------------------------------------------------- profile


IDLE_LEAF = re.compile(
    r"^(EpollSelector\.select|_connection_worker_thread \(aiosqlite/core\.py:59\)"
    r"|_worker \(concurrent/futures/thread\.py:8[01]\)|Condition\.wait|Semaphore\.acquire"
    r"|Event\.wait|thread \(|process \()"
)
"""Leaf frames of a thread that waits (py-spy's own idle detection does not work in
every VM, so samples ending in these are dropped as idle)."""
UVLOOP_LEAF = re.compile(r"^Runner\.run \(asyncio/runners\.py")
"""Under uvloop the loop itself is C: a main-thread sample ending in the Python frame
that entered it is either idle or the loop's own work (I/O, callbacks' C parts)."""
MAIN_STACK = "tradewind/runtime/cli.py"
"""Every main-thread stack of the server runs under the command line's frames, except
those of greenlets (SQLAlchemy's async bridge), whose frames py-spy sees alone."""

MAIN_GROUPS: list[tuple[str, str]] = [
    # (group, regex over a main-thread stack); the first that matches counts the sample.
    ("argon2 (password hashing)", r"argon2"),
    ("projectors (ledger, orders, fills, trades: SQL writes)", r"tradewind/services/projectors/"),
    ("publish: market data (books, candles, tickers)", r"publish .*tradewind/services/marketdata/"),
    ("publish: WebSocket hub (fan-out, messages)", r"publish .*tradewind/gateways/ws/"),
    ("publish: other", r"EventFanout\.publish"),
    ("core runner: core apply + journal append", r"CoreRunner\._run .*tradewind/(journal|core)/"),
    ("core runner: batching, stamping, answering", r"CoreRunner\._run"),
    ("WebSocket writers (frames to subscribers)", r"tradewind/gateways/rest/ws\.py|websockets/"),
    ("request: API-key check (SQL lookup, HMAC, secret box)", r"verify_signature"),
    ("request: history reads (cancel)", r"tradewind/services/history|get_order"),
    ("request: other SQL", r"run_asgi .*(sqlalchemy|aiosqlite)"),
    ("request: metrics", r"run_asgi .*prometheus_client"),
    ("request: REST handler (decimals, order view, JSON)", r"run_asgi .*gateways/rest/app\.py"),
    ("request: FastAPI/Starlette/pydantic (routing, dependencies, validation)", r"run_asgi"),
    ("HTTP server: uvicorn + httptools (parsing, transport)", r"uvicorn/|httptools"),
    ("logging", r"structlog|logging/"),
]
GREENLET_GROUP = "SQLAlchemy ORM in greenlets (caller not visible: projectors and request reads)"
UVLOOP_GROUP = "uvloop's own C code (socket I/O, callbacks), or idle"
THREAD_GROUPS: list[tuple[str, str]] = [
    ("journal commits in worker threads (snapshots; waiting on the disk)", r"tradewind/journal/"),
    ("SQLite statements and commits (aiosqlite threads)", r"aiosqlite|sqlite3"),
]


def classify_profile(raw: str, seconds: float) -> dict[str, Any]:
    """py-spy's collapsed stacks (``--threads --format raw``, blocking mode: consistent
    stacks) per group.

    The event loop's thread does nearly all of the server's CPU work; its busy samples are
    shared out in ``main_thread_share_percent``. The worker threads (journal flushes,
    aiosqlite's connections) mostly wait in fsync, which py-spy cannot tell from work, so
    they are given as wall-time occupancy (100 = one thread always in that code).
    Blocking mode slows the server down: use the shares, scaled by an unprofiled run's
    CPU per request (:func:`estimate_us`), not the profiled run's own rate."""
    main_groups = [(g, re.compile(p)) for g, p in MAIN_GROUPS]
    thread_groups = [(g, re.compile(p)) for g, p in THREAD_GROUPS]
    main: collections.Counter[str] = collections.Counter()
    workers: collections.Counter[str] = collections.Counter()
    leaves: collections.Counter[str] = collections.Counter()
    main_total = main_idle = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        is_main = "MainThread" in frames[0]
        main_total += count if is_main else 0
        if IDLE_LEAF.match(frames[-1]):
            main_idle += count if is_main else 0
            continue
        if not is_main:
            group = next((g for g, rx in thread_groups if rx.search(stack)), "other threads")
            workers[group] += count
        elif UVLOOP_LEAF.match(frames[-1]):
            main[UVLOOP_GROUP] += count
        else:
            leaves[frames[-1]] += count
            if MAIN_STACK not in stack:
                main[GREENLET_GROUP] += count
            else:
                main[
                    next((g for g, rx in main_groups if rx.search(stack)), "event loop, other")
                ] += count
    main_busy = sum(main.values())
    per_thread = PROFILE_RATE_HZ * seconds
    return {
        "main_thread_busy_percent": round(100 * main_busy / main_total, 1) if main_total else 0,
        "main_thread_share_percent": {
            g: round(100 * c / main_busy, 1) for g, c in main.most_common()
        },
        "worker_threads_occupancy_percent": {
            g: round(100 * c / per_thread, 1) for g, c in workers.most_common()
        },
        "main_thread_top_self_percent": {
            f: round(100 * c / main_busy, 1) for f, c in leaves.most_common(20)
        },
    }


def estimate_us(profile: dict[str, Any], cpu_us_per_request: float) -> None:
    """Adds ``us_per_request_est``: each main-thread group's share of
    ``cpu_us_per_request`` (the server's CPU per request in unprofiled runs of the same
    load; the event loop's thread does nearly all of it)."""
    if "main_thread_share_percent" not in profile:
        return
    profile["reference_server_cpu_us_per_request"] = cpu_us_per_request
    profile["us_per_request_est"] = {
        g: round(share * cpu_us_per_request / 100, 1)
        for g, share in profile["main_thread_share_percent"].items()
    }


async def run_profile(
    driver: Driver,
    server: ServerProcess,
    warmup_s: float,
    duration_s: float,
    seed: int,
    out_path: Path,
    subscribers: int = 0,
) -> dict[str, Any]:
    """A 32-connection run (with ``subscribers`` WebSocket clients if not 0) under
    ``py-spy record``, classified by :func:`classify_profile`."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        return {"skipped": "py-spy not installed (pip install py-spy)"}
    proc: asyncio.subprocess.Process | None = None

    async def start_spy() -> None:
        nonlocal proc
        proc = await asyncio.create_subprocess_exec(
            spy,
            "record",
            "--pid",
            str(server.pid),
            "--duration",
            str(int(duration_s)),
            "--rate",
            str(PROFILE_RATE_HZ),
            "--threads",
            "--format",
            "raw",
            "--output",
            str(out_path),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )

    ws: dict[str, Any] | None = None
    if subscribers:
        fan = await run_fanout(
            driver,
            {server.name: server.pid},
            MAX_CONNECTIONS,
            warmup_s,
            duration_s,
            seed,
            subscribers,
            on_window_start=start_spy,
        )
        load, ws = fan["load"], fan["ws"]
    else:
        load = await run_load(
            driver,
            {server.name: server.pid},
            MAX_CONNECTIONS,
            warmup_s,
            duration_s,
            seed,
            on_window_start=start_spy,
        )
    assert proc is not None
    _, err = await proc.communicate()
    if proc.returncode != 0 or not out_path.exists():
        return {"error": err.decode(errors="replace")[-1000:], "load": load}
    res = classify_profile(out_path.read_text(encoding="utf-8", errors="replace"), duration_s)
    out = {"raw_stacks": str(out_path), "rate_hz": PROFILE_RATE_HZ, "load": load}
    return out | ({"ws": ws} if ws is not None else {}) | res


# ---------------------------------------------------------------- main


@contextlib.contextmanager
def servers(root: Path, with_anchor: bool) -> Iterator[dict[str, ServerProcess]]:
    started: dict[str, ServerProcess] = {}
    try:
        tw = tradewind_server(root)
        tw.start()
        started["tradewind"] = tw
        if with_anchor:
            an = anchor_server(root)
            an.start()
            started["anchor"] = an
        yield started
    except BaseException:
        for s in started.values():
            log(f"{s.name} log tail:\n{s.log_tail()}")
        raise
    finally:
        for s in started.values():
            s.stop()


@dataclass
class Target:
    """One exchange under test: how to drive it and which processes are its server."""

    driver: Driver
    pids: dict[str, int]
    services: bool = False
    """Also meter the service daemons (PostgreSQL, Redis, RabbitMQ) during its runs."""


async def measure(
    args: argparse.Namespace, targets: dict[str, Target], report: dict[str, Any]
) -> None:
    """The 1- and 32-connection runs (targets in turn, ``--runs`` times) and the WebSocket
    fan-out; each target's results into ``report[name]``."""
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {"1": [], str(MAX_CONNECTIONS): []} for name in targets
    }
    for rep in range(args.runs):
        for conns in (1, MAX_CONNECTIONS):
            for name, t in targets.items():
                r = await run_load(
                    t.driver,
                    t.pids,
                    conns,
                    args.warmup,
                    args.duration,
                    seed=rep + 1,
                    services=t.services,
                )
                runs[name][str(conns)].append(r)
                lat = r["latency_ms"]
                svc = (
                    f"  services {r['services_cpu_us_per_request']} CPU µs/req"
                    if t.services
                    else ""
                )
                log(
                    f"  run {rep + 1}/{args.runs} {name:<9} {conns:>2} conn: "
                    f"{r['requests_per_sec']:>7,.0f} req/s  p50 {lat['p50']:.2f} ms  "
                    f"p99 {lat['p99']:.2f} ms  server {r['server_cpu_us_per_request']} "
                    f"CPU µs/req{svc}  ok {r['ok_share']:.1%}"
                )
    for name in targets:
        report.setdefault(name, {}).update(
            {
                f"connections_{c}": {"summary": summarize(rs), "runs": rs}
                for c, rs in runs[name].items()
            }
        )

    if args.no_ws:
        return
    for name, t in targets.items():
        fan: list[dict[str, Any]] = []
        for rep in range(args.runs):
            r = await run_fanout(
                t.driver,
                t.pids,
                MAX_CONNECTIONS,
                args.warmup,
                args.duration,
                seed=100 + rep,
                subscribers=WS_SUBSCRIBERS,
                services=t.services,
            )
            fan.append(r)
            ws, load = r["ws"], r["load"]
            log(
                f"  ws run {rep + 1}/{args.runs} {name:<9}: "
                f"{ws['messages_per_sec']:>9,.0f} msg/s ({ws['updates_per_sec']:,.0f} "
                f"updates/s) to {ws['subscribers']} subscribers, "
                f"lag p50 {ws['lag_ms']['p50']} p99 {ws['lag_ms']['p99']} "
                f"ms, closed {ws['closed_during_run']}, gaps {ws['book_gaps']}; "
                f"orders {load['requests_per_sec']:,.0f}/s"
            )
        summary = {
            "subscribers": WS_SUBSCRIBERS,
            "connections": MAX_CONNECTIONS,
            "messages_per_sec": _median([f["ws"]["messages_per_sec"] for f in fan]),
            "updates_per_sec": _median([f["ws"].get("updates_per_sec", 0.0) for f in fan]),
            "lag_p50_ms": _median([f["ws"]["lag_ms"]["p50"] or 0.0 for f in fan]),
            "lag_p99_ms": _median([f["ws"]["lag_ms"]["p99"] or 0.0 for f in fan]),
            "orders_per_sec_during": _median([f["load"]["requests_per_sec"] for f in fan]),
            "closed_during_run": sum(f["ws"]["closed_during_run"] for f in fan),
            "book_gaps": sum(f["ws"]["book_gaps"] for f in fan),
        }
        if t.services:
            summary["server_cpu_us_per_request"] = _median(
                [f["load"]["server_cpu_us_per_request"] or 0.0 for f in fan]
            )
            summary["services_cpu_us_per_request"] = _median(
                [f["load"]["services_cpu_us_per_request"] or 0.0 for f in fan]
            )
        report.setdefault(name, {})["ws_fanout"] = {"summary": summary, "runs": fan}


async def bench_embedded(args: argparse.Namespace, root: Path, report: dict[str, Any]) -> None:
    problem = None if args.no_anchor else anchor_problem()
    if problem:
        log(f"anchor skipped: {problem}")
        report["anchor_skipped"] = problem
    with servers(root, with_anchor=problem is None and not args.no_anchor) as srv:
        tw = srv["tradewind"]
        log(f"tradewind up at {tw.url} (pid {tw.pid}); onboarding {MAX_CONNECTIONS} users")
        t = time.perf_counter()
        twd = TradewindDriver([tw.url])
        await twd.onboard(MAX_CONNECTIONS)
        log(f"  users registered, keyed and funded in {time.perf_counter() - t:.1f} s")
        targets = {"tradewind": Target(twd, {"tradewind": tw.pid})}
        if "anchor" in srv:
            an = srv["anchor"]
            log(f"anchor up at {an.url} (pid {an.pid})")
            targets["anchor"] = Target(AnchorDriver(an.url, MAX_CONNECTIONS), {"anchor": an.pid})
        await measure(args, targets, report)

        if args.profile:
            log("profiling tradewind under 32-connection load (py-spy)")
            report["profile"] = await run_profile(
                twd, tw, args.warmup, args.duration, seed=999, out_path=args.profile_out
            )
            summary = report["tradewind"][f"connections_{MAX_CONNECTIONS}"]["summary"]
            estimate_us(report["profile"], summary["server_cpu_us_per_request"])
            _log_profile(report["profile"])
            if not args.no_ws:
                log(f"profiling tradewind under the same load with {WS_SUBSCRIBERS} subscribers")
                ws_out = args.profile_out.with_name(args.profile_out.stem + "-ws.raw")
                report["profile_ws"] = await run_profile(
                    twd,
                    tw,
                    args.warmup,
                    args.duration,
                    seed=998,
                    out_path=ws_out,
                    subscribers=WS_SUBSCRIBERS,
                )
                ws_runs = report["tradewind"]["ws_fanout"]["runs"]
                estimate_us(
                    report["profile_ws"],
                    _median([r["load"]["server_cpu_us_per_request"] or 0.0 for r in ws_runs]),
                )
                _log_profile(report["profile_ws"])


async def bench_distributed(args: argparse.Namespace, root: Path, report: dict[str, Any]) -> None:
    dep = Deployment(
        root / "distributed", args.pg_url, args.redis_url, args.amqp_url, args.replicas
    )
    async with dep:
        pids = {p.name: p.pid for p in dep.processes}
        log(
            f"tradewind distributed up: {', '.join(f'{n} pid {p}' for n, p in pids.items())}; "
            f"replicas at {', '.join(dep.urls)}; onboarding {MAX_CONNECTIONS} users"
        )
        t = time.perf_counter()
        twd = TradewindDriver(dep.urls)
        await twd.onboard(MAX_CONNECTIONS)
        log(f"  users registered, keyed and funded in {time.perf_counter() - t:.1f} s")
        report["tradewind_distributed"] = {"replicas": args.replicas}
        await measure(args, {"tradewind_distributed": Target(twd, pids, services=True)}, report)
    if args.profile:
        report["tradewind_distributed"]["profile_skipped"] = "--profile profiles embedded only"


async def bench(args: argparse.Namespace, root: Path, report: dict[str, Any]) -> None:
    mode = args.mode
    if mode in (None, "distributed", "both"):
        problem = await services_problem(args.pg_url, args.redis_url, args.amqp_url)
        if problem is not None:
            if mode is not None:
                raise SystemExit(f"--mode {mode}: distributed mode needs the services: {problem}")
            log(f"distributed mode skipped: {problem}")
            report["distributed_skipped"] = problem
            mode = "embedded"
        mode = mode or "both"
    report["settings"]["mode"] = mode
    if mode in ("embedded", "both"):
        await bench_embedded(args, root, report)
    if mode in ("distributed", "both"):
        await bench_distributed(args, root, report)


def _log_profile(prof: dict[str, Any]) -> None:
    if "main_thread_share_percent" not in prof:
        log(f"  profile failed: {prof.get('error') or prof.get('skipped')}")
        return
    log(
        f"  {prof['load']['requests_per_sec']:,.0f} req/s while profiled (py-spy slows it); "
        f"main thread busy in {prof['main_thread_busy_percent']}% of its samples:"
    )
    est = prof.get("us_per_request_est", {})
    for g, share in prof["main_thread_share_percent"].items():
        log(f"  {share:5.1f}% {est.get(g, 0.0):8.1f} µs/req  {g}")
    for g, occupancy in prof["worker_threads_occupancy_percent"].items():
        log(f"  worker threads: {occupancy:5.1f}% of a thread's time  {g}")


def _dirty_files() -> list[str] | None:
    """Files under src/ that differ from the commit (the figures measure the tree)."""
    try:
        out = subprocess.run(
            ["git", "status", "--porcelain", "--", "src"],
            cwd=BENCH_DIR.parent,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return [line[3:] for line in out.stdout.splitlines()] if out.returncode == 0 else None


def _summary(report: dict[str, Any]) -> list[str]:
    rows = []
    for name in ("tradewind", "tradewind_distributed", "anchor"):
        for c in ("1", str(MAX_CONNECTIONS)):
            s = report.get(name, {}).get(f"connections_{c}", {}).get("summary")
            if s:
                svc = s.get("services_cpu_us_per_request")
                rows.append(
                    f"{name:<9} {c:>2} conn  {s['requests_per_sec']:>8,.0f} req/s  "
                    f"p50 {s['p50_ms']:.2f} ms  p99 {s['p99_ms']:.2f} ms  "
                    f"server {s['server_cpu_us_per_request']:.0f} CPU µs/req"
                    + (f"  services {svc:.0f} CPU µs/req" if svc is not None else "")
                )
        ws = report.get(name, {}).get("ws_fanout", {}).get("summary")
        if ws:
            rows.append(
                f"{name:<9} ws     {ws['messages_per_sec']:>8,.0f} msg/s "
                f"({ws.get('updates_per_sec', 0.0):,.0f} updates/s) to {ws['subscribers']} "
                f"subscribers, lag p99 {ws['lag_p99_ms']} ms, during "
                f"{ws['orders_per_sec_during']:,.0f} orders/s"
            )
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="1 run of 3 s each")
    ap.add_argument("--runs", type=int, help="runs per configuration (default 3)")
    ap.add_argument("--duration", type=float, help="counted seconds per run (default 10)")
    ap.add_argument("--warmup", type=float, default=2.0, help="uncounted seconds first")
    ap.add_argument(
        "--mode",
        choices=("embedded", "distributed", "both"),
        help="which Tradewind to measure (default: both if PostgreSQL, Redis and RabbitMQ "
        "answer, else embedded)",
    )
    ap.add_argument("--replicas", type=int, default=2, help="API replicas in distributed mode")
    ap.add_argument("--pg-url", default=PG_URL, help="PostgreSQL admin URL (distributed)")
    ap.add_argument("--redis-url", default=REDIS_URL, help="Redis URL (distributed)")
    ap.add_argument("--amqp-url", default=AMQP_URL, help="RabbitMQ URL (distributed)")
    ap.add_argument("--no-anchor", action="store_true")
    ap.add_argument("--no-ws", action="store_true")
    ap.add_argument("--profile", action="store_true", help="py-spy the 32-connection load")
    ap.add_argument("--profile-out", type=Path, default=Path(tempfile.gettempdir()) / "tw-api.raw")
    ap.add_argument("--out", type=Path, default=RESULTS / "api.json")
    ap.add_argument("--ws-child", nargs=3, help=argparse.SUPPRESS)
    ap.add_argument(
        "--classify",
        nargs=3,
        metavar=("RAW", "SECONDS", "CPU_US_PER_REQUEST"),
        help="classify a py-spy raw profile (--threads --format raw) and exit",
    )
    args = ap.parse_args(argv)

    loop_factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        loop_factory = uvloop.new_event_loop

    if args.classify:
        path, seconds, cpu_us = args.classify
        res = classify_profile(
            Path(path).read_text(encoding="utf-8", errors="replace"), float(seconds)
        )
        estimate_us(res, float(cpu_us))
        print(json.dumps(res, indent=2))
        return 0

    if args.ws_child:
        url, kind, n = args.ws_child
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            res = runner.run(ws_child(url, kind, int(n)))
        print(json.dumps(res), flush=True)
        return 0

    args.runs = args.runs or (1 if args.quick else 3)
    args.duration = args.duration or (3.0 if args.quick else 10.0)
    started = time.perf_counter()
    report: dict[str, Any] = {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info()
        | {"load_average_at_start": list(os.getloadavg()), "uncommitted": _dirty_files()},
        "quick": args.quick,
        "settings": {
            "runs": args.runs,
            "warmup_s": args.warmup,
            "duration_s": args.duration,
            "symbol": SYMBOL,
            "max_open_per_worker": MAX_OPEN,
            "p_cross": P_CROSS,
            "p_random_cancel": P_RANDOM_CANCEL,
            "ws_subscribers": WS_SUBSCRIBERS,
            "loadgen": "aiohttp "
            + aiohttp.__version__
            + (", uvloop" if loop_factory is not None else ", asyncio loop"),
        },
        "versions": {"tradewind_side": tradewind_versions()},
        "notes": [
            "Closed loop on loopback; the load generator, the WebSocket subscribers and the "
            "server share the machine's cores. Throughput counts every order request "
            "(placements and cancels) started and answered within the counted window; "
            "latency is the client's round trip. Figures in 'summary' are medians over runs.",
            "Tradewind: tradewind demo --no-bot (embedded: journal with group-commit fsync, "
            "SQLite projectors, in-memory market data), every request signed with an API key. "
            "Anchor: matching-engine's gateway as its 'gateway' extra installs it (fsync on, "
            "no authentication, balances or database).",
            "server_cpu_us_per_request: CPU time of the server process (all threads) over the "
            "window divided by the requests answered; other load on the machine does not "
            "stretch it the way it stretches wall-clock throughput.",
            "tradewind_distributed: tradewind projector, core and 'replicas' x tradewind api "
            "as processes on a fresh PostgreSQL database, Redis key prefix and AMQP prefix "
            "(demo, no bot, rate limits off); worker i and WebSocket subscriber i use replica "
            "i % replicas. server_cpu_us_per_request sums all tradewind processes "
            "(server_cpu_s_by_process per run); services_cpu_us_per_request is the CPU of "
            "the postgres, redis-server and beam.smp processes (with their reaped children) "
            "over the same window, which other clients of those shared daemons add to.",
            "WebSocket lag: receive wall time minus the event's ts (Tradewind: ms, stamped "
            "when the command is sequenced, before its fsync; anchor: trades only, ns).",
            "profile: py-spy in blocking mode (it slows the server; its own rate is not a "
            "result). main_thread_share_percent shares out the event loop thread's busy "
            "samples; us_per_request_est scales them by the unprofiled CPU per request; "
            "worker threads (journal, aiosqlite) mostly wait in fsync and are given as "
            "occupancy of a thread's time.",
        ],
    }
    if not args.no_anchor and anchor_problem() is None:
        report["versions"]["anchor_side"] = anchor_versions()
    with (
        tempfile.TemporaryDirectory(prefix="tw-bench-api-") as tmp,
        asyncio.Runner(loop_factory=loop_factory) as runner,
    ):
        runner.run(bench(args, Path(tmp), report))
    report["machine"]["load_average_at_end"] = list(os.getloadavg())
    report["wall_seconds"] = round(time.perf_counter() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log(f"wrote {args.out} ({report['wall_seconds']} s)")
    print("\n".join(_summary(report)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
