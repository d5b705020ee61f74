import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { Socket } from "./socket";

/** A stand-in for the browser's WebSocket: records what the page sends, lets the test
 *  open, deliver and close. */
class FakeWebSocket {
  static OPEN = 1;
  static all: FakeWebSocket[] = [];
  readyState = 0;
  sent: Record<string, unknown>[] = [];
  onopen: (() => void) | null = null;
  onmessage: ((ev: { data: string }) => void) | null = null;
  onclose: (() => void) | null = null;

  constructor(readonly url: string) {
    FakeWebSocket.all.push(this);
  }
  send(text: string): void {
    this.sent.push(JSON.parse(text) as Record<string, unknown>);
  }
  close(): void {
    this.readyState = 3;
    this.onclose?.();
  }
  open(): void {
    this.readyState = FakeWebSocket.OPEN;
    this.onopen?.();
  }
  deliver(msg: object): void {
    this.onmessage?.({ data: JSON.stringify(msg) });
  }
}

describe("socket", () => {
  beforeEach(() => {
    FakeWebSocket.all = [];
    vi.stubGlobal("WebSocket", FakeWebSocket);
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("authenticates, then subscribes books first, on every (re)connect", () => {
    const s = new Socket("ws://x/ws");
    s.subscribe({ channel: "ticker", symbol: "BTC-USDT" }, () => {});
    s.subscribe({ channel: "book", symbol: "BTC-USDT" }, () => {});
    s.setToken("t0k");
    s.start();
    const first = FakeWebSocket.all[0];
    first.open();
    expect(first.sent[0]).toEqual({ op: "auth", token: "t0k", id: "auth" });
    expect(first.sent.map((m) => [m.op, m.channel ?? null])).toEqual([
      ["auth", null],
      ["subscribe", "book"],
      ["subscribe", "ticker"],
    ]);
    // the connection drops: status closed, then a new socket after the backoff
    const statuses: string[] = [];
    s.onStatus((x) => statuses.push(x));
    first.close();
    expect(statuses).toEqual(["closed"]);
    vi.advanceTimersByTime(600);
    const second = FakeWebSocket.all[1];
    second.open();
    expect(statuses).toEqual(["closed", "connecting", "open"]);
    expect(second.sent.map((m) => m.op)).toEqual(["auth", "subscribe", "subscribe"]);
  });

  it("routes data to its channel's listeners, answers pings, ignores replies", () => {
    const s = new Socket("ws://x/ws");
    const got: unknown[] = [];
    s.subscribe({ channel: "trades", symbol: "ETH-USDT" }, (m) => got.push(m.data));
    s.start();
    const ws = FakeWebSocket.all[0];
    ws.open();
    ws.deliver({ op: "subscribed", channel: "trades", symbol: "ETH-USDT" });
    ws.deliver({ channel: "trades", symbol: "BTC-USDT", data: "other market" });
    ws.deliver({ channel: "trades", symbol: "ETH-USDT", data: "mine" });
    ws.deliver({ op: "ping" });
    expect(got).toEqual(["mine"]);
    expect(ws.sent.at(-1)).toEqual({ op: "pong" });
  });

  it("reports a refused token, and only that error", () => {
    const s = new Socket("ws://x/ws");
    const refused: string[] = [];
    s.onAuthFailed((code) => refused.push(code));
    s.setToken("expired");
    s.start();
    const ws = FakeWebSocket.all[0];
    ws.open();
    ws.deliver({ op: "error", code: "unknown_symbol", message: "no", id: null });
    ws.deliver({ op: "error", code: "invalid_session", message: "expired", id: "auth" });
    expect(refused).toEqual(["invalid_session"]);
  });

  it("unsubscribes when the last listener leaves", () => {
    const s = new Socket("ws://x/ws");
    s.start();
    const ws = FakeWebSocket.all[0];
    ws.open();
    const off = s.subscribe({ channel: "candles", symbol: "BTC-USDT", interval: "5m" }, () => {});
    off();
    expect(ws.sent.map((m) => m.op)).toEqual(["subscribe", "unsubscribe"]);
  });

  it("backs off up to 5 s between attempts", () => {
    const s = new Socket("ws://x/ws");
    s.start();
    for (let i = 0; i < 6; i++) {
      FakeWebSocket.all[i].close();
      vi.advanceTimersByTime(Math.min(500 * 2 ** i, 5000) - 1);
      expect(FakeWebSocket.all.length).toBe(i + 1);
      vi.advanceTimersByTime(1);
      expect(FakeWebSocket.all.length).toBe(i + 2);
    }
  });
});
