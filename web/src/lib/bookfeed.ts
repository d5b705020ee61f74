/**
 * Keeps a `LocalBook` in step with the exchange: WebSocket diffs, the snapshot the
 * server sends on subscribe (embedded mode) or a REST snapshot (distributed mode, and
 * after every gap or reconnect). Redraws are batched to one per animation frame, so
 * 200 diffs a second cost 60 renders at most.
 */
import { type Diff, LocalBook, type Snapshot } from "./book";
import type { Socket } from "./socket";

export interface RestBook {
  seq: number;
  bids: [string, string][];
  asks: [string, string][];
}

export interface BookSource {
  book(symbol: string): Promise<RestBook>;
}

export class BookFeed {
  readonly book: LocalBook;
  /** How many times the book was rebuilt from a snapshot after a gap or reconnect. */
  resyncs = 0;
  private unsub: (() => void) | null = null;
  private unstatus: (() => void) | null = null;
  private fetching = false;
  private frame = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private closed = false;

  constructor(
    readonly symbol: string,
    priceDecimals: number,
    qtyDecimals: number,
    private readonly socket: Socket,
    private readonly api: BookSource,
    private readonly redraw: () => void,
  ) {
    this.book = new LocalBook(priceDecimals, qtyDecimals);
  }

  /**
   * Subscribe, and meanwhile draw the REST snapshot (`first`, fetched by the caller as
   * early as it could, or fetched now): whichever of it and the socket's own snapshot
   * comes first is drawn; the socket's, taken later, replaces the REST one.
   */
  start(first?: Promise<RestBook>): void {
    this.unsub = this.socket.subscribe({ channel: "book", symbol: this.symbol }, (m) =>
      this.onMessage(m),
    );
    void (first ?? this.api.book(this.symbol))
      .then((snap) => {
        if (this.closed || this.book.state !== "syncing" || this.book.lastId > 0) return;
        this.book.onSnapshot({ u: snap.seq, bids: snap.bids, asks: snap.asks });
        this.schedule();
      })
      .catch(() => {});
    this.unstatus = this.socket.onStatus((s) => {
      if (s === "closed") {
        this.book.reset();
        this.schedule();
      } else if (s === "open") this.fallback();
    });
    this.fallback();
  }

  stop(): void {
    this.closed = true;
    this.unsub?.();
    this.unstatus?.();
    if (this.timer !== null) clearTimeout(this.timer);
    if (this.frame !== 0) cancelAnimationFrame(this.frame);
  }

  private onMessage(m: Record<string, unknown>): void {
    if (m.type === "snapshot") {
      const out = this.book.onSnapshot(m as unknown as Snapshot);
      if (out === "gap") void this.resync();
    } else if (m.type === "diff") {
      const out = this.book.onDiff(m as unknown as Diff);
      if (out === "gap") {
        this.resyncs += 1;
        void this.resync();
      }
      if (out !== "applied") return;
    }
    this.schedule();
  }

  /** No WS snapshot soon after subscribing (distributed mode): take the REST one. */
  private fallback(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      if (this.book.state === "syncing") void this.resync();
    }, 800);
  }

  private async resync(): Promise<void> {
    if (this.fetching || this.closed) return;
    this.fetching = true;
    try {
      for (let i = 0; i < 5 && this.book.state === "syncing" && !this.closed; i++) {
        const snap = await this.api.book(this.symbol);
        if (this.closed) return;
        const out = this.book.onSnapshot({ u: snap.seq, bids: snap.bids, asks: snap.asks });
        if (out === "applied") break;
        await new Promise((r) => setTimeout(r, 200));
      }
    } catch {
      // the socket's reconnect will bring us back here
    } finally {
      this.fetching = false;
      this.schedule();
    }
  }

  private schedule(): void {
    if (this.frame !== 0 || this.closed) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.redraw();
    });
  }
}
