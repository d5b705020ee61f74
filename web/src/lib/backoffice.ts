/**
 * The back office's alerts and fee tiers, framework-free so Vitest covers it: the
 * shapes of `GET /api/v1/admin/alerts` and `GET /api/v1/admin/fees`, an alert's age in
 * words, the order alerts are shown in, and the checks of a fee form before the
 * request (the server checks again and answers `invalid_fee_rate` / `invalid_tier`).
 */

export type Severity = "info" | "warning" | "critical";

/** One operator alert (`GET /api/v1/admin/alerts`). */
export interface Alert {
  id: number;
  kind: string;
  severity: Severity;
  message: string;
  details: Record<string, string | number | boolean | null>;
  created_at: number;
  last_seen_at: number;
  /** How many times it was raised while open. */
  count: number;
  status: "open" | "acknowledged";
  acknowledged_by: number | null;
  acknowledged_at: number | null;
}

export interface AlertPage {
  items: Alert[];
  /** Pass as `before` for the next (older) page; null on the last page. */
  next_before: number | null;
  /** Open alerts, whatever the filter: the nav badge. */
  open_count: number;
}

/** One fee tier (`GET /api/v1/admin/fees`): rates in basis points, the users on it. */
export interface FeeTier {
  tier: number;
  maker_bps: number;
  taker_bps: number;
  users: number[];
}

export const MAX_BPS = 10_000;
export const MAX_TIER = 100;

/** "just now", "42 s", "5 min", "3 h", "2 d": how long ago `at` was. */
export function ageText(at: number, now: number): string {
  const s = Math.max(0, Math.floor((now - at) / 1000));
  if (s < 5) return "just now";
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

const RANK: Record<Severity, number> = { critical: 0, warning: 1, info: 2 };

/** Open alerts first, then the most severe, then the newest. */
export function sortAlerts(alerts: Alert[]): Alert[] {
  return [...alerts].sort(
    (a, b) =>
      Number(a.status !== "open") - Number(b.status !== "open") ||
      (RANK[a.severity] ?? 3) - (RANK[b.severity] ?? 3) ||
      b.id - a.id,
  );
}

/** `key=value` pairs of an alert's details, keys sorted. */
export function detailsText(d: Record<string, unknown>): string {
  return Object.keys(d)
    .sort()
    .map((k) => `${k}=${typeof d[k] === "string" ? d[k] : JSON.stringify(d[k])}`)
    .join(" ");
}

export type Checked = { ok: true; value: number } | { ok: false; error: string };

/** A whole number from `min` to `max` typed in a form (no sign, no decimals). */
function wholeIn(text: string, min: number, max: number, what: string): Checked {
  const t = text.trim();
  if (!/^\d{1,6}$/.test(t)) return { ok: false, error: `${what}: a whole number from ${min} to ${max}` };
  const value = Number(t);
  if (value < min || value > max) {
    return { ok: false, error: `${what}: a whole number from ${min} to ${max}` };
  }
  return { ok: true, value };
}

/** A fee rate in basis points: 0..10000 (100 %). */
export const checkBps = (text: string, what = "rate"): Checked => wholeIn(text, 0, MAX_BPS, what);

/** A tier number: 0..100. */
export const checkTier = (text: string): Checked => wholeIn(text, 0, MAX_TIER, "tier");

/** Basis points as a percentage: 10 -> "0.10%", 0 -> "0%", 25 -> "0.25%". */
export function bpsPercent(bps: number): string {
  if (bps === 0) return "0%";
  const whole = Math.floor(bps / 100);
  const frac = String(bps % 100).padStart(2, "0");
  return `${whole}.${frac}%`;
}
