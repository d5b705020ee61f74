/**
 * The WebSocket connection: one socket for every channel, reconnecting with backoff,
 * re-authenticating and re-subscribing after each reconnect, answering the server's
 * pings. Listeners get the data messages of their channel; `onStatus` drives the
 * reconnect banner and tells the book to resync (a reconnect always loses messages).
 */

export type Status = "connecting" | "open" | "closed";

export interface Sub {
  channel: string;
  symbol?: string;
  interval?: string;
}

type Listener = (msg: Record<string, unknown>) => void;

/** The `id` of auth messages, echoed in the server's reply. */
const AUTH_ID = "auth";

const key = (s: Sub): string => `${s.channel}|${s.symbol ?? ""}|${s.interval ?? ""}`;

export class Socket {
  status: Status = "connecting";
  private ws: WebSocket | null = null;
  private subs = new Map<string, { sub: Sub; listeners: Set<Listener> }>();
  private statusListeners = new Set<(s: Status) => void>();
  private authFailedListeners = new Set<(code: string) => void>();
  private token: string | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private stopped = false;

  constructor(private readonly url: string = Socket.defaultUrl()) {}

  static defaultUrl(): string {
    const { protocol, host } = window.location;
    return `${protocol === "https:" ? "wss:" : "ws:"}//${host}/ws`;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer !== null) clearTimeout(this.timer);
    this.ws?.close(1000);
    this.ws = null;
  }

  onStatus(fn: (s: Status) => void): () => void {
    this.statusListeners.add(fn);
    return () => this.statusListeners.delete(fn);
  }

  /** Called when the server refuses the token (expired, revoked): the private channels
   *  are then silent, so the page must sign out rather than look live. */
  onAuthFailed(fn: (code: string) => void): () => void {
    this.authFailedListeners.add(fn);
    return () => this.authFailedListeners.delete(fn);
  }

  /** Authenticate (or, with null, drop the private channels by reconnecting). */
  setToken(token: string | null): void {
    if (token === this.token) return;
    const had = this.token !== null;
    this.token = token;
    if (this.ws?.readyState !== WebSocket.OPEN) return;
    if (token !== null && !had) this.send({ op: "auth", token, id: AUTH_ID });
    else this.ws.close(1000); // reconnects with the new identity
  }

  subscribe(sub: Sub, fn: Listener): () => void {
    const k = key(sub);
    let entry = this.subs.get(k);
    if (entry === undefined) {
      entry = { sub, listeners: new Set() };
      this.subs.set(k, entry);
      if (this.status === "open") this.send({ op: "subscribe", ...sub });
    }
    entry.listeners.add(fn);
    return () => {
      const e = this.subs.get(k);
      if (e === undefined) return;
      e.listeners.delete(fn);
      if (e.listeners.size === 0) {
        this.subs.delete(k);
        if (this.status === "open") this.send({ op: "unsubscribe", ...sub });
      }
    };
  }

  private setStatus(s: Status): void {
    this.status = s;
    for (const fn of this.statusListeners) fn(s);
  }

  private send(msg: object): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private open(): void {
    const ws = new WebSocket(this.url);
    this.ws = ws;
    ws.onopen = () => {
      this.attempt = 0;
      if (this.token !== null) this.send({ op: "auth", token: this.token, id: AUTH_ID });
      // books first: they are what the screen is slowest to show without
      const subs = [...this.subs.values()].map((e) => e.sub);
      subs.sort((x, y) => Number(y.channel === "book") - Number(x.channel === "book"));
      for (const sub of subs) this.send({ op: "subscribe", ...sub });
      this.setStatus("open");
    };
    ws.onmessage = (ev: MessageEvent<string>) => {
      let msg: Record<string, unknown>;
      try {
        msg = JSON.parse(ev.data) as Record<string, unknown>;
      } catch {
        return;
      }
      if (msg.op === "ping") {
        this.send({ op: "pong" });
        return;
      }
      if (msg.op === "error" && msg.id === AUTH_ID) {
        const code = typeof msg.code === "string" ? msg.code : "unauthorized";
        for (const fn of this.authFailedListeners) fn(code);
        return;
      }
      if (msg.op !== undefined) return; // other replies (subscribed, authenticated, error)
      const channel = msg.channel;
      if (typeof channel !== "string") return;
      const sub: Sub = { channel };
      if (typeof msg.symbol === "string") sub.symbol = msg.symbol;
      if (typeof msg.interval === "string") sub.interval = msg.interval;
      const entry = this.subs.get(key(sub));
      if (entry !== undefined) for (const fn of entry.listeners) fn(msg);
    };
    ws.onclose = () => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setStatus("closed");
      if (this.stopped) return;
      const delay = Math.min(500 * 2 ** this.attempt, 5000);
      this.attempt += 1;
      this.timer = setTimeout(() => {
        this.setStatus("connecting");
        this.open();
      }, delay);
    };
  }
}
