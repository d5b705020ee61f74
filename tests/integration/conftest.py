"""Fixtures for tests against the real services of this machine.

- ``pg_url``: a fresh, empty PostgreSQL database for one test (``postgresql+asyncpg://``),
  dropped afterwards (``WITH (FORCE)``, so leftover connections do not keep it alive);
  about a second per test, so prefer the next one unless the test needs an empty server;
- ``pg_migrated_url``: a database at the newest schema, shared by the tests of one
  session (one per xdist worker) and emptied before each test (ids are not reset);
- ``sqlite_url``: a fresh SQLite file in the test's tmp dir (``sqlite+aiosqlite://``);
- ``sqlite_migrated_url``: a SQLite file at the newest schema in the test's tmp dir, a
  copy of one migrated once per session (the SQLite side of ``database_url``);
- ``redis_url``, ``amqp_url``: a reachable Redis / RabbitMQ (shared: use unique key,
  queue and exchange names per test).

A service that is not reachable skips the test with the reason, or fails it when
``TRADEWIND_REQUIRE_SERVICES=1`` (as ``.ci/run`` sets). Where the services are:
``TRADEWIND_TEST_POSTGRES_URL`` (an admin connection; default
``postgresql://postgres@127.0.0.1:5432/postgres``), ``TRADEWIND_TEST_REDIS_URL``
(default ``redis://127.0.0.1:6379/0``) and ``TRADEWIND_TEST_AMQP_URL`` (default
``amqp://guest:guest@127.0.0.1:5672/``). Checks speak each protocol (PostgreSQL login,
Redis ``PING``, AMQP protocol header), so an unrelated listener does not pass.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import socket
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar
from urllib.parse import unquote, urlsplit

import pytest
import pytest_asyncio

from tradewind.adapters.sql import Database, upgrade_async

T = TypeVar("T")

POSTGRES_URL = os.environ.get(
    "TRADEWIND_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REDIS_URL = os.environ.get("TRADEWIND_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
AMQP_URL = os.environ.get("TRADEWIND_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
CONNECT_TIMEOUT_S = 3.0


def services_required() -> bool:
    return os.environ.get("TRADEWIND_REQUIRE_SERVICES", "") not in ("", "0")


def unavailable(service: str, url: str, reason: object) -> NoReturn:
    """Skip, or fail under ``TRADEWIND_REQUIRE_SERVICES=1``, with a clear reason."""
    parts = urlsplit(url)  # shown without credentials
    where = f"{parts.scheme}://{parts.hostname}:{parts.port or ''}{parts.path}"
    message = f"{service} not reachable at {where}: {reason}"
    if services_required():
        pytest.fail(f"{message} (TRADEWIND_REQUIRE_SERVICES=1)", pytrace=False)
    pytest.skip(message)


def _problem(check: Callable[[], object]) -> str | None:
    """Run a reachability check; the reason it failed, or ``None``. (Skipping outside the
    ``except`` block keeps the report to one line instead of a chained traceback.)"""
    try:
        check()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def run_coroutine(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion on a private loop in a helper thread, so sync
    fixtures work whether or not the test's own event loop is running."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="fixture-loop")
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


# -- PostgreSQL -----------------------------------------------------------------------


async def _pg_execute(sql: str) -> None:
    import asyncpg  # type: ignore[import-untyped]

    connection = await asyncpg.connect(POSTGRES_URL, timeout=CONNECT_TIMEOUT_S)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def pg_admin_url() -> str:
    """The admin URL of a reachable PostgreSQL (checked once per test session)."""
    problem = _problem(lambda: run_coroutine(_pg_execute("SELECT 1")))
    if problem is not None:
        unavailable("PostgreSQL", POSTGRES_URL, problem)
    return POSTGRES_URL


@pytest.fixture
def pg_url(pg_admin_url: str) -> Iterator[str]:
    """A fresh empty database for this test, as a ``postgresql+asyncpg://`` URL."""
    name = f"tradewind_test_{secrets.token_hex(6)}"
    run_coroutine(_pg_execute(f'CREATE DATABASE "{name}"'))
    parts = urlsplit(pg_admin_url)
    url = parts._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    try:
        yield url
    finally:
        run_coroutine(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _pg_empty_all_tables(url: str) -> None:
    # DELETE, children first, in one transaction: TRUNCATE costs ~0.4 s here (new files
    # and fsyncs per table), DELETE of a test's few rows a few milliseconds.
    import asyncpg

    from tradewind.adapters.sql.models import metadata

    connection = await asyncpg.connect(url, timeout=CONNECT_TIMEOUT_S)
    try:
        present = {
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
            )
        }
        ordered = [t.name for t in reversed(metadata.sorted_tables) if t.name in present]
        ordered += sorted(present - set(ordered) - {"alembic_version"})
        async with connection.transaction():
            for name in ordered:
                await connection.execute(f'DELETE FROM "{name}"')
    finally:
        await connection.close()


@pytest.fixture(scope="session")
def _pg_migrated_database(pg_admin_url: str) -> Iterator[str]:
    from tradewind.adapters.sql.migrate import upgrade_async

    name = f"tradewind_test_{secrets.token_hex(6)}"
    run_coroutine(_pg_execute(f'CREATE DATABASE "{name}"'))
    url = urlsplit(pg_admin_url)._replace(scheme="postgresql+asyncpg", path=f"/{name}").geturl()
    try:
        run_coroutine(upgrade_async(url))
        yield url
    finally:
        run_coroutine(_pg_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def pg_migrated_url(_pg_migrated_database: str) -> str:
    """A database at the newest schema with every table empty (``postgresql+asyncpg://``)."""
    plain = urlsplit(_pg_migrated_database)._replace(scheme="postgresql").geturl()
    run_coroutine(_pg_empty_all_tables(plain))
    return _pg_migrated_database


# -- SQLite ---------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database file for this test."""
    return f"sqlite+aiosqlite:///{tmp_path / 'tradewind.db'}"


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest schema once per session (per xdist worker)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "tradewind.db"
    run_coroutine(upgrade_async(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_migrated_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """A SQLite file of this test's own at the newest schema: a copy of the template,
    not a migration per test."""
    path = tmp_path / "tradewind.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Each test twice: on its own SQLite file and on an emptied PostgreSQL database, both
    at the newest schema."""
    fixture = "sqlite_migrated_url" if request.param == "sqlite" else "pg_migrated_url"
    return str(request.getfixturevalue(fixture))


@pytest_asyncio.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A :class:`Database` at the newest schema on both backends (``database_url``)."""
    await upgrade_async(database_url)
    database = Database.from_url(database_url)
    try:
        yield database
    finally:
        await database.dispose()


# -- Redis and RabbitMQ ---------------------------------------------------------------


def _redis_ping(url: str) -> None:
    parts = urlsplit(url)
    with socket.create_connection(
        (parts.hostname or "127.0.0.1", parts.port or 6379), timeout=CONNECT_TIMEOUT_S
    ) as sock:
        if parts.password:
            auth = [unquote(parts.username or "default"), unquote(parts.password)]
            sock.sendall(_resp(["AUTH", *auth]))
            _expect(sock, b"+OK")
        sock.sendall(_resp(["PING"]))
        _expect(sock, b"+PONG")


def _resp(words: list[str]) -> bytes:
    out = [f"*{len(words)}\r\n".encode()]
    for word in words:
        data = word.encode()
        out.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(out)


def _expect(sock: socket.socket, prefix: bytes) -> None:
    reply = sock.recv(256)
    if not reply.startswith(prefix):
        raise ConnectionError(f"unexpected reply {reply[:60]!r}")


def _amqp_handshake(url: str) -> None:
    parts = urlsplit(url)
    with socket.create_connection(
        (parts.hostname or "127.0.0.1", parts.port or 5672), timeout=CONNECT_TIMEOUT_S
    ) as sock:
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        frame = sock.recv(11)
        # A broker answers with a method frame (type 1) on channel 0: Connection.Start.
        if len(frame) < 11 or frame[0] != 1 or frame[1:3] != b"\x00\x00":
            raise ConnectionError(f"not an AMQP 0-9-1 broker (got {frame[:11]!r})")
        if frame[7:11] != b"\x00\x0a\x00\x0a":
            raise ConnectionError("first frame is not connection.start")


@pytest.fixture(scope="session")
def redis_url() -> str:
    problem = _problem(lambda: _redis_ping(REDIS_URL))
    if problem is not None:
        unavailable("Redis", REDIS_URL, problem)
    return REDIS_URL


@pytest.fixture(scope="session")
def amqp_url() -> str:
    problem = _problem(lambda: _amqp_handshake(AMQP_URL))
    if problem is not None:
        unavailable("RabbitMQ", AMQP_URL, problem)
    return AMQP_URL
