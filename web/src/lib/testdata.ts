import type { Market } from "./types";

/** BTC-USDT as `tradewind demo` lists it. */
export const BTC_USDT: Market = {
  symbol: "BTC-USDT",
  base: "BTC",
  quote: "USDT",
  status: "trading",
  base_decimals: 8,
  quote_decimals: 6,
  tick_size: "0.01",
  lot_size: "0.0001",
  min_quantity: null,
  max_quantity: null,
  min_notional: "1.000000",
  price_band_bps: null,
  market_band_bps: 500,
  last_price: "65000.00",
};
