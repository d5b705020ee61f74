/**
 * Exact decimal arithmetic on strings, with BigInt underneath.
 *
 * Why: the API speaks decimal strings and money must never pass through a float (a
 * `0.1 + 0.2` in an order total is a wrong order). Every amount the screen computes
 * (notional, fee, % of balance) is done here in integer units of 10^-scale.
 */

/** A decimal value: `units * 10^-scale`. */
export interface Dec {
  readonly units: bigint;
  readonly scale: number;
}

const PLAIN = /^(-?)([0-9]+)(?:\.([0-9]+))?$/;

/** Parses a plain decimal ("12", "-0.50", "3."), or null when it is not one. */
export function parseDecimal(text: string): Dec | null {
  const t = text.trim();
  const m = PLAIN.exec(t.endsWith(".") ? t.slice(0, -1) : t);
  if (m === null || t === "-" || t.length > 64) return null;
  const frac = m[3] ?? "";
  const units = BigInt(m[2] + frac);
  return { units: m[1] === "-" ? -units : units, scale: frac.length };
}

/** Number of decimals a step such as "0.01" or "0.00100" allows (trailing zeros dropped). */
export function decimalsOf(step: string): number {
  const dot = step.indexOf(".");
  if (dot < 0) return 0;
  return step.slice(dot + 1).replace(/0+$/, "").length;
}

/** Counts decimals written in `text` after dropping trailing zeros. */
export function significantDecimals(text: string): number {
  return decimalsOf(text.trim());
}

/** `d` rescaled to `scale` decimals, rounding toward zero (`floor` for positives). */
export function rescale(d: Dec, scale: number): bigint {
  if (scale >= d.scale) return d.units * 10n ** BigInt(scale - d.scale);
  return d.units / 10n ** BigInt(d.scale - scale);
}

/** `text` in integer units of 10^-decimals, or null if it is not a plain decimal or has
 *  more (non-zero) decimals than that. */
export function toUnits(text: string, decimals: number): bigint | null {
  const d = parseDecimal(text);
  if (d === null || significantDecimals(text) > decimals) return null;
  return rescale(d, decimals);
}

/** `units * 10^-decimals` as a string with exactly `shown` decimals (default: all),
 *  truncating toward zero. */
export function fromUnits(units: bigint, decimals: number, shown: number = decimals): string {
  let v = units;
  if (shown < decimals) v = v / 10n ** BigInt(decimals - shown);
  else if (shown > decimals) v = v * 10n ** BigInt(shown - decimals);
  const neg = v < 0n;
  const abs = neg ? -v : v;
  let s = abs.toString();
  if (shown > 0) {
    s = s.padStart(shown + 1, "0");
    s = `${s.slice(0, -shown)}.${s.slice(-shown)}`;
  }
  return neg ? `-${s}` : s;
}

/** Compares two decimal strings; throws on a malformed one (callers validate first). */
export function compare(a: string, b: string): number {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  if (x === null || y === null) throw new Error(`not a decimal: ${x === null ? a : b}`);
  const scale = Math.max(x.scale, y.scale);
  const d = rescale(x, scale) - rescale(y, scale);
  return d < 0n ? -1 : d > 0n ? 1 : 0;
}

/** Product of two decimal strings, exact, with `shown` decimals (truncated toward zero). */
export function multiply(a: string, b: string, shown: number): string {
  const x = parseDecimal(a);
  const y = parseDecimal(b);
  if (x === null || y === null) throw new Error("not a decimal");
  return fromUnits(x.units * y.units, x.scale + y.scale, shown);
}

/** Ceiling division for non-negative bigints (fees round up, as the core does). */
export function ceilDiv(a: bigint, b: bigint): bigint {
  return (a + b - 1n) / b;
}

/** Is this the zero value? ("0", "0.000") */
export function isZero(text: string): boolean {
  const d = parseDecimal(text);
  return d !== null && d.units === 0n;
}
