"""Fixtures of the signer's tests: one SoftHSM2 token per test session, a logged-in
custody per test, and the Bitcoin node simulator for the Bitcoin tests. SoftHSM2
missing fails the tests with the fix (``make test`` installs it)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.bitcoind_sim import BitcoindSim
from tests.support.softhsm import SoftToken, init_token, softhsm_missing
from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody


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
