import { describe, expect, it } from "vitest";
import { groupRows, LocalBook } from "./book";

const book = () => new LocalBook(6, 8);

describe("book sync", () => {
  it("buffers diffs until the snapshot, then applies those after it", () => {
    const b = book();
    expect(b.onDiff({ U: 10, u: 11, bids: [["100.00", "1"]], asks: [] })).toBe("buffered");
    expect(b.onDiff({ U: 12, u: 12, bids: [["99.00", "2"]], asks: [] })).toBe("buffered");
    const out = b.onSnapshot({ u: 11, bids: [["100.00", "1"]], asks: [["101.00", "3"]] });
    expect(out).toBe("applied");
    expect(b.state).toBe("live");
    expect(b.lastId).toBe(12);
    expect(b.sorted("bids").length).toBe(2);
  });

  it("detects a gap between diffs and goes back to syncing", () => {
    const b = book();
    b.onSnapshot({ u: 5, bids: [["100.00", "1"]], asks: [] });
    expect(b.onDiff({ U: 6, u: 6, bids: [["100.00", "2"]], asks: [] })).toBe("applied");
    expect(b.onDiff({ U: 8, u: 9, bids: [], asks: [] })).toBe("gap");
    expect(b.state).toBe("syncing");
    // the fresh snapshot covers the diff buffered at the gap
    expect(b.onSnapshot({ u: 9, bids: [["100.00", "4"]], asks: [] })).toBe("applied");
    expect(b.sorted("bids")).toEqual([[100_000_000n, 400_000_000n]]);
  });

  it("asks for another snapshot when the snapshot is older than the buffered diffs", () => {
    const b = book();
    b.onDiff({ U: 20, u: 21, bids: [], asks: [] });
    expect(b.onSnapshot({ u: 10, bids: [], asks: [] })).toBe("gap");
    expect(b.state).toBe("syncing");
    expect(b.onSnapshot({ u: 19, bids: [], asks: [] })).toBe("applied");
    expect(b.lastId).toBe(21);
  });

  it("ignores a diff already covered by the snapshot", () => {
    const b = book();
    b.onSnapshot({ u: 5, bids: [["100.00", "1"]], asks: [] });
    expect(b.onDiff({ U: 4, u: 5, bids: [["100.00", "9"]], asks: [] })).toBe("stale");
    expect(b.sorted("bids")).toEqual([[100_000_000n, 100_000_000n]]);
  });

  it("removes a level whose quantity becomes zero and keeps sides sorted best first", () => {
    const b = book();
    b.onSnapshot({
      u: 1,
      bids: [
        ["99.00", "1"],
        ["100.00", "1"],
      ],
      asks: [
        ["102.00", "1"],
        ["101.00", "1"],
      ],
    });
    b.onDiff({ U: 2, u: 2, bids: [["100.00", "0"]], asks: [] });
    expect(b.best("bids")).toBe("99.000000");
    expect(b.best("asks")).toBe("101.000000");
  });

  it("starts over on reset", () => {
    const b = book();
    b.onSnapshot({ u: 3, bids: [["1", "1"]], asks: [] });
    b.reset();
    expect(b.state).toBe("syncing");
    expect(b.sorted("bids")).toEqual([]);
  });
});

describe("grouping", () => {
  const levels = (xs: [string, string][]) => {
    const b = book();
    b.onSnapshot({ u: 1, bids: xs, asks: xs });
    return b;
  };

  it("groups bids down and asks up to the step, summing quantities", () => {
    const b = levels([
      ["100.01", "1"],
      ["100.09", "2"],
      ["100.10", "4"],
    ]);
    const step = 100_000n; // 0.10 in quote units (6 decimals)
    const bids = groupRows(b.sorted("bids"), "bids", step, 10, 6, 8, 2);
    expect(bids.map((r) => [r.price, r.qty])).toEqual([
      ["100.10", "4.00000000"],
      ["100.00", "3.00000000"],
    ]);
    const asks = groupRows(b.sorted("asks"), "asks", step, 10, 6, 8, 2);
    expect(asks.map((r) => [r.price, r.qty])).toEqual([["100.10", "7.00000000"]]);
  });

  it("gives cumulative totals and depth shares for the shading", () => {
    const b = levels([
      ["100.00", "1"],
      ["99.00", "3"],
    ]);
    const rows = groupRows(b.sorted("bids"), "bids", 10_000n, 10, 6, 8, 2);
    expect(rows.map((r) => r.total)).toEqual(["1.00000000", "4.00000000"]);
    expect(rows.map((r) => r.depth)).toEqual([0.25, 1]);
  });

  it("shows at most `count` rows", () => {
    const b = levels([
      ["1", "1"],
      ["2", "1"],
      ["3", "1"],
    ]);
    expect(groupRows(b.sorted("asks"), "asks", 10_000n, 2, 6, 8, 2).length).toBe(2);
  });
});
