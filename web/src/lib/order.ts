/**
 * The order form's logic: validation against the symbol's filters before any request,
 * the fee and total shown before submit, the amount for a % of the balance, and the
 * request body. Pure functions (no DOM, no fetch) so Vitest covers them.
 *
 * Why here and not only on the server: the server refuses a bad order anyway (and the
 * screen shows its `{code, message}`), but checking first gives the error at the field
 * while typing, and saves a round trip. The checks mirror the server's (docs/api.md,
 * core/symbols.py) and use its error codes.
 */
import { ceilDiv, fromUnits, toUnits } from "./decimal";
import { priceDecimals, qtyDecimals } from "./format";
import type { FeeRates, Market, Side } from "./types";

export type OrderKind = "limit" | "market" | "stop_limit";
export type Field = "price" | "stop_price" | "quantity" | "total" | "form";

export interface Draft {
  side: Side;
  kind: OrderKind;
  price: string;
  stopPrice: string;
  quantity: string;
  /** Market buys: how much quote to spend. */
  total: string;
  postOnly: boolean;
  ioc: boolean;
}

export interface Context {
  market: Market;
  /** Available balance of the asset this order spends (quote to buy, base to sell). */
  available: string | null;
  fees: FeeRates | null;
  lastPrice: string | null;
}

export interface Problem {
  code: string;
  message: string;
}

export interface Check {
  errors: Partial<Record<Field, Problem>>;
  /** Quote value of the order (price x quantity, or the amount to spend). */
  notional: string | null;
  /** Largest fee this order can pay, in the asset it receives. */
  fee: string | null;
  feeAsset: string;
  /** What leaves the account (buy: quote; sell: base). */
  spend: string | null;
  spendAsset: string;
  /** What arrives at most, after the fee. */
  receive: string | null;
  receiveAsset: string;
}

const BPS = 10_000n;

export const emptyDraft = (side: Side = "buy"): Draft => ({
  side,
  kind: "limit",
  price: "",
  stopPrice: "",
  quantity: "",
  total: "",
  postOnly: false,
  ioc: false,
});

/** Whether the server would charge the maker rate: only a post-only order is sure to. */
function feeBps(d: Draft, fees: FeeRates | null): bigint | null {
  if (fees === null) return null;
  return BigInt(d.kind === "limit" && d.postOnly ? fees.maker_bps : fees.taker_bps);
}

/** Parse a positive amount in `decimals` and check it is a multiple of `step`. */
function amount(
  text: string,
  decimals: number,
  step: string,
  name: string,
  stepFilter: string,
): { units: bigint } | Problem {
  const t = text.trim();
  if (t === "") return { code: "required", message: `enter a ${name}` };
  if (!/^[0-9]*\.?[0-9]*$/.test(t) || t === ".") {
    return { code: "invalid_decimal", message: `${name} must be a plain decimal such as 1.25` };
  }
  const units = toUnits(t, decimals);
  if (units === null) {
    return { code: "too_many_decimals", message: `${name} allows at most ${decimals} decimals` };
  }
  if (units <= 0n) return { code: "invalid_amount", message: `${name} must be greater than zero` };
  const stepUnits = toUnits(step, decimals) ?? 1n;
  if (units % stepUnits !== 0n) {
    return {
      code: `filter_violated:${stepFilter}`,
      message: `${name} must be a multiple of ${step}`,
    };
  }
  return { units };
}

const isProblem = (x: object): x is Problem => "code" in x;

/** Everything the form shows about a draft: field errors, fee, totals. */
export function checkOrder(d: Draft, ctx: Context): Check {
  const m = ctx.market;
  const qd = m.quote_decimals;
  const bd = m.base_decimals;
  const buy = d.side === "buy";
  const out: Check = {
    errors: {},
    notional: null,
    fee: null,
    feeAsset: buy ? m.base : m.quote,
    spend: null,
    spendAsset: buy ? m.quote : m.base,
    receive: null,
    receiveAsset: buy ? m.base : m.quote,
  };
  if (m.status === "halted") out.errors.form = { code: "symbol_halted", message: "trading is halted" };
  const bps = feeBps(d, ctx.fees);
  const available = ctx.available === null ? 0n : (toUnits(ctx.available, buy ? qd : bd) ?? 0n);
  const scale = 10n ** BigInt(bd);

  // market buy: spend an amount of quote
  if (d.kind === "market" && buy) {
    const total = amount(d.total, qd, fromUnits(1n, qd), "total", "tick_size");
    if (isProblem(total)) {
      out.errors.total = total;
      return out;
    }
    const minNotional = m.min_notional === null ? null : toUnits(m.min_notional, qd);
    if (minNotional !== null && total.units < minNotional) {
      out.errors.total = {
        code: "filter_violated:min_notional",
        message: `the total must be at least ${m.min_notional} ${m.quote}`,
      };
    } else if (total.units > available) {
      out.errors.total = { code: "insufficient_balance", message: `not enough ${m.quote}` };
    }
    out.notional = fromUnits(total.units, qd);
    out.spend = out.notional;
    return out;
  }

  const qty = amount(d.quantity, bd, m.lot_size, "quantity", "lot_size");
  if (isProblem(qty)) out.errors.quantity = qty;
  else {
    const min = m.min_quantity === null ? null : toUnits(m.min_quantity, bd);
    const max = m.max_quantity === null ? null : toUnits(m.max_quantity, bd);
    if (min !== null && qty.units < min) {
      out.errors.quantity = {
        code: "filter_violated:min_qty",
        message: `the quantity must be at least ${m.min_quantity}`,
      };
    } else if (max !== null && qty.units > max) {
      out.errors.quantity = {
        code: "filter_violated:max_qty",
        message: `the quantity must be at most ${m.max_quantity}`,
      };
    }
  }

  let price: bigint | null = null;
  if (d.kind !== "market") {
    const p = amount(d.price, qd, m.tick_size, "price", "tick_size");
    if (isProblem(p)) out.errors.price = p;
    else {
      price = p.units;
      const last = ctx.lastPrice === null ? null : toUnits(ctx.lastPrice, qd);
      if (m.price_band_bps !== null && last !== null) {
        const band = BigInt(m.price_band_bps);
        if (price * BPS < last * (BPS - band) || price * BPS > last * (BPS + band)) {
          out.errors.price = {
            code: "filter_violated:price_band",
            message: `the price must be within ${m.price_band_bps / 100}% of the last price ${ctx.lastPrice}`,
          };
        }
      }
    }
  }
  if (d.kind === "stop_limit") {
    const s = amount(d.stopPrice, qd, m.tick_size, "stop price", "tick_size");
    if (isProblem(s)) out.errors.stop_price = s;
    else if (ctx.lastPrice !== null) {
      const last = toUnits(ctx.lastPrice, qd);
      if (last !== null && (buy ? s.units <= last : s.units >= last)) {
        out.errors.stop_price = {
          code: "would_trigger_immediately",
          message: `a ${d.side} stop must be ${buy ? "above" : "below"} the last price ${ctx.lastPrice}`,
        };
      }
    }
  }
  if (isProblem(qty)) return out;

  if (price !== null) {
    const notional = (price * qty.units) / scale;
    out.notional = fromUnits(notional, qd);
    const minNotional = m.min_notional === null ? null : toUnits(m.min_notional, qd);
    if (minNotional !== null && notional < minNotional && !out.errors.price && !out.errors.quantity) {
      out.errors.quantity = {
        code: "filter_violated:min_notional",
        message: `the order's value must be at least ${m.min_notional} ${m.quote}`,
      };
    }
    if (buy) {
      out.spend = out.notional;
      if (bps !== null) {
        const fee = ceilDiv(qty.units * bps, BPS);
        out.fee = fromUnits(fee, bd);
        out.receive = fromUnits(qty.units - fee, bd);
      }
      if (notional > available && !out.errors.quantity) {
        out.errors.quantity = { code: "insufficient_balance", message: `not enough ${m.quote}` };
      }
    } else {
      out.spend = fromUnits(qty.units, bd);
      if (bps !== null) {
        const fee = ceilDiv(notional * bps, BPS);
        out.fee = fromUnits(fee, qd);
        out.receive = fromUnits(notional - fee, qd);
      }
    }
  } else {
    // market sell: the price is the book's, so only the quantity is known
    out.spend = fromUnits(qty.units, bd);
  }
  if (!buy && qty.units > available && !out.errors.quantity) {
    out.errors.quantity = { code: "insufficient_balance", message: `not enough ${m.base}` };
  }
  return out;
}

export const isValid = (c: Check): boolean => Object.keys(c.errors).length === 0;

/**
 * The amount for `pct` percent of the available balance, on the symbol's grid:
 * a quantity (rounded down to the lot) for limit orders and sells, a quote total for a
 * market buy. Null when it cannot be computed (no price yet, no balance).
 */
export function amountForPercent(
  pct: number,
  d: Draft,
  m: Market,
  available: string | null,
): string | null {
  if (available === null || pct < 0 || pct > 100) return null;
  const buy = d.side === "buy";
  const qd = m.quote_decimals;
  const bd = m.base_decimals;
  const avail = toUnits(available, buy ? qd : bd);
  if (avail === null) return null;
  const share = (avail * BigInt(Math.round(pct))) / 100n;
  if (buy && d.kind === "market") return fromUnits(share, qd);
  const lot = toUnits(m.lot_size, bd) ?? 1n;
  let units: bigint;
  if (buy) {
    const price = toUnits(d.price, qd);
    if (price === null || price <= 0n) return null;
    units = (share * 10n ** BigInt(bd)) / price;
  } else {
    units = share;
  }
  units -= units % lot;
  return fromUnits(units, bd, qtyDecimals(m));
}

/** The `POST /api/v1/orders` body for a draft (call after a valid check). */
export function orderRequest(d: Draft, m: Market): Record<string, unknown> {
  const body: Record<string, unknown> = { symbol: m.symbol, side: d.side };
  if (d.kind === "market") {
    body.type = "market";
    if (d.side === "buy") body.quote_quantity = d.total.trim();
    else body.quantity = d.quantity.trim();
    return body;
  }
  body.type = d.kind;
  body.price = d.price.trim();
  body.quantity = d.quantity.trim();
  if (d.kind === "stop_limit") body.stop_price = d.stopPrice.trim();
  if (d.kind === "limit" && d.postOnly) body.post_only = true;
  else if (d.ioc) body.time_in_force = "IOC";
  return body;
}

/** A price string shown at the symbol's precision (for click-a-price). */
export function normalisePrice(text: string, m: Market): string {
  const u = toUnits(text, m.quote_decimals);
  return u === null ? text : fromUnits(u, m.quote_decimals, priceDecimals(m));
}
