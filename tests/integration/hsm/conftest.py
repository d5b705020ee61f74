"""Fixtures of the signer's tests: one SoftHSM2 token per test session, a logged-in
custody per test, the Bitcoin node simulator for the Bitcoin tests, and the Bitcoin payout
rig (``rig``) of test_withdrawal_bitcoin.py and test_network_fees_bitcoin.py: the modules
with a rig of their own (the EVM payouts, the sweeps, the EVM network fees) define ``rig``
themselves, which overrides this one. SoftHSM2 missing fails the tests with the fix
(``make test`` installs it)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from tests.support.bitcoin_payout_rig import Rig, running_rig
from tests.support.bitcoind_sim import BitcoindSim
from tests.support.softhsm import SoftToken, init_token, softhsm_missing
from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody
from tradewind.adapters.sql import Database
from tradewind.core.invariants import check_invariants


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


@pytest_asyncio.fixture
async def rig(
    sim: BitcoindSim, db: Database, tmp_path: Path, softhsm_token: SoftToken
) -> AsyncIterator[Rig]:
    """The Bitcoin payout rig over a journaled core in the test's tmp dir; the core's
    invariants hold at the end."""
    async with running_rig(sim, db, tmp_path / "core", softhsm_token) as r:
        yield r
        assert check_invariants(r.runner.jcore.core) == []
