/**
 * The REST client: JSON in and out, `{code, message}` errors turned into `ApiError`,
 * the session token as `Authorization: Bearer`. Same origin as the page (the Python app
 * serves both), so no CORS and no base URL to configure.
 */
import type {
  Balance,
  Candle,
  FeeRates,
  Fill,
  Market,
  Order,
  Page,
  Ticker,
  Trade,
} from "./types";
import type { DepositAddress, FundingNetwork } from "./funding";
import type { FiatInstructions, FiatLine } from "./fiat";
import { type DepositFilters, type DepositRecord, depositQuery } from "./deposits";
import type { AddressEntry, RulesAnswer, Withdrawal } from "./withdraw";
import type {
  MarginAccount,
  MarginConfig,
  MarginRecord,
  MarginWallet,
  WalletKind,
} from "./margin";
import type { Alert, AlertPage, FeeTier } from "./backoffice";
import type { KycStatus, MyDocument } from "./kyc";

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly filter?: string,
  ) {
    super(message);
  }
}

export interface Session {
  token: string;
  email: string;
  expiresAt: number;
}

/** `GET /api/v1/account` (servers without it: the page assumes a verified account). */
export interface Account {
  user_id: number;
  email: string;
  email_verified: boolean;
  totp_enabled: boolean;
  recovery_codes_left?: number;
  anti_phishing_code?: string | null;
}

export interface ApiKeyInfo {
  key_id: string;
  label: string;
  permissions: string[];
  ip_allowlist: string[] | null;
  created_at: number;
}

export interface AdminUser {
  id: number;
  email: string;
  status: string;
  created_at: number;
  role: string;
  frozen: boolean;
  frozen_reason: string | null;
}

export interface Approval {
  id: number;
  kind: string;
  user_id: number;
  details: Record<string, unknown>;
  requested_by: number;
  requested_at: number;
  status: string;
  decided_by: number | null;
  decided_at: number | null;
  result: string | null;
}

export interface AuditEntry {
  seq: number;
  time: number;
  actor_id: number | null;
  actor_role: string | null;
  action: string;
  user_id: number | null;
  details: Record<string, unknown>;
  ip: string | null;
  hash: string;
}

/** A KYC document as the review queue lists it (`GET /api/v1/admin/kyc/documents`). */
export interface KycDocument {
  id: number;
  kind: string;
  content_type: string;
  size: number;
  sha256: string;
  status: string;
  uploaded_at: number;
  reviewed_at: number | null;
  note: string | null;
  user_id: number;
  reviewed_by: number | null;
}

export interface SessionInfo {
  id: number;
  ip: string | null;
  device: string | null;
  created_at: number;
  last_seen_at: number;
  expires_at: number;
  current: boolean;
}

export interface LoginRequest {
  email: string;
  password: string;
  /** The 2FA code, once the server asks for one. */
  totp?: string;
}

export class Api {
  token: string | null = null;

  /** Staff with 2FA on: the current code, sent as `TW-TOTP` with back-office calls. */
  staffCode: string | null = null;

  /** `extra`: headers of one call (`Idempotency-Key`, the user's `TW-TOTP`); a `Blob`
   *  body is sent as it is, with its own type (a statement file). */
  async request<T>(
    method: string,
    path: string,
    body?: unknown,
    extra: Record<string, string> = {},
  ): Promise<T> {
    const headers: Record<string, string> = { Accept: "application/json", ...extra };
    if (this.staffCode && path.startsWith("/api/v1/admin/") && method !== "GET") {
      headers["TW-TOTP"] = this.staffCode;
    }
    const raw = body instanceof Blob;
    if (body !== undefined) headers["Content-Type"] = raw ? body.type : "application/json";
    if (this.token !== null) headers.Authorization = `Bearer ${this.token}`;
    let res: Response;
    try {
      res = await fetch(path, {
        method,
        headers,
        body: body === undefined ? undefined : raw ? body : JSON.stringify(body),
      });
    } catch {
      throw new ApiError(0, "network_error", "the exchange cannot be reached");
    }
    if (res.status === 204) return undefined as T;
    let data: unknown = null;
    try {
      data = await res.json();
    } catch {
      data = null;
    }
    if (!res.ok) {
      const e = (data ?? {}) as { code?: string; message?: string; filter?: string };
      throw new ApiError(
        res.status,
        e.code ?? "error",
        e.message ?? `the request failed (${res.status})`,
        e.filter,
      );
    }
    return data as T;
  }

  // -- account
  register = (email: string, password: string) =>
    this.request<{ user_id: number }>("POST", "/api/v1/auth/register", { email, password });
  login = (req: LoginRequest) =>
    this.request<{ token: string; expires_at: number }>("POST", "/api/v1/auth/login", req);
  logout = () => this.request<void>("POST", "/api/v1/auth/logout");
  account = () => this.request<Account>("GET", "/api/v1/account");
  verifyEmail = (token: string) =>
    this.request<{ user_id: number; email_verified: boolean }>(
      "POST",
      "/api/v1/auth/verify-email",
      { token },
    );
  totpSetup = () =>
    this.request<{ secret: string; otpauth_uri: string; qr_svg: string }>(
      "POST",
      "/api/v1/account/2fa/setup",
    );
  totpEnable = (code: string) =>
    this.request<{ recovery_codes: string[] }>("POST", "/api/v1/account/2fa/enable", { code });
  totpDisable = (code: string) =>
    this.request<void>("POST", "/api/v1/account/2fa/disable", { code });
  setAntiPhishingCode = (code: string | null, totp?: string) =>
    this.request<void>(
      "PUT",
      "/api/v1/account/anti-phishing-code",
      totp ? { code, totp } : { code },
    );
  apiKeys = () => this.request<ApiKeyInfo[]>("GET", "/api/v1/api-keys");
  createApiKey = (body: {
    label: string;
    permissions: string[];
    ip_allowlist?: string[];
    totp?: string;
  }) => this.request<ApiKeyInfo & { secret: string }>("POST", "/api/v1/api-keys", body);
  revokeApiKey = (keyId: string) =>
    this.request<void>("DELETE", `/api/v1/api-keys/${encodeURIComponent(keyId)}`);
  sessions = () => this.request<SessionInfo[]>("GET", "/api/v1/sessions");

  // -- back office (staff roles only; everyone else gets 403 role_required)
  adminMe = () => this.request<{ user_id: number; role: string }>("GET", "/api/v1/admin/me");
  adminUsers = (email?: string) =>
    this.request<{ items: AdminUser[]; next_after: number | null }>(
      "GET",
      `/api/v1/admin/users?limit=100${email ? `&email=${encodeURIComponent(email)}` : ""}`,
    );
  adminSetRole = (id: number, role: string) =>
    this.request<AdminUser>("PUT", `/api/v1/admin/users/${id}/role`, { role });
  adminFreeze = (id: number, reason: string) =>
    this.request<unknown>("POST", `/api/v1/admin/users/${id}/freeze`, { reason });
  adminUnfreeze = (id: number, reason: string) =>
    this.request<unknown>("POST", `/api/v1/admin/users/${id}/unfreeze`, { reason });
  adminTwoFactorReset = (id: number, reason: string) =>
    this.request<Approval>("POST", `/api/v1/admin/users/${id}/two-factor-reset`, { reason });
  adminAdjust = (body: { user_id: number; asset: string; amount: string; reason: string }) =>
    this.request<Approval>("POST", "/api/v1/admin/adjustments", body);
  adminApprovals = (status = "pending") =>
    this.request<Approval[]>("GET", `/api/v1/admin/approvals?status=${status}`);
  adminDecide = (id: number, verb: "approve" | "reject") =>
    this.request<Approval>("POST", `/api/v1/admin/approvals/${id}/${verb}`);
  adminAudit = () => this.request<AuditEntry[]>("GET", "/api/v1/admin/audit?limit=200");
  adminAuditVerify = () =>
    this.request<{ ok: boolean; entries: number; head_seq: number }>(
      "GET",
      "/api/v1/admin/audit/verify",
    );
  revokeSession = (id: number) => this.request<void>("DELETE", `/api/v1/sessions/${id}`);
  resendVerification = () =>
    this.request<{ sent: boolean }>("POST", "/api/v1/auth/resend-verification");

  // -- market data
  fundingNetworks = () => this.request<FundingNetwork[]>("GET", "/api/v1/funding/networks");
  depositAddress = (asset: string, network: string) =>
    this.request<DepositAddress>(
      "GET",
      `/api/v1/deposits/address?asset=${encodeURIComponent(asset)}&network=${encodeURIComponent(network)}`,
    );
  changePassword = (body: { current_password: string; new_password: string; totp?: string }) =>
    this.request<{ revoked_sessions: number }>("POST", "/api/v1/account/password", body);
  changeEmail = (body: { new_email: string; password: string; totp?: string }) =>
    this.request<unknown>("POST", "/api/v1/account/email", body);
  kycQueue = () => this.request<KycDocument[]>("GET", "/api/v1/admin/kyc/documents?limit=200");
  kycApprove = (id: number, level: number, note: string) =>
    this.request<KycDocument>("POST", `/api/v1/admin/kyc/documents/${id}/approve`, {
      level,
      note,
    });
  kycReject = (id: number, note: string) =>
    this.request<KycDocument>("POST", `/api/v1/admin/kyc/documents/${id}/reject`, { note });
  adminSetHalted = (symbol: string, halt: boolean, reason: string) =>
    this.request<{ symbol: string; status: string; previous: string }>(
      "POST",
      `/api/v1/admin/markets/${encodeURIComponent(symbol)}/${halt ? "halt" : "resume"}`,
      { reason },
    );

  // -- deposit history (docs/funding.md "Deposit history")
  deposits = (f: DepositFilters = {}) =>
    this.request<Page<DepositRecord>>("GET", `/api/v1/deposits${depositQuery(f)}`);
  adminDeposits = (f: DepositFilters = {}) =>
    this.request<Page<DepositRecord>>("GET", `/api/v1/admin/deposits${depositQuery(f)}`);

  // -- withdrawals (docs/funding.md): the 2FA code travels as TW-TOTP
  withdrawals = (cursor?: string) =>
    this.request<Page<Withdrawal>>(
      "GET",
      `/api/v1/withdrawals?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );
  withdrawal = (id: number) => this.request<Withdrawal>("GET", `/api/v1/withdrawals/${id}`);
  requestWithdrawal = (
    body: { asset: string; network: string; address: string; amount: string },
    idempotencyKey: string,
    totp?: string,
  ) =>
    this.request<Withdrawal>("POST", "/api/v1/withdrawals", body, {
      "Idempotency-Key": idempotencyKey,
      ...(totp ? { "TW-TOTP": totp } : {}),
    });
  cancelWithdrawal = (id: number) =>
    this.request<Withdrawal>("POST", `/api/v1/withdrawals/${id}/cancel`);
  withdrawalAddresses = () => this.request<AddressEntry[]>("GET", "/api/v1/withdrawals/addresses");
  withdrawalRules = () => this.request<RulesAnswer>("GET", "/api/v1/withdrawals/rules");
  addWithdrawalAddress = (body: { network: string; address: string; label: string }, totp?: string) =>
    this.request<AddressEntry>(
      "POST",
      "/api/v1/withdrawals/addresses",
      body,
      totp ? { "TW-TOTP": totp } : {},
    );
  removeWithdrawalAddress = (id: number) =>
    this.request<void>("DELETE", `/api/v1/withdrawals/addresses/${id}`);
  adminWithdrawals = (status: string) =>
    this.request<Withdrawal[]>(
      "GET",
      `/api/v1/admin/withdrawals?status=${encodeURIComponent(status)}&limit=200`,
    );
  adminApproveWithdrawal = (id: number) =>
    this.request<Withdrawal>("POST", `/api/v1/admin/withdrawals/${id}/approve`);
  adminRejectWithdrawal = (id: number, reason: string) =>
    this.request<Withdrawal>("POST", `/api/v1/admin/withdrawals/${id}/reject`, { reason });

  // -- fiat (docs/fiat.md)
  fiatInstructions = (currency: string) =>
    this.request<FiatInstructions>(
      "GET",
      `/api/v1/fiat/deposit-instructions?currency=${encodeURIComponent(currency)}`,
    );
  adminFiatLines = (status: string) =>
    this.request<{ items: FiatLine[]; next_after: number | null }>(
      "GET",
      `/api/v1/admin/fiat/lines?status=${encodeURIComponent(status)}&limit=200`,
    );
  adminFiatAssign = (id: number, userId: number, note: string) =>
    this.request<FiatLine>("POST", `/api/v1/admin/fiat/lines/${id}/assign`, {
      user_id: userId,
      note,
    });
  adminFiatReturn = (id: number, note: string) =>
    this.request<FiatLine>("POST", `/api/v1/admin/fiat/lines/${id}/return`, { note });
  adminFiatImport = (file: Blob) =>
    this.request<Record<string, unknown>>("POST", "/api/v1/admin/fiat/statements", file);

  // -- margin (docs/margin.md "Using margin")
  marginConfig = () => this.request<MarginConfig>("GET", "/api/v1/margin/config");
  marginAccount = () => this.request<MarginAccount>("GET", "/api/v1/margin/account");
  marginTransfer = (body: {
    asset: string;
    amount: string;
    direction: "in" | "out";
    wallet: WalletKind;
    symbol?: string;
  }) => this.request<{ seq: number; wallet: MarginWallet | null }>("POST", "/api/v1/margin/transfer", body);
  marginLoan = (
    what: "borrow" | "repay",
    body: { asset: string; amount: string; wallet: WalletKind; symbol?: string },
  ) => this.request<{ seq: number; wallet: MarginWallet | null }>("POST", `/api/v1/margin/${what}`, body);
  marginMax = (what: "borrowable" | "transferable", asset: string, wallet: WalletKind, symbol: string | null) =>
    this.request<{ amount: string }>(
      "GET",
      `/api/v1/margin/max-${what}?asset=${encodeURIComponent(asset)}&wallet=${wallet}` +
        (symbol ? `&symbol=${encodeURIComponent(symbol)}` : ""),
    );
  marginOrders = (wallet: WalletKind, symbol: string | null, openOnly = true) =>
    this.request<Page<Order>>(
      "GET",
      `/api/v1/margin/orders?wallet=${wallet}&limit=100${openOnly ? "&open=true" : ""}` +
        (symbol ? `&symbol=${encodeURIComponent(symbol)}` : ""),
    );
  marginCancel = (id: number) => this.request<Order>("DELETE", `/api/v1/margin/orders/${id}`);
  marginHistory = (what: "interest" | "loans" | "liquidations" | "transfers", cursor?: string) =>
    this.request<{ items: MarginRecord[]; next_cursor: string | null }>(
      "GET",
      `/api/v1/margin/${what}?limit=50${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`,
    );

  markets = () => this.request<Market[]>("GET", "/api/v1/markets");
  ticker = (s: string) => this.request<Ticker>("GET", `/api/v1/markets/${s}/ticker`);
  book = (s: string, depth = 1000) =>
    this.request<{ seq: number; bids: [string, string][]; asks: [string, string][] }>(
      "GET",
      `/api/v1/markets/${s}/book?depth=${depth}`,
    );
  trades = (s: string, limit = 50) =>
    this.request<Page<Trade>>("GET", `/api/v1/markets/${s}/trades?limit=${limit}`);
  candles = (s: string, interval: string, limit = 500) =>
    this.request<Candle[]>(
      "GET",
      `/api/v1/markets/${s}/candles?interval=${interval}&limit=${limit}`,
    );
  fees = () => this.request<FeeRates>("GET", "/api/v1/fees");
  /** The caller's own tier and rates (an admin may move a user off the base tier). */
  myFees = () => this.request<FeeRates & { tier: number }>("GET", "/api/v1/fees/mine");

  // -- back office: alerts and fee tiers (lib/backoffice.ts); the user's KYC (lib/kyc.ts)
  adminAlerts = (status: "open" | "acknowledged" | "all", before?: number) =>
    this.request<AlertPage>(
      "GET",
      `/api/v1/admin/alerts?status=${status}&limit=50${before ? `&before=${before}` : ""}`,
    );
  adminAcknowledge = (id: number) =>
    this.request<Alert>("POST", `/api/v1/admin/alerts/${id}/acknowledge`);
  adminFees = () => this.request<{ tiers: FeeTier[] }>("GET", "/api/v1/admin/fees");
  adminSetFees = (tier: number, maker_bps: number, taker_bps: number) =>
    this.request<FeeTier>("PUT", `/api/v1/admin/fees/tiers/${tier}`, { maker_bps, taker_bps });
  adminSetUserTier = (id: number, tier: number) =>
    this.request<{ user_id: number; tier: number; previous: number }>(
      "PUT",
      `/api/v1/admin/users/${id}/tier`,
      { tier },
    );
  kyc = () => this.request<KycStatus>("GET", "/api/v1/kyc");
  kycUpload = (kind: string, file: Blob) =>
    this.request<MyDocument>("POST", `/api/v1/kyc/documents?kind=${encodeURIComponent(kind)}`, file);

  // -- trading
  balances = () => this.request<Balance[]>("GET", "/api/v1/balances");
  openOrders = (symbol?: string) =>
    this.request<Page<Order>>(
      "GET",
      `/api/v1/orders?status=open&limit=200${symbol ? `&symbol=${symbol}` : ""}`,
    );
  orderHistory = () =>
    this.request<Page<Order>>("GET", "/api/v1/orders?status=filled,cancelled&limit=100");
  fills = () => this.request<Page<Fill>>("GET", "/api/v1/fills?limit=100");
  placeOrder = (body: Record<string, unknown>) =>
    this.request<Order>("POST", "/api/v1/orders", body);
  cancelOrder = (id: number) => this.request<Order>("DELETE", `/api/v1/orders/${id}`);
  cancelAll = (symbol?: string) =>
    this.request<{ cancelled: number[] }>(
      "DELETE",
      `/api/v1/orders${symbol ? `?symbol=${symbol}` : ""}`,
    );
  faucet = (asset: string, amount: string) =>
    this.request<{ asset: string; amount: string; available: string }>(
      "POST",
      "/api/v1/demo/faucet",
      { asset, amount },
    );
}

/** Error codes the login answers when it needs a 2FA code (the step after the password). */
export const SECOND_FACTOR_CODES = new Set([
  "totp_required",
  "2fa_required",
  "two_factor_required",
]);

const SESSION_KEY = "tradewind.session";

export function loadSession(now: number = Date.now()): Session | null {
  try {
    const raw = localStorage.getItem(SESSION_KEY);
    if (raw === null) return null;
    const s = JSON.parse(raw) as Session;
    return s.expiresAt > now ? s : null;
  } catch {
    return null;
  }
}

export function saveSession(s: Session | null): void {
  try {
    if (s === null) localStorage.removeItem(SESSION_KEY);
    else localStorage.setItem(SESSION_KEY, JSON.stringify(s));
  } catch {
    // private browsing: the session lasts as long as the page
  }
}
