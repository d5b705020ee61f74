"""Fixtures of the signer's tests: one SoftHSM2 token per test session, a logged-in
custody per test, the Bitcoin node simulator for the Bitcoin tests, and each test's
SQLite database copied from one migrated per session (the ``db`` fixture's upgrade then
finds it at the newest schema). SoftHSM2 missing fails the tests with the fix
(``make test`` installs it)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.conftest import run_coroutine
from tests.support.bitcoind_sim import BitcoindSim
from tests.support.softhsm import SoftToken, init_token, softhsm_missing
from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody
from tradewind.adapters.sql import upgrade_async


@pytest.fixture(scope="session")
def softhsm_token(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftToken]:
    if softhsm_missing():
        pytest.fail("SoftHSM2 is missing: apt-get install -y softhsm2 (make test does)")
    token = init_token(tmp_path_factory.mktemp("softhsm"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(token.conf))
        yield token


@pytest.fixture
def custody(softhsm_token: SoftToken) -> Iterator[Pkcs11Custody]:
    with softhsm_token.open() as c:
        yield c


@pytest.fixture
def sim() -> Iterator[BitcoindSim]:
    """The Bitcoin node simulator over HTTP (the Bitcoin payout and sweep tests)."""
    with BitcoindSim().running() as node:
        yield node


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest schema once per session (per xdist worker)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "tradewind.db"
    run_coroutine(upgrade_async(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_url(tmp_path: Path, _sqlite_template: Path) -> str:
    """A fresh SQLite database file for this test: a copy of the migrated template."""
    path = tmp_path / "tradewind.db"
    shutil.copyfile(_sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"
