"""Speed of the web trading screen in Chromium: first book, frame rate under a busy book,
bundle size. Writes bench/results/ui.json (with the commit and core count).

1. Time to first rendered book: a fresh browser context (empty cache) loads
   ``/trade/BTC-USDT`` from ``tradewind demo`` (market maker on); a MutationObserver
   installed before the page's scripts notes ``performance.now()`` (milliseconds since
   navigation start) when the first bid row is in the DOM. Median of several loads.
2. Frames per second while the book receives ~200 updates/s: the page's WebSocket is
   routed (Playwright ``route_web_socket``) to a feed in this script that sends a 40-level
   snapshot and then diffs at the target rate, each changing 1-3 levels, with update ids
   that continue exactly (so the page applies every one); REST still goes to the real
   server. A requestAnimationFrame loop in the page counts frames and frames longer than
   50 ms; the same count with no updates gives the idle baseline.
3. The gzipped size of what the trading screen loads (every file of web/dist, since it
   is one page; the chart library is a chunk loaded after the first render), and of what
   the first render needs (index.html and the files it names), gzip level 9.

Run: ``make bench-ui`` (builds the UI, installs chromium if missing). Figures depend on
the machine and on what else runs on it; headless Chromium paces frames at 60/s.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gzip
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.browser import CHROMIUM_ARGS, WEB_DIST  # noqa: E402
from tests.support.server import Server, free_port  # noqa: E402
from tradewind.runtime.benchmark import machine_info  # noqa: E402

OUT = ROOT / "bench" / "results" / "ui.json"

FIRST_BOOK = """
window.__firstBook = null;
new MutationObserver((_, obs) => {
  if (document.querySelector('[data-testid=bid-row]')) {
    window.__firstBook = performance.now();
    obs.disconnect();
  }
}).observe(document, { childList: true, subtree: true });
"""

FRAME_COUNTER = """
() => {
  const s = { frames: 0, long: 0, worst: 0, last: performance.now(), start: performance.now() };
  window.__frames = s;
  const tick = (t) => {
    const d = t - s.last;
    s.last = t;
    s.frames += 1;
    if (d > 50) s.long += 1;
    if (d > s.worst) s.worst = d;
    if (!s.stop) requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
}
"""

READ_FRAMES = """
() => {
  const s = window.__frames;
  s.stop = true;
  const seconds = (performance.now() - s.start) / 1000;
  return { frames: s.frames, seconds, long_frames: s.long, worst_frame_ms: s.worst };
}
"""


def launch(p: Any) -> Any:
    executable = shutil.which("chromium")
    if executable is None:
        sys.exit("chromium is not installed: make chromium (apt-get install chromium)")
    return p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)


def first_book_ms(browser: Any, url: str, loads: int) -> list[float]:
    samples = []
    for _ in range(loads):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.add_init_script(FIRST_BOOK)
        page.goto(f"{url}/trade/BTC-USDT")
        # a function, not an expression: the page's CSP forbids the eval an expression needs
        page.wait_for_function("() => window.__firstBook !== null", timeout=30_000)
        samples.append(round(page.evaluate("window.__firstBook"), 1))
        context.close()
    return samples


class Feed:
    """A fake ``/ws`` for the page: a book snapshot, then diffs on demand."""

    def __init__(self, levels: int = 40, seed: int = 1) -> None:
        self.rng = random.Random(seed)
        self.route: Any = None
        self.update_id = 1
        mid = 6_500_000  # ticks of 0.01
        self.bids = {mid - 5 - i * 3: self.qty() for i in range(levels)}
        self.asks = {mid + 5 + i * 3: self.qty() for i in range(levels)}
        self.subscribed = False

    def qty(self) -> int:
        return self.rng.randint(1, 5000)  # lots of 0.0001

    @staticmethod
    def level(price: int, qty: int) -> list[str]:
        return [f"{price // 100}.{price % 100:02d}", f"{qty // 10000}.{qty % 10000:04d}"]

    def on_socket(self, ws: Any) -> None:
        self.route = ws
        ws.on_message(lambda m: self.on_client(ws, m))

    def on_client(self, ws: Any, raw: str | bytes) -> None:
        msg = json.loads(raw)
        if msg.get("op") == "ping":
            ws.send(json.dumps({"op": "pong"}))
        if msg.get("op") != "subscribe":
            return
        ws.send(json.dumps({"op": "subscribed", **{k: v for k, v in msg.items() if k != "op"}}))
        if msg.get("channel") == "book" and msg.get("symbol") == "BTC-USDT":
            ws.send(
                json.dumps(
                    {
                        "channel": "book",
                        "symbol": "BTC-USDT",
                        "type": "snapshot",
                        "u": self.update_id,
                        "bids": [self.level(p, q) for p, q in sorted(self.bids.items())],
                        "asks": [self.level(p, q) for p, q in sorted(self.asks.items())],
                    }
                )
            )
            self.subscribed = True

    def diff(self) -> str:
        changes: dict[str, list[list[str]]] = {"bids": [], "asks": []}
        for _ in range(self.rng.randint(1, 3)):
            side = self.rng.choice(("bids", "asks"))
            book = self.bids if side == "bids" else self.asks
            price = self.rng.choice(list(book))
            qty = 0 if self.rng.random() < 0.1 and len(book) > 20 else self.qty()
            if qty == 0:
                del book[price]
                # a new level elsewhere keeps the depth steady
                fresh = price + (-1 if side == "bids" else 1) * self.rng.randint(1, 2) * 1
                while fresh in book:
                    fresh += 1 if side == "asks" else -1
                book[fresh] = self.qty()
                changes[side].append(self.level(fresh, book[fresh]))
            else:
                book[price] = qty
            changes[side].append(self.level(price, qty))
        first = self.update_id + 1
        self.update_id += len(changes["bids"]) + len(changes["asks"])
        return json.dumps(
            {
                "channel": "book",
                "symbol": "BTC-USDT",
                "type": "diff",
                "U": first,
                "u": self.update_id,
                **changes,
            }
        )


def fps_under_updates(browser: Any, url: str, rate: int, seconds: float) -> dict[str, Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    feed = Feed()
    page.route_web_socket("**/ws", feed.on_socket)
    page.goto(f"{url}/trade/BTC-USDT")
    page.wait_for_selector("[data-testid=bid-row]", timeout=30_000)
    page.wait_for_function(
        "() => document.querySelector('[data-testid=order-book]').dataset.live === 'true'"
    )
    page.wait_for_timeout(1000)

    page.evaluate(FRAME_COUNTER)
    page.wait_for_timeout(seconds * 1000)
    idle = page.evaluate(READ_FRAMES)

    version0 = int(page.get_by_test_id("order-book").get_attribute("data-version") or 0)
    page.evaluate(FRAME_COUNTER)
    sent = 0
    start = time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        due = int(elapsed * rate) + 1
        while sent < due:
            feed.route.send(feed.diff())
            sent += 1
        time.sleep(max(0.0, (sent / rate) - (time.perf_counter() - start)))
    busy = page.evaluate(READ_FRAMES)
    send_seconds = time.perf_counter() - start
    page.wait_for_timeout(300)
    version1 = int(page.get_by_test_id("order-book").get_attribute("data-version") or 0)
    live = page.get_by_test_id("order-book").get_attribute("data-live")
    shown_best_bid = page.get_by_test_id("bid-row").first.locator(".num").first.inner_text()
    best_bid = max(feed.bids)
    context.close()
    return {
        "updates_sent": sent,
        "updates_per_sec": round(sent / send_seconds, 1),
        "fps": round(busy["frames"] / busy["seconds"], 1),
        "long_frames_over_50ms": busy["long_frames"],
        "worst_frame_ms": round(busy["worst_frame_ms"], 1),
        "book_redraws": version1 - version0,
        "book_still_in_sync": live == "true"
        and shown_best_bid.replace(",", "") == Feed.level(best_bid, 1)[0],
        "idle_fps": round(idle["frames"] / idle["seconds"], 1),
        "seconds": seconds,
    }


def bundle_sizes() -> dict[str, Any]:
    files = sorted(p for p in WEB_DIST.rglob("*") if p.is_file())
    if not files:
        sys.exit("web/dist is empty: make ui")
    per_file = {}
    for f in files:
        data = f.read_bytes()
        per_file[str(f.relative_to(WEB_DIST))] = {
            "bytes": len(data),
            "gzip_bytes": len(gzip.compress(data, compresslevel=9)),
        }
    index = (WEB_DIST / "index.html").read_text()
    initial = ["index.html"] + [
        name for name in per_file if name.startswith("assets/") and f"/{name}" in index
    ]
    return {
        "initial_gzip_bytes": sum(per_file[name]["gzip_bytes"] for name in initial),
        "initial_files": initial,
        "total_bytes": sum(v["bytes"] for v in per_file.values()),
        "total_gzip_bytes": sum(v["gzip_bytes"] for v in per_file.values()),
        "target_gzip_bytes": 400_000,
        "files": per_file,
    }


def main(loads: int, rate: int, seconds: float) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    load_before = os.getloadavg()

    with tempfile.TemporaryDirectory() as tmp:
        server = Server(Path(tmp) / "data", free_port())
        server.start(TRADEWIND_DEMO_BOT="1", TRADEWIND_BOT_SEED="7")
        try:
            with sync_playwright() as p:
                browser = launch(p)
                version = browser.version
                first = first_book_ms(browser, server.url, loads)
                fps = fps_under_updates(browser, server.url, rate, seconds)
                browser.close()
        finally:
            server.stop()
    return {
        "what": "web trading screen in headless Chromium against tradewind demo",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "load_average_1m": {"before": load_before[0], "after": os.getloadavg()[0]},
        "chromium": version,
        "first_book_ms": {
            "median": statistics.median(first),
            "max": max(first),
            "samples": first,
            "target": 1000,
        },
        "book_updates": fps | {"target_fps": 30, "target_updates_per_sec": rate},
        "bundle": bundle_sizes(),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5)
    parser.add_argument("--rate", type=int, default=200, help="book updates per second")
    parser.add_argument("--seconds", type=float, default=5.0)
    ns = parser.parse_args()
    report = main(ns.loads, ns.rate, ns.seconds)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    summary = {k: v for k, v in report.items() if k != "bundle"}
    summary["bundle_gzip_bytes"] = report["bundle"]["total_gzip_bytes"]
    print(json.dumps(summary, indent=2))
