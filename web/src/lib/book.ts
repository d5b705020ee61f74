/**
 * The local order book: snapshot + diffs with gap detection (docs/marketdata.md,
 * "Resyncing a book"), and the rows the screen draws (grouped by tick multiples, with
 * cumulative depth for the shading).
 *
 * Why a class with explicit states: a diff may arrive before the snapshot, and a lost
 * diff must never be papered over (the book would show liquidity that is not there). So
 * diffs are buffered until a snapshot covers them, each later diff must continue the
 * last update id exactly, and anything else puts the book back to `syncing` and asks the
 * caller for a fresh REST snapshot.
 */
import { fromUnits, toUnits } from "./decimal";

export type Level = [price: string, qty: string];

export interface Snapshot {
  /** The book's update id (`u` of a WS snapshot, `seq` of the REST book). */
  u: number;
  bids: Level[];
  asks: Level[];
}

export interface Diff {
  U: number;
  u: number;
  bids: Level[];
  asks: Level[];
}

export type SyncState = "syncing" | "live";

/** What a message did: the caller redraws on `applied`, fetches a snapshot on `gap`. */
export type Outcome = "applied" | "buffered" | "stale" | "gap";

const MAX_BUFFER = 5000;

export class LocalBook {
  state: SyncState = "syncing";
  lastId = 0;
  /** Price (in quote minor units) -> [price text, qty units]. */
  readonly bids = new Map<bigint, [string, bigint]>();
  readonly asks = new Map<bigint, [string, bigint]>();
  private buffer: Diff[] = [];

  constructor(
    readonly priceDecimals: number,
    readonly qtyDecimals: number,
  ) {}

  /** Forget everything and wait for a snapshot (after a reconnect or a gap). */
  reset(): void {
    this.state = "syncing";
    this.lastId = 0;
    this.bids.clear();
    this.asks.clear();
    this.buffer = [];
  }

  onDiff(d: Diff): Outcome {
    if (this.state === "syncing") {
      this.buffer.push(d);
      if (this.buffer.length > MAX_BUFFER) this.buffer.shift();
      return "buffered";
    }
    if (d.u <= this.lastId) return "stale";
    if (d.U !== this.lastId + 1) {
      this.state = "syncing";
      this.buffer = [d];
      return "gap";
    }
    this.apply(d);
    return "applied";
  }

  /** Install a snapshot, then the buffered diffs that continue it. */
  onSnapshot(s: Snapshot): Outcome {
    this.bids.clear();
    this.asks.clear();
    for (const [p, q] of s.bids) this.set(this.bids, p, q);
    for (const [p, q] of s.asks) this.set(this.asks, p, q);
    this.lastId = s.u;
    const pending = this.buffer.filter((d) => d.u > s.u);
    this.buffer = [];
    this.state = "live";
    for (const d of pending) {
      if (d.U > this.lastId + 1) {
        // the snapshot is older than what the diffs continue: take another one
        this.state = "syncing";
        this.buffer = pending.slice(pending.indexOf(d));
        return "gap";
      }
      this.apply(d);
    }
    return "applied";
  }

  private apply(d: Diff): void {
    for (const [p, q] of d.bids) this.set(this.bids, p, q);
    for (const [p, q] of d.asks) this.set(this.asks, p, q);
    this.lastId = d.u;
  }

  private set(side: Map<bigint, [string, bigint]>, price: string, qty: string): void {
    const key = toUnits(price, this.priceDecimals);
    const q = toUnits(qty, this.qtyDecimals);
    if (key === null || q === null) return;
    if (q === 0n) side.delete(key);
    else side.set(key, [price, q]);
  }

  /** Best first: bids high to low, asks low to high. */
  sorted(side: "bids" | "asks"): [bigint, bigint][] {
    const src = side === "bids" ? this.bids : this.asks;
    const out: [bigint, bigint][] = [];
    for (const [k, [, q]] of src) out.push([k, q]);
    out.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    if (side === "bids") out.reverse();
    return out;
  }

  best(side: "bids" | "asks"): string | null {
    const top = this.sorted(side)[0];
    return top === undefined ? null : fromUnits(top[0], this.priceDecimals);
  }
}

export interface Row {
  price: string;
  qty: string;
  total: string;
  /** Cumulative quantity as a share of the deepest row shown (0..1), for the shading. */
  depth: number;
}

/**
 * Rows of one side, best first, grouped into buckets of `step` price units (a multiple
 * of the tick): bids round down, asks round up, so a bucket never claims a better price
 * than its orders have. `count` rows at most.
 */
export function groupRows(
  levels: [bigint, bigint][],
  side: "bids" | "asks",
  step: bigint,
  count: number,
  priceDecimals: number,
  qtyDecimals: number,
  shownPriceDecimals: number,
): Row[] {
  const buckets: [bigint, bigint][] = [];
  for (const [price, qty] of levels) {
    const rem = price % step;
    let key = price - rem;
    if (side === "asks" && rem !== 0n) key += step;
    const last = buckets[buckets.length - 1];
    if (last !== undefined && last[0] === key) last[1] += qty;
    else {
      if (buckets.length === count) break;
      buckets.push([key, qty]);
    }
  }
  let cum = 0n;
  const totals = buckets.map(([, q]) => (cum += q));
  const deepest = cum === 0n ? 1 : Number(cum);
  return buckets.map(([p, q], i) => ({
    price: fromUnits(p, priceDecimals, shownPriceDecimals),
    qty: fromUnits(q, qtyDecimals),
    total: fromUnits(totals[i], qtyDecimals),
    depth: Number(totals[i]) / deepest,
  }));
}

/** Grouping choices for a tick: 1, 10, 100, 1000 ticks (in price units). */
export function groupSteps(tickUnits: bigint): bigint[] {
  return [1n, 10n, 100n, 1000n].map((k) => tickUnits * k);
}
