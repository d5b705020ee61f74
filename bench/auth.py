"""Password hashing cost: argon2id parameters, hashes per second, event-loop lag.

Why: login must not be a denial-of-service lever. Each login costs one argon2id verify
(also for unknown emails, against a dummy hash), so the hash parameters set both the
attacker's cost per guess offline and the server's CPU per login attempt online. This
measures, on this machine:

- time per hash and verifies per second, one thread and one per core, for the
  parameters in use (argon2-cffi's default: RFC 9106's low-memory profile, argon2id
  t=3, m=64 MiB, p=4) and for OWASP's two smaller recommended settings;
- the event loop's lag while logins verify: in a worker thread (``asyncio.to_thread``,
  as the accounts service does) versus inline on the loop (what must not happen);
- what the per-IP ``auth`` bucket (default 100 per minute) lets one address spend.

Writes bench/results/auth.json with the core count and the commit.

    .venv/bin/python bench/auth.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher

from tradewind.runtime.benchmark import machine_info

OUT = Path(__file__).resolve().parent / "results" / "auth.json"
PASSWORD = "correct horse battery staple"

PROFILES: dict[str, dict[str, int]] = {
    # what AccountsService uses (PasswordHasher()): RFC 9106 low-memory, argon2id
    "in_use_rfc9106_low_memory": {"time_cost": 3, "memory_cost": 65536, "parallelism": 4},
    "owasp_19MiB_t2_p1": {"time_cost": 2, "memory_cost": 19456, "parallelism": 1},
    "owasp_12MiB_t3_p1": {"time_cost": 3, "memory_cost": 12288, "parallelism": 1},
}


def verifies_per_second(hasher: PasswordHasher, threads: int, seconds: float) -> float:
    encoded = hasher.hash(PASSWORD)
    stop = time.perf_counter() + seconds
    counts = [0] * threads

    def work(i: int) -> None:
        while time.perf_counter() < stop:
            hasher.verify(encoded, PASSWORD)
            counts[i] += 1

    start = time.perf_counter()
    workers = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(counts) / (time.perf_counter() - start)


def hash_ms(hasher: PasswordHasher, n: int = 5) -> float:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        hasher.hash(PASSWORD)
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


async def loop_lag(hasher: PasswordHasher, logins: int, off_loop: bool) -> dict[str, float]:
    """Max and p99 lag of a 1 ms ticker while ``logins`` verifies run concurrently."""
    encoded = hasher.hash(PASSWORD)
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker() -> None:
        while not done.is_set():
            t = time.perf_counter()
            await asyncio.sleep(0.001)
            lags.append((time.perf_counter() - t - 0.001) * 1000)

    pool = ThreadPoolExecutor(max_workers=os.cpu_count() or 1)
    loop = asyncio.get_running_loop()

    async def login() -> None:
        if off_loop:
            await loop.run_in_executor(pool, hasher.verify, encoded, PASSWORD)
        else:
            hasher.verify(encoded, PASSWORD)
            await asyncio.sleep(0)

    tick = asyncio.create_task(ticker())
    await asyncio.sleep(0.05)
    await asyncio.gather(*(login() for _ in range(logins)))
    done.set()
    await tick
    pool.shutdown()
    lags.sort()
    return {
        "ticks": len(lags),
        "p99_ms": round(lags[int(len(lags) * 0.99) - 1], 2) if lags else 0.0,
        "max_ms": round(lags[-1], 2) if lags else 0.0,
    }


def main(seconds: float) -> dict[str, Any]:
    cores = os.cpu_count() or 1
    profiles: dict[str, Any] = {}
    for name, params in PROFILES.items():
        hasher = PasswordHasher(**params)
        one = verifies_per_second(hasher, 1, seconds)
        many = verifies_per_second(hasher, cores, seconds)
        profiles[name] = {
            "params": {**params, "type": "argon2id", "memory_MiB": params["memory_cost"] / 1024},
            "hash_ms_median": round(hash_ms(hasher), 1),
            "verifies_per_sec_1_thread": round(one, 1),
            f"verifies_per_sec_{cores}_threads": round(many, 1),
        }
        print(name, json.dumps(profiles[name]), flush=True)
    in_use = PasswordHasher(**PROFILES["in_use_rfc9106_low_memory"])
    lag = {
        "off_loop_to_thread": asyncio.run(loop_lag(in_use, 20, off_loop=True)),
        "inline_on_loop": asyncio.run(loop_lag(in_use, 20, off_loop=False)),
    }
    print("loop lag with 20 concurrent logins", json.dumps(lag), flush=True)
    per_sec = profiles["in_use_rfc9106_low_memory"]["verifies_per_sec_1_thread"]
    auth_bucket_per_min = 100
    return {
        "what": "argon2id password hashing: parameters, verifies/s, event-loop lag",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "machine_note": "shared 2-vCPU VM; other engineers' test runs were loading it "
        "(see load_average), so per-second figures are low and noisy",
        "seconds_per_measure": seconds,
        "chosen": "in_use_rfc9106_low_memory",
        "profiles": profiles,
        "event_loop_lag_20_logins": lag,
        "auth_bucket": {
            "limit_per_minute_per_ip": auth_bucket_per_min,
            "one_ip_max_core_share": round(auth_bucket_per_min / 60 / per_sec, 3),
            "note": "share of one core one address can keep busy with password checks "
            "at the default auth bucket (100/min); the burst of 100 costs "
            f"{round(auth_bucket_per_min / per_sec, 1)} core-seconds once",
        },
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    ns = parser.parse_args()
    report = main(ns.seconds)
    OUT.parent.mkdir(exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {OUT}")
