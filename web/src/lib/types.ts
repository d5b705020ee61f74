/** Shapes of the REST API (docs/api.md) as the screen uses them. Amounts are strings. */

export interface Market {
  symbol: string;
  base: string;
  quote: string;
  status: "trading" | "halted";
  base_decimals: number;
  quote_decimals: number;
  tick_size: string;
  lot_size: string;
  min_quantity: string | null;
  max_quantity: string | null;
  min_notional: string | null;
  price_band_bps: number | null;
  market_band_bps: number;
  last_price: string | null;
}

export interface Ticker {
  symbol?: string;
  last: string | null;
  open: string | null;
  high: string | null;
  low: string | null;
  change: string | null;
  volume: string;
  quote_volume: string;
  trades?: number;
  best_bid?: string | null;
  best_ask?: string | null;
  time?: number;
}

export interface Balance {
  asset: string;
  available: string;
  locked: string;
}

export type Side = "buy" | "sell";

export interface Order {
  id: number;
  client_order_id: string | null;
  symbol: string;
  side: Side;
  type: string;
  time_in_force: string;
  price: string | null;
  stop_price: string | null;
  quantity: string | null;
  quote_quantity: string | null;
  filled_quantity: string;
  filled_quote_quantity: string;
  fee: string;
  fee_asset: string;
  status: string;
  cancel_reason: string | null;
  created_at: number;
  updated_at: number;
  /** "margin" on an order of a margin wallet, with which one (lib/wallets.ts). */
  wallet?: "margin";
  margin_wallet?: "cross" | "isolated";
}

export interface Fill {
  id: number;
  order_id: number;
  symbol: string;
  side: Side;
  role: "maker" | "taker";
  price: string;
  quantity: string;
  quote_quantity: string;
  fee: string;
  fee_asset: string;
  time: number;
  wallet?: "margin";
  margin_wallet?: "cross" | "isolated";
}

export interface Trade {
  id: string;
  price: string;
  quantity: string;
  side: Side;
  time: number;
}

export interface Candle {
  open_time: number;
  open: string;
  high: string;
  low: string;
  close: string;
  volume: string;
}

export interface Page<T> {
  items: T[];
  next_cursor: string | null;
}

export interface FeeRates {
  maker_bps: number;
  taker_bps: number;
}
