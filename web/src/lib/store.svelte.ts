/**
 * The screen's state: markets and tickers, the session, the user's balances, orders and
 * fills, recent trades, the connection status. One instance (`app`) shared by every
 * component; Svelte's runes make each field reactive, so only what reads a changed
 * field redraws.
 *
 * Private data (balances, orders, fills) is re-read from REST when the WebSocket says
 * something changed (debounced): the REST answers are the exchange's own shapes and
 * wait for the user's last command to be projected, so the screen never shows a state
 * the server would not.
 */
import { type Account, Api, ApiError, loadSession, saveSession, type Session } from "./api";
import type { RestBook } from "./bookfeed";
import { Socket, type Status } from "./socket";
import type { Balance, FeeRates, Fill, Market, Order, Ticker, Trade } from "./types";

export type Route =
  | { page: "trade"; symbol: string | null }
  | {
      page:
        | "login"
        | "register"
        | "verify-email"
        | "security"
        | "api-keys"
        | "admin"
        | "deposit"
        | "withdraw"
        | "margin"
        | "kyc";
    };

export type Theme = "light" | "dark";

type PrivatePart = "balances" | "orders" | "fills";

export interface Notice {
  kind: "ok" | "error";
  text: string;
  n: number;
}

function parseRoute(path: string): Route {
  if (path === "/login") return { page: "login" };
  if (path === "/register") return { page: "register" };
  if (path === "/verify-email") return { page: "verify-email" };
  if (path === "/account/security") return { page: "security" };
  if (path === "/account/api-keys") return { page: "api-keys" };
  if (path === "/account/deposit") return { page: "deposit" };
  if (path === "/account/withdraw") return { page: "withdraw" };
  if (path === "/account/margin") return { page: "margin" };
  if (path === "/account/kyc") return { page: "kyc" };
  if (path === "/admin" || path.startsWith("/admin/")) return { page: "admin" };
  const m = /^\/trade\/([A-Za-z0-9_]+-[A-Za-z0-9_]+)$/.exec(path);
  return { page: "trade", symbol: m ? m[1].toUpperCase() : null };
}

function initialTheme(): Theme {
  try {
    const saved = localStorage.getItem("tradewind.theme");
    if (saved === "light" || saved === "dark") return saved;
  } catch {
    // no storage
  }
  return window.matchMedia?.("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

class AppState {
  readonly api = new Api();
  readonly socket = new Socket();

  route = $state<Route>(parseRoute(window.location.pathname));
  theme = $state<Theme>(initialTheme());
  markets = $state<Market[]>([]);
  tickers = $state<Record<string, Ticker>>({});
  symbol = $state("BTC-USDT");
  session = $state<Session | null>(loadSession());
  /** The signed-in account (email verified? 2FA on?); null until read or when signed out. */
  account = $state<Account | null>(null);
  /** The staff role (support, compliance, admin), or null: shows the admin console. */
  staffRole = $state<string | null>(null);
  demo = $state(false);
  /** The rates the order form previews: the user's own tier's when signed in and the
   *  server says it (`GET /api/v1/fees/mine`), else the base tier's. */
  fees = $state<FeeRates | null>(null);
  /** Open operator alerts (staff only; the header's Admin link shows it), or null. */
  openAlerts = $state<number | null>(null);
  private alertsTimer: ReturnType<typeof setInterval> | null = null;
  /** The signed-in user's fee tier, or null (signed out, or a server that does not say). */
  feeTier = $state<number | null>(null);
  status = $state<Status>("connecting");
  everConnected = $state(false);
  balances = $state<Balance[]>([]);
  openOrders = $state<Order[]>([]);
  history = $state<Order[]>([]);
  fills = $state<Fill[]>([]);
  trades = $state<Trade[]>([]);
  notice = $state<Notice | null>(null);
  /** Set by a click on a book price: the order form takes it. */
  picked = $state<{ price: string; n: number } | null>(null);

  private refreshTimer: ReturnType<typeof setTimeout> | null = null;
  private prefetched: { symbol: string; book: Promise<RestBook> } | null = null;
  private privateUnsubs: (() => void)[] = [];
  private tradeUnsub: (() => void) | null = null;
  private noticeN = 0;

  /** The REST book fetched at start for `symbol`, once (later books fetch their own). */
  takePrefetchedBook(symbol: string): Promise<RestBook> | undefined {
    const p = this.prefetched;
    this.prefetched = null;
    return p !== null && p.symbol === symbol ? p.book : undefined;
  }

  get market(): Market | undefined {
    return this.markets.find((m) => m.symbol === this.symbol);
  }

  async start(): Promise<void> {
    this.applyTheme();
    window.addEventListener("popstate", () => {
      this.route = parseRoute(window.location.pathname);
      this.syncSymbol();
    });
    this.socket.onStatus((s) => {
      this.status = s;
      if (s === "open") {
        if (this.everConnected) {
          // a reconnect: catch up what the outage hid
          if (this.session) this.refreshPrivate();
          void this.loadTrades();
        }
        this.everConnected = true;
      }
    });
    this.socket.onAuthFailed(() => {
      if (this.session !== null) this.sessionEnded();
    });
    if (this.session) {
      this.api.token = this.session.token;
      this.socket.setToken(this.session.token);
    }
    this.socket.start();
    // the book of the market in the address, fetched with the markets, not after them
    const r = this.route;
    const first = r.page === "trade" && r.symbol ? r.symbol : this.symbol;
    this.prefetched = { symbol: first, book: this.api.book(first) };
    this.prefetched.book.catch(() => {});
    void this.loadConfig();
    this.loadBaseFees();
    try {
      this.markets = await this.api.markets();
    } catch (e) {
      this.notify("error", e instanceof ApiError ? e.message : "cannot load markets");
      return;
    }
    for (const m of this.markets) {
      void this.api.ticker(m.symbol).then((t) => (this.tickers[m.symbol] = t)).catch(() => {});
      this.socket.subscribe({ channel: "ticker", symbol: m.symbol }, (msg) => {
        const prev = this.tickers[m.symbol];
        this.tickers[m.symbol] = { ...prev, ...(msg.data as Ticker) };
      });
    }
    this.syncSymbol();
    if (this.session) this.startPrivate();
  }

  private async loadConfig(): Promise<void> {
    try {
      const res = await fetch("/config.json");
      if (res.ok) this.demo = ((await res.json()) as { demo?: boolean }).demo === true;
    } catch {
      this.demo = false;
    }
  }

  private syncSymbol(): void {
    const r = this.route;
    const wanted = r.page === "trade" && r.symbol ? r.symbol : this.symbol;
    const known = this.markets.some((m) => m.symbol === wanted);
    this.setSymbol(known ? wanted : (this.markets[0]?.symbol ?? wanted), false);
  }

  navigate(path: string): void {
    if (window.location.pathname !== path) history.pushState(null, "", path);
    this.route = parseRoute(path);
    if (this.route.page === "trade") this.syncSymbol();
  }

  setSymbol(symbol: string, push = true): void {
    if (push && this.route.page === "trade") {
      history.pushState(null, "", `/trade/${symbol}`);
      this.route = { page: "trade", symbol };
    }
    if (symbol === this.symbol && this.tradeUnsub !== null) return;
    this.symbol = symbol;
    this.trades = [];
    this.tradeUnsub?.();
    this.tradeUnsub = this.socket.subscribe({ channel: "trades", symbol }, (msg) => {
      const rows = (msg.data as { seq: number; idx: number; ts: number; price: string; qty: string; side: "buy" | "sell" }[])
        .map((t) => ({ id: `${t.seq}-${t.idx}`, price: t.price, quantity: t.qty, side: t.side, time: t.ts }))
        .reverse();
      this.trades = [...rows, ...this.trades].slice(0, 50);
    });
    void this.loadTrades();
  }

  private async loadTrades(): Promise<void> {
    const symbol = this.symbol;
    try {
      const page = await this.api.trades(symbol, 50);
      if (symbol !== this.symbol) return;
      const seen = new Set(this.trades.map((t) => t.id));
      const merged = [...this.trades, ...page.items.filter((t) => !seen.has(t.id))];
      merged.sort((a, b) => b.time - a.time || (a.id < b.id ? 1 : -1));
      this.trades = merged.slice(0, 50);
    } catch {
      // shown empty; the socket keeps adding
    }
  }

  setTheme(theme: Theme): void {
    this.theme = theme;
    try {
      localStorage.setItem("tradewind.theme", theme);
    } catch {
      // no storage
    }
    this.applyTheme();
  }

  private applyTheme(): void {
    document.documentElement.dataset.theme = this.theme;
  }

  notify(kind: Notice["kind"], text: string): void {
    this.noticeN += 1;
    this.notice = { kind, text, n: this.noticeN };
  }

  // -- session

  signedIn(s: Session): void {
    this.session = s;
    saveSession(s);
    this.api.token = s.token;
    this.socket.setToken(s.token);
    this.startPrivate();
  }

  /** The current session was revoked elsewhere or expired: forget it. */
  sessionEnded(): void {
    this.dropSession();
    this.notify("error", "your session ended: log in again");
  }

  async signOut(): Promise<void> {
    try {
      await this.api.logout();
    } catch {
      // the session may have expired already
    }
    this.dropSession();
  }

  private dropSession(): void {
    for (const u of this.privateUnsubs) u();
    this.privateUnsubs = [];
    this.session = null;
    this.account = null;
    this.staffRole = null;
    this.openAlerts = null;
    if (this.alertsTimer !== null) clearInterval(this.alertsTimer);
    this.alertsTimer = null;
    if (this.feeTier !== null) {
      this.feeTier = null;
      this.loadBaseFees();
    }
    saveSession(null);
    this.api.token = null;
    this.socket.setToken(null);
    this.balances = [];
    this.openOrders = [];
    this.history = [];
    this.fills = [];
  }

  /** Read the account's state; a server without `GET /api/v1/account` has no email
   *  verification, so the account counts as verified. */
  async loadAccount(): Promise<void> {
    if (this.session === null) return;
    try {
      this.account = await this.api.account();
    } catch (e) {
      if (e instanceof ApiError && (e.status === 404 || e.status === 405)) {
        this.account = {
          user_id: 0,
          email: this.session.email,
          email_verified: true,
          totp_enabled: false,
        };
      }
    }
  }

  private async loadStaffRole(): Promise<void> {
    try {
      this.staffRole = (await this.api.adminMe()).role;
      void this.countAlerts();
      if (this.alertsTimer === null) this.alertsTimer = setInterval(() => void this.countAlerts(), 30_000);
    } catch {
      this.staffRole = null; // 403 role_required (or no admin API): not staff
    }
  }

  /** The base tier's rates, unless the user's own are known already. */
  private loadBaseFees(): void {
    void this.api.fees().then(
      (f) => {
        if (this.feeTier === null) this.fees = f;
      },
      () => {
        if (this.feeTier === null) this.fees = null;
      },
    );
  }

  /** The user's own tier and rates; a server without the route leaves the base ones. */
  async loadMyFees(): Promise<void> {
    try {
      const mine = await this.api.myFees();
      if (this.session === null) return;
      this.feeTier = mine.tier;
      this.fees = { maker_bps: mine.maker_bps, taker_bps: mine.taker_bps };
    } catch {
      // 404 (older server) or 503 fees_unavailable: keep the base tier's rates
    }
  }

  /** The open alerts' count, for the badge on the header's Admin link. */
  async countAlerts(): Promise<void> {
    try {
      const page = await this.api.adminAlerts("open");
      if (this.staffRole !== null) this.openAlerts = page.open_count;
    } catch {
      // a role without the alerts API or a lost connection: keep the last figure
    }
  }

  private startPrivate(): void {
    void this.loadMyFees();
    void this.loadAccount();
    void this.loadStaffRole();
    for (const u of this.privateUnsubs) u();
    this.privateUnsubs = [
      this.socket.subscribe({ channel: "orders" }, () => this.refreshPrivate(120, ["orders"])),
      this.socket.subscribe({ channel: "fills" }, () => this.refreshPrivate(120, ["fills"])),
      this.socket.subscribe({ channel: "balances" }, (msg) => this.onBalances(msg)),
    ];
    this.refreshPrivate(0);
  }

  /** The balances message carries the new figures of the assets a command touched
   *  (when the server can look them up): take them as they are, else re-read. */
  private onBalances(msg: Record<string, unknown>): void {
    const data = msg.data as { balances?: Partial<Balance>[] } | undefined;
    const rows = data?.balances ?? [];
    if (rows.length === 0 || rows.some((b) => b.available == null || b.locked == null)) {
      this.refreshPrivate(120, ["balances"]);
      return;
    }
    const next = [...this.balances];
    for (const b of rows as Balance[]) {
      const i = next.findIndex((x) => x.asset === b.asset);
      if (i >= 0) next[i] = b;
      else next.push(b);
    }
    this.balances = next.sort((x, y) => (x.asset < y.asset ? -1 : 1));
  }

  private pending = new Set<PrivatePart>();

  /** Re-read balances, orders and/or fills soon (a burst of events: one read each). */
  refreshPrivate(delay = 120, parts: PrivatePart[] = ["balances", "orders", "fills"]): void {
    for (const p of parts) this.pending.add(p);
    if (this.refreshTimer !== null) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = null;
      const todo = this.pending;
      this.pending = new Set();
      void this.loadPrivate(todo);
    }, delay);
  }

  private async loadPrivate(parts: Set<PrivatePart>): Promise<void> {
    if (this.session === null) return;
    try {
      const jobs: Promise<void>[] = [];
      if (parts.has("balances")) {
        jobs.push(this.api.balances().then((b) => void (this.balances = b)));
      }
      if (parts.has("orders")) {
        jobs.push(this.api.openOrders().then((p) => void (this.openOrders = p.items)));
        jobs.push(this.api.orderHistory().then((p) => void (this.history = p.items)));
      }
      if (parts.has("fills")) {
        jobs.push(this.api.fills().then((p) => void (this.fills = p.items)));
      }
      await Promise.all(jobs);
    } catch (e) {
      if (e instanceof ApiError && e.status === 401) {
        this.dropSession();
        this.notify("error", "your session ended: log in again");
      }
    }
  }

  available(asset: string): string | null {
    const b = this.balances.find((x) => x.asset === asset);
    return this.session === null ? null : (b?.available ?? "0");
  }
}

export const app = new AppState();
