/**
 * Which wallet an order came from, and the order form's wallet choice per symbol.
 *
 * The API marks an order or fill of a margin wallet with `"wallet": "margin"` and
 * `"margin_wallet": "cross" | "isolated"` (spot ones carry neither), so the lists can say
 * where each order came from. The form's wallet switch is remembered per symbol (a
 * trader who uses isolated margin on BTC-USDT and spot elsewhere is not switched back
 * on every visit); anything unreadable in storage counts as spot.
 */

export type WalletMode = "spot" | "isolated" | "cross";

/** The fields of an order or fill that name its wallet. */
export interface WalletMarked {
  wallet?: string;
  margin_wallet?: string;
}

/** "Spot", "Isolated", "Cross", or "Margin" when a server does not say which. */
export function walletLabel(x: WalletMarked): string {
  if (x.wallet !== "margin" && x.margin_wallet === undefined) return "Spot";
  if (x.margin_wallet === "isolated") return "Isolated";
  if (x.margin_wallet === "cross") return "Cross";
  return "Margin";
}

/** The storage key of a symbol's remembered wallet. */
export const walletKey = (symbol: string): string => `tw.wallet.${symbol}`;

type Store = Pick<Storage, "getItem" | "setItem" | "removeItem">;

/** The wallet last chosen on `symbol`, or spot. */
export function savedWallet(storage: Store | null, symbol: string): WalletMode {
  let v: string | null = null;
  try {
    v = storage?.getItem(walletKey(symbol)) ?? null;
  } catch {
    v = null; // storage refused (private mode): spot
  }
  return v === "isolated" || v === "cross" ? v : "spot";
}

/** Remember the wallet chosen on `symbol` (spot is the default, so it is not stored). */
export function saveWallet(storage: Store | null, symbol: string, mode: WalletMode): void {
  try {
    if (mode === "spot") storage?.removeItem(walletKey(symbol));
    else storage?.setItem(walletKey(symbol), mode);
  } catch {
    // storage full or refused: the choice holds for this visit only
  }
}
