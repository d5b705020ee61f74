"""``tradewind signer`` as a child process for the signer's process tests
(tests/integration/hsm/test_*signer_process.py): its config file, its environment (the
SoftHSM2 token and PIN), starting it until it names its hot wallet, and stopping it."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.support.softhsm import SoftToken
from tradewind.services.funding.signer import SIGNATURE_HEADER, signed_request

SECRET = "p" * 40
TRADEWIND = str(Path(sys.executable).with_name("tradewind"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_config(tmp: Path, token: SoftToken, port: int, keys: str, funding: str) -> Path:
    """``tmp/signer.toml``: the signer on ``port`` with the token and ``keys`` (a TOML
    inline table's body, ``ethereum = "label"``), then ``funding``'s tables."""
    path = tmp / "signer.toml"
    path.write_text(
        f"""
data_dir = "{tmp / "data"}"
log_level = "warning"

[funding.signer]
library = "{token.library}"
token_label = "{token.label}"
secret = "{SECRET}"
port = {port}
keys = {{ {keys} }}
{funding}"""
    )
    return path


def signer_env(token: SoftToken) -> dict[str, str]:
    return {**os.environ, "SOFTHSM2_CONF": str(token.conf), "TRADEWIND_SIGNER_PIN": token.pin}


def run(args: list[str], token: SoftToken, stdin: str = "") -> subprocess.CompletedProcess[str]:
    """``tradewind ARGS`` run to its end with the token's environment."""
    return subprocess.run(
        [TRADEWIND, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=signer_env(token),
        timeout=60,
    )


def start(
    conf: Path, token: SoftToken, network: str = "ethereum", prefix: str = "0x"
) -> tuple[subprocess.Popen[str], str]:
    """The signer started; its hot wallet on ``network`` as it prints it (``prefix``...)."""
    proc = subprocess.Popen(
        [TRADEWIND, "signer", "--config", str(conf)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=signer_env(token),
    )
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # log lines first (a key created), then the address
        if line.startswith(f"hot wallet on {network}: {prefix}"):
            return proc, line.split(": ", 1)[1].strip()
        seen.append(line)
        assert len(seen) < 20, seen
    raise AssertionError(f"the signer exited: {seen}")


def wait_listening(port: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise AssertionError("the signer did not listen")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def assert_sweeps_need_a_signed_request(port: int, network: str) -> None:
    """``/v1/sweep`` of the running signer: a bad HMAC is ``forged_request``; a signed
    request for a transfer that does not exist is ``not_signable``."""
    payload = {
        "op": "sweep",
        "transfer_id": 999,
        "network": network,
        "tx": {},
        "ts": int(time.time() * 1000),
    }
    body, sig = signed_request(SECRET, payload)
    url = f"http://127.0.0.1:{port}/v1/sweep"
    r = httpx.post(url, content=body, headers={SIGNATURE_HEADER: "0" * 64})
    assert (r.status_code, r.json()["code"]) == (401, "forged_request")
    r = httpx.post(url, content=body, headers={SIGNATURE_HEADER: sig})
    assert (r.status_code, r.json()["code"]) == (409, "not_signable")
