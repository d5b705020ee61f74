/**
 * Numbers as the screen shows them: per symbol precision (the decimals of the tick for
 * prices, of the lot for quantities), thousands separators, and a fixed width per column
 * so a book update never shifts the layout.
 *
 * Everything is string/BigInt based: the API's decimal strings are never parsed into a
 * float, so what is shown is exactly what the exchange holds.
 */
import { decimalsOf, fromUnits, parseDecimal, rescale } from "./decimal";
import type { Market } from "./types";

export const priceDecimals = (m: Market): number => decimalsOf(m.tick_size);
export const qtyDecimals = (m: Market): number => decimalsOf(m.lot_size);

function group(whole: string): string {
  return whole.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/** `text` with exactly `decimals` decimals (truncated, never rounded up) and thousands
 *  separators; "-" for a missing or malformed value. */
export function formatDecimal(text: string | null | undefined, decimals: number): string {
  if (text === null || text === undefined) return "-";
  const d = parseDecimal(text);
  if (d === null) return "-";
  const s = fromUnits(rescale(d, decimals), decimals);
  const neg = s.startsWith("-");
  const body = neg ? s.slice(1) : s;
  const [whole, frac] = body.split(".");
  return `${neg ? "-" : ""}${group(whole)}${frac !== undefined ? `.${frac}` : ""}`;
}

export const formatPrice = (text: string | null | undefined, m: Market): string =>
  formatDecimal(text, priceDecimals(m));

export const formatQty = (text: string | null | undefined, m: Market): string =>
  formatDecimal(text, qtyDecimals(m));

/** Percent change from `open` to `last`, two decimals, signed ("+1.25%", "-0.40%"). */
export function formatChangePct(
  last: string | null | undefined,
  open: string | null | undefined,
): string {
  if (last == null || open == null) return "0.00%";
  const l = parseDecimal(last);
  const o = parseDecimal(open);
  if (l === null || o === null || o.units === 0n) return "0.00%";
  const scale = Math.max(l.scale, o.scale);
  const lv = rescale(l, scale);
  const ov = rescale(o, scale);
  // hundredths of a percent, rounded half away from zero
  const num = (lv - ov) * 100_000n;
  const q = num / ov;
  const r = ((q < 0n ? -q : q) + 5n) / 10n;
  const sign = num < 0n ? "-" : "+";
  if (r === 0n) return "0.00%";
  return `${sign}${fromUnits(r, 2)}%`;
}

/** Large amounts shortened for the market list ("1.23M"), exact digits truncated. */
export function formatCompact(text: string | null | undefined): string {
  if (text === null || text === undefined) return "-";
  const d = parseDecimal(text);
  if (d === null) return "-";
  const whole = rescale(d, 0);
  const units: [bigint, string][] = [
    [1_000_000_000n, "B"],
    [1_000_000n, "M"],
    [1_000n, "K"],
  ];
  for (const [size, suffix] of units) {
    if (whole >= size) return `${fromUnits(rescale(d, 2) / size, 2)}${suffix}`;
  }
  return formatDecimal(text, Math.min(d.scale, 2));
}

/** A time of day in UTC, HH:MM:SS (the exchange's clock is UTC; so are candles). */
export function formatTime(ms: number): string {
  return new Date(ms).toISOString().slice(11, 19);
}

/** Date and time in UTC for history tables. */
export function formatDateTime(ms: number): string {
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}
