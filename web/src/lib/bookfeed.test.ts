import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { BookFeed, type RestBook } from "./bookfeed";
import type { Socket, Status } from "./socket";

/** The part of Socket a BookFeed uses, driven by the test. */
class FakeSocket {
  listener: ((m: Record<string, unknown>) => void) | null = null;
  statusListener: ((s: Status) => void) | null = null;
  subscribe(_: unknown, fn: (m: Record<string, unknown>) => void): () => void {
    this.listener = fn;
    return () => (this.listener = null);
  }
  onStatus(fn: (s: Status) => void): () => void {
    this.statusListener = fn;
    return () => (this.statusListener = null);
  }
  push(m: object): void {
    this.listener?.(m as Record<string, unknown>);
  }
}

const snap = (seq: number, bid: string): RestBook => ({ seq, bids: [[bid, "1"]], asks: [] });

describe("book feed", () => {
  let socket: FakeSocket;
  let restCalls: number;
  let restAnswer: RestBook;
  let redraws: number;

  const make = () =>
    new BookFeed(
      "BTC-USDT",
      6,
      8,
      socket as unknown as Socket,
      {
        book: async () => {
          restCalls += 1;
          return restAnswer;
        },
      },
      () => (redraws += 1),
    );

  beforeEach(() => {
    socket = new FakeSocket();
    restCalls = 0;
    redraws = 0;
    restAnswer = snap(0, "1");
    vi.stubGlobal("requestAnimationFrame", (fn: () => void) => setTimeout(fn, 0));
    vi.stubGlobal("cancelAnimationFrame", (id: ReturnType<typeof setTimeout>) => clearTimeout(id));
  });
  afterEach(() => vi.unstubAllGlobals());

  it("draws the socket's snapshot and its diffs, redrawing once per frame", async () => {
    const feed = make();
    feed.start(new Promise(() => {})); // the REST book never comes
    socket.push({ type: "snapshot", u: 10, bids: [["100.00", "1"]], asks: [] });
    for (let u = 11; u <= 30; u++) socket.push({ type: "diff", U: u, u, bids: [["100.00", String(u)]], asks: [] });
    await new Promise((r) => setTimeout(r, 5));
    expect(feed.book.lastId).toBe(30);
    expect(feed.book.sorted("bids")).toEqual([[100_000_000n, 3_000_000_000n]]);
    expect(redraws).toBe(1);
    feed.stop();
  });

  it("resyncs from REST after a gap and keeps the diffs that follow the new snapshot", async () => {
    const feed = make();
    feed.start(new Promise(() => {}));
    socket.push({ type: "snapshot", u: 10, bids: [["100.00", "1"]], asks: [] });
    restAnswer = snap(12, "99.00");
    socket.push({ type: "diff", U: 12, u: 12, bids: [["101.00", "1"]], asks: [] }); // 11 lost
    expect(feed.book.state).toBe("syncing");
    socket.push({ type: "diff", U: 13, u: 13, bids: [["98.00", "2"]], asks: [] });
    await new Promise((r) => setTimeout(r, 5));
    expect(restCalls).toBe(1);
    expect(feed.resyncs).toBe(1);
    expect(feed.book.state).toBe("live");
    expect(feed.book.lastId).toBe(13);
    expect(feed.book.sorted("bids").map(([p]) => p)).toEqual([99_000_000n, 98_000_000n]);
    feed.stop();
  });

  it("draws the REST book first when it comes before the socket's", async () => {
    const feed = make();
    feed.start(Promise.resolve(snap(5, "100.00")));
    await new Promise((r) => setTimeout(r, 5));
    expect(feed.book.state).toBe("live");
    expect(feed.book.lastId).toBe(5);
    // the socket's snapshot, taken later, replaces it
    socket.push({ type: "snapshot", u: 7, bids: [["101.00", "1"]], asks: [] });
    expect(feed.book.lastId).toBe(7);
    expect(feed.book.best("bids")).toBe("101.000000");
    feed.stop();
  });

  it("empties the book when the connection drops", () => {
    const feed = make();
    feed.start(new Promise(() => {}));
    socket.push({ type: "snapshot", u: 3, bids: [["100.00", "1"]], asks: [] });
    socket.statusListener?.("closed");
    expect(feed.book.state).toBe("syncing");
    expect(feed.book.sorted("bids")).toEqual([]);
    feed.stop();
  });
});
