/**
 * The margin page's logic, framework-free so Vitest covers it: the API's shapes, the
 * level gauge (where a level sits between liquidation, margin call and initial), the
 * checks the server would make on a transfer, borrow or repay amount (with its codes),
 * and what each refusal and history row means for a person.
 *
 * Amounts stay decimal strings and BigInt units (decimal.ts); never a float.
 */
import { compare, decimalsOf, parseDecimal, significantDecimals, toUnits } from "./decimal";

export type WalletKind = "cross" | "isolated";

export interface MarginTerms {
  symbol?: string;
  max_leverage: number;
  initial_level: string;
  margin_call_level: string;
  liquidation_level: string;
  liquidation_fee_bps: number;
  mark_price?: string | null;
}

export interface MarginConfig {
  valuation_asset: string | null;
  symbols: (MarginTerms & { symbol: string })[];
  cross: MarginTerms | null;
  assets: { asset: string; hourly_rate: string; borrow_limit: string; pool_available: string }[];
}

export interface MarginLiability {
  asset: string;
  principal: string;
  interest: string;
  total: string;
}

export interface MarginWallet {
  wallet: WalletKind;
  symbol: string | null;
  balances: { asset: string; available: string; locked: string }[];
  liabilities: MarginLiability[];
  valuation_asset: string | null;
  assets_value: string;
  liabilities_value: string;
  margin_level: string | null;
  max_leverage: number;
  initial_level: string;
  margin_call_level: string;
  liquidation_level: string;
  margin_call: boolean;
  liquidation_price: { symbol: string; when_mark: string; price: string | null } | null;
}

export interface MarginAccount {
  valuation_asset: string | null;
  wallets: MarginWallet[];
  mark_prices: { symbol: string; mark_price: string | null }[];
}

export interface MarginRecord {
  id: number;
  type: string;
  wallet: WalletKind | null;
  symbol: string | null;
  time: number;
  seq: number;
  asset?: string;
  amount?: string | null;
  [field: string]: unknown;
}

/** A wallet the page can pick: the cross wallet or one symbol's isolated wallet. */
export interface WalletChoice {
  kind: WalletKind;
  symbol: string | null;
  label: string;
}

export function walletChoices(config: MarginConfig): WalletChoice[] {
  const out: WalletChoice[] = config.symbols.map((s) => ({
    kind: "isolated",
    symbol: s.symbol,
    label: `Isolated ${s.symbol} (${s.max_leverage}x)`,
  }));
  if (config.cross) {
    out.unshift({ kind: "cross", symbol: null, label: `Cross (${config.cross.max_leverage}x)` });
  }
  return out;
}

/** The assets a wallet may hold: its symbol's two, or (cross) the valuation asset and
 *  every margin symbol's base. */
export function walletAssets(config: MarginConfig, choice: WalletChoice): string[] {
  if (choice.kind === "isolated" && choice.symbol) {
    const [base, quote] = choice.symbol.split("-");
    return [base, quote];
  }
  const bases = config.symbols.map((s) => s.symbol.split("-")[0]);
  const all = config.valuation_asset ? [config.valuation_asset, ...bases] : bases;
  return [...new Set(all)];
}

export function findWallet(
  account: MarginAccount | null,
  choice: WalletChoice,
): MarginWallet | null {
  return (
    account?.wallets.find((w) => w.wallet === choice.kind && w.symbol === choice.symbol) ?? null
  );
}

export type Zone = "none" | "safe" | "call" | "liquidation";

/** Where a level sits: `none` without debt, `liquidation` at or below the liquidation
 *  level, `call` at or below the margin-call level, else `safe`. */
export function levelZone(w: Pick<MarginWallet, "margin_level" | "margin_call_level" | "liquidation_level">): Zone {
  if (w.margin_level === null) return "none";
  if (compare(w.margin_level, w.liquidation_level) <= 0) return "liquidation";
  if (compare(w.margin_level, w.margin_call_level) <= 0) return "call";
  return "safe";
}

/** The gauge's fill, 0..100 (%): the liquidation level at 0, twice the initial level's
 *  distance from it at 100 (levels above are "full"). */
export function gaugePercent(w: Pick<MarginWallet, "margin_level" | "liquidation_level" | "initial_level">): number {
  if (w.margin_level === null) return 100;
  const scale = 4;
  const level = toUnits(w.margin_level, scale);
  const low = toUnits(w.liquidation_level, scale);
  const init = toUnits(w.initial_level, scale);
  if (level === null || low === null || init === null || init <= low) return 0;
  const top = low + 2n * (init - low);
  if (level <= low) return 0;
  if (level >= top) return 100;
  return Number(((level - low) * 1000n) / (top - low)) / 10;
}

/** A position on the gauge for a threshold level (same scale as `gaugePercent`). */
export function thresholdPercent(
  threshold: string,
  w: Pick<MarginWallet, "liquidation_level" | "initial_level">,
): number {
  return gaugePercent({ ...w, margin_level: threshold });
}

export interface AmountCheck {
  ok: boolean;
  units: bigint | null;
  code: string | null;
  message: string;
}

/** The edge checks of an amount field, in the server's order and with its codes:
 *  a plain positive decimal, no more decimals than the asset has, at most `most` (the
 *  max-borrowable / max-transferable / owed / available figure) when one is known. */
export function checkAmount(
  text: string,
  decimals: number,
  most: string | null,
  what: "transfer" | "borrow" | "repay",
): AmountCheck {
  const t = text.trim();
  if (t === "") return { ok: false, units: null, code: null, message: "" };
  const d = parseDecimal(t);
  if (d === null) {
    return { ok: false, units: null, code: "invalid_decimal", message: 'Enter a plain number such as "12.5".' };
  }
  if (d.units <= 0n) {
    return { ok: false, units: null, code: "invalid_amount", message: "The amount must be above zero." };
  }
  if (significantDecimals(t) > decimals) {
    return {
      ok: false,
      units: null,
      code: "too_many_decimals",
      message: `At most ${decimals} decimals for this asset.`,
    };
  }
  const units = toUnits(t, decimals);
  if (most !== null && compare(t, most) > 0) {
    const codes = {
      transfer: "below_initial_margin",
      borrow: "below_initial_margin",
      repay: "repay_exceeds_debt",
    } as const;
    const limits = {
      transfer: `At most ${most} can leave the wallet now.`,
      borrow: `At most ${most} can be borrowed now.`,
      repay: `At most ${most} can be repaid.`,
    } as const;
    return { ok: false, units, code: codes[what], message: limits[what] };
  }
  return { ok: true, units, code: null, message: "" };
}

/** Decimals of an asset from the amounts the server writes (they carry all of them). */
export function decimalsFrom(sample: string | undefined, fallback = 8): number {
  if (sample === undefined) return fallback;
  const dot = sample.indexOf(".");
  return dot < 0 ? 0 : sample.length - dot - 1;
}

/** What a refusal means, for a person. */
export function marginErrorText(code: string, message: string): string {
  const texts: Record<string, string> = {
    below_initial_margin:
      "That would leave the wallet below its initial margin level (more leverage than allowed).",
    borrow_limit_exceeded: "That is more than this asset's borrow limit per wallet.",
    repay_exceeds_debt: "That is more than the wallet owes in this asset.",
    pool_insufficient: "The lending pool does not hold that much right now.",
    insufficient_balance: "Not enough available balance for that.",
    no_margin_wallet: "Transfer funds into this wallet first.",
    no_mark_price: "There is no mark price for this market yet; try again shortly.",
    asset_not_borrowable: "This asset cannot be borrowed.",
    asset_not_in_wallet: "This wallet cannot hold that asset.",
    margin_not_enabled: "Margin is not enabled here.",
    margin_unavailable: "Margin figures are not available from this server right now.",
  };
  return texts[code] ?? message;
}

/** One line describing a history row. */
export function recordText(r: MarginRecord): string {
  const amount = r.amount != null && r.asset ? `${r.amount} ${r.asset}` : "";
  switch (r.type) {
    case "transfer":
      return r.direction === "in" ? `Transferred in ${amount}` : `Transferred out ${amount}`;
    case "borrow":
      return `Borrowed ${amount}${r.order_id ? ` (auto-borrow, order ${r.order_id})` : ""}`;
    case "repay": {
      const by: Record<string, string> = {
        user: "",
        auto_repay: " (auto-repay)",
        liquidation: " (liquidation)",
        insurance: " (by the insurance fund)",
      };
      return `Repaid ${amount}${by[String(r.reason)] ?? ""}`;
    }
    case "interest":
      return `Interest ${amount} (${r.hours} h)`;
    case "margin_call":
      return `Margin call at level ${r.margin_level}`;
    case "liquidation_started":
      return `Liquidation started at level ${r.margin_level}`;
    case "liquidation_fill":
      return `Liquidation ${r.side} ${r.filled} of ${r.qty} at ≥ ${r.limit}`;
    case "liquidation_finished": {
      const left = Object.entries((r.left as Record<string, string>) ?? {})
        .map(([a, v]) => `${v} ${a}`)
        .join(", ");
      return `Liquidation finished: fee ${r.fee} ${r.fee_asset ?? ""}${left ? `, left ${left}` : ""}`;
    }
    default:
      return r.type;
  }
}

/** The hourly rate as a yearly percentage, for display only (2 decimals). */
export function yearlyPercent(hourlyFraction: string): string {
  const d = parseDecimal(hourlyFraction);
  if (d === null) return "?";
  // fraction * 8760 * 100, to 2 decimals, exact in BigInt
  const scaled = d.units * 876000n * 100n;
  const div = 10n ** BigInt(d.scale);
  const v = scaled / div;
  return `${v / 100n}.${(v % 100n).toString().padStart(2, "0")}`;
}

export const LEVEL_DECIMALS = decimalsOf("0.0001");
