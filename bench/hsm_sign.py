"""Signing cost in the PKCS#11 signer (SoftHSM2): what one withdrawal signature costs.

Why: every withdrawal and sweep is signed in the HSM; this says how many signatures per
second one signer process can give, split into the token's CKM_ECDSA call and our
low-S normalisation plus recovery-id search (two public-key recoveries at worst). It
also times address derivation from an xpub, which every first deposit-address request
pays. The token is a fresh one in a temp dir, as in the tests.

Writes bench/results/hsm.json with the core count and the commit.

    .venv/bin/python bench/hsm_sign.py [--count 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from tradewind.runtime.benchmark import machine_info

OUT = Path(__file__).resolve().parent / "results" / "hsm.json"
LIBRARY = "/usr/lib/softhsm/libsofthsm2.so"
PIN = "12345678"


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    s = sorted(samples_ns)
    return {
        "p50_us": round(s[len(s) // 2] / 1000, 1),
        "p99_us": round(s[min(len(s) - 1, len(s) * 99 // 100)] / 1000, 1),
        "mean_us": round(statistics.fmean(s) / 1000, 1),
    }


def main(count: int) -> dict[str, Any]:
    root = Path(tempfile.mkdtemp(prefix="softhsm-bench-"))
    (root / "tokens").mkdir()
    (root / "softhsm2.conf").write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(root / "softhsm2.conf")
    subprocess.run(
        [
            *("softhsm2-util", "--init-token", "--free", "--label", "bench"),
            *("--so-pin", "87654321", "--pin", PIN),
        ],
        check=True,
        capture_output=True,
    )
    from pkcs11 import Attribute, Mechanism, ObjectClass

    from tradewind.adapters.hsm.pkcs11_custody import Pkcs11Custody, normalise, recovery_id
    from tradewind.services.funding.defaults import demo_networks
    from tradewind.services.funding.derivation import AddressDeriver

    digests = [hashlib.sha256(i.to_bytes(8, "big")).digest() for i in range(count)]
    with Pkcs11Custody(LIBRARY, "bench", PIN) as custody:
        t0 = time.perf_counter_ns()
        key = custody.create_key("hot")
        keygen_us = round((time.perf_counter_ns() - t0) / 1000, 1)
        (private,) = custody._session.get_objects(
            {Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: "hot"}
        )
        raw_ns, full_ns, post_ns = [], [], []
        for d in digests:
            t0 = time.perf_counter_ns()
            raw = private.sign(d, mechanism=Mechanism.ECDSA)
            t1 = time.perf_counter_ns()
            r, s = normalise(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
            recovery_id(d, r, s, key.public_key)
            t2 = time.perf_counter_ns()
            raw_ns.append(t1 - t0)
            post_ns.append(t2 - t1)
        for d in digests:
            t0 = time.perf_counter_ns()
            custody.sign_digest("hot", d)
            full_ns.append(time.perf_counter_ns() - t0)
    shutil.rmtree(root, ignore_errors=True)
    eth = demo_networks().network("ethereum")
    btc = demo_networks().network("bitcoin")
    assert eth is not None and btc is not None
    derive: dict[str, Any] = {}
    for net in (eth, btc):
        deriver = AddressDeriver(net)
        samples = []
        for i in range(min(count, 500)):
            t0 = time.perf_counter_ns()
            deriver.derive(i)
            samples.append(time.perf_counter_ns() - t0)
        derive[net.name] = percentiles(samples)
    full = percentiles(full_ns)
    return {
        "what": "PKCS#11 secp256k1 signing in SoftHSM2 and xpub address derivation",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM, other engineers' runs loading it (load_average)",
        "signatures": count,
        "keygen_us": keygen_us,
        "token_ckm_ecdsa": percentiles(raw_ns),
        "low_s_and_recovery_id": percentiles(post_ns),
        "sign_digest_total": full,
        "signatures_per_sec_one_process": round(1e6 / full["mean_us"]),
        "derive_address_from_xpub": derive,
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    ns = parser.parse_args()
    report = main(ns.count)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    print(f"wrote {OUT}")
