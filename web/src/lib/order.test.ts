import { describe, expect, it } from "vitest";
import { amountForPercent, checkOrder, emptyDraft, isValid, orderRequest } from "./order";
import { BTC_USDT } from "./testdata";
import type { Market } from "./types";

const fees = { maker_bps: 10, taker_bps: 20 };
const ctx = (available: string | null, market: Market = BTC_USDT) => ({
  market,
  available,
  fees,
  lastPrice: "65000.00",
});

describe("order validation", () => {
  it("accepts a valid limit buy and shows the fee and total before submit", () => {
    const d = { ...emptyDraft("buy"), price: "65000.00", quantity: "0.0100" };
    const c = checkOrder(d, ctx("1000"));
    expect(isValid(c)).toBe(true);
    expect(c.spend).toBe("650.000000");
    expect(c.spendAsset).toBe("USDT");
    // taker rate (20 bps) unless post-only; fee in the asset received (BTC), rounded up
    expect(c.fee).toBe("0.00002000");
    expect(c.receive).toBe("0.00998000");
  });

  it("charges the maker rate on post-only", () => {
    const d = { ...emptyDraft("buy"), price: "65000.00", quantity: "0.0100", postOnly: true };
    expect(checkOrder(d, ctx("1000")).fee).toBe("0.00001000");
  });

  it("computes a sell's fee in the quote asset", () => {
    const d = { ...emptyDraft("sell"), price: "65000.00", quantity: "0.0100" };
    const c = checkOrder(d, ctx("1"));
    expect(c.fee).toBe("1.300000");
    expect(c.receive).toBe("648.700000");
    expect(c.spendAsset).toBe("BTC");
  });

  it("refuses a price off the tick and a quantity off the lot, with the API's codes", () => {
    const d = { ...emptyDraft("buy"), price: "65000.0000001", quantity: "0.00015" };
    const c = checkOrder(d, ctx("100000"));
    expect(c.errors.price?.code).toBe("too_many_decimals");
    expect(c.errors.quantity?.code).toBe("filter_violated:lot_size");
    expect(checkOrder({ ...d, price: "65000.005" }, ctx("100000")).errors.price?.code).toBe(
      "filter_violated:tick_size",
    );
    const m = { ...BTC_USDT, tick_size: "0.05" };
    const c2 = checkOrder({ ...d, price: "65000.01", quantity: "0.0001" }, ctx("100000", m));
    expect(c2.errors.price?.code).toBe("filter_violated:tick_size");
  });

  it("refuses an order below the minimum notional", () => {
    const d = { ...emptyDraft("buy"), price: "100.00", quantity: "0.0001" };
    expect(checkOrder(d, ctx("1000")).errors.quantity?.code).toBe("filter_violated:min_notional");
  });

  it("refuses min/max quantity and a price outside the band", () => {
    const m = { ...BTC_USDT, min_quantity: "0.0010", max_quantity: "1.0000", price_band_bps: 1000 };
    const low = { ...emptyDraft("buy"), price: "65000.00", quantity: "0.0005" };
    expect(checkOrder(low, ctx("1e9", m)).errors.quantity?.code).toBe("filter_violated:min_qty");
    const high = { ...low, quantity: "2" };
    expect(checkOrder(high, ctx("1000000000", m)).errors.quantity?.code).toBe(
      "filter_violated:max_qty",
    );
    const far = { ...low, quantity: "0.001", price: "80000" };
    expect(checkOrder(far, ctx("1000000000", m)).errors.price?.code).toBe(
      "filter_violated:price_band",
    );
  });

  it("refuses more than the available balance", () => {
    const buy = { ...emptyDraft("buy"), price: "65000.00", quantity: "1" };
    expect(checkOrder(buy, ctx("100")).errors.quantity?.code).toBe("insufficient_balance");
    const sell = { ...emptyDraft("sell"), price: "65000.00", quantity: "1" };
    expect(checkOrder(sell, ctx("0.5")).errors.quantity?.code).toBe("insufficient_balance");
    expect(checkOrder(sell, ctx(null)).errors.quantity?.code).toBe("insufficient_balance");
  });

  it("requires fields and plain decimals", () => {
    const c = checkOrder(emptyDraft("buy"), ctx("1"));
    expect(c.errors.price?.code).toBe("required");
    expect(c.errors.quantity?.code).toBe("required");
    const bad = { ...emptyDraft("buy"), price: "1e5", quantity: "-1" };
    const c2 = checkOrder(bad, ctx("1"));
    expect(c2.errors.price?.code).toBe("invalid_decimal");
    expect(c2.errors.quantity?.code).toBe("invalid_decimal");
  });

  it("checks a stop-limit's stop against the last price", () => {
    const d = {
      ...emptyDraft("buy"),
      kind: "stop_limit" as const,
      price: "66000",
      stopPrice: "64000",
      quantity: "0.01",
    };
    expect(checkOrder(d, ctx("100000")).errors.stop_price?.code).toBe(
      "would_trigger_immediately",
    );
    expect(isValid(checkOrder({ ...d, stopPrice: "65500" }, ctx("100000")))).toBe(true);
  });

  it("checks a market buy by the amount to spend", () => {
    const d = { ...emptyDraft("buy"), kind: "market" as const, total: "0.5" };
    expect(checkOrder(d, ctx("100")).errors.total?.code).toBe("filter_violated:min_notional");
    expect(isValid(checkOrder({ ...d, total: "50" }, ctx("100")))).toBe(true);
    expect(checkOrder({ ...d, total: "500" }, ctx("100")).errors.total?.code).toBe(
      "insufficient_balance",
    );
  });

  it("refuses everything on a halted market", () => {
    const d = { ...emptyDraft("buy"), price: "65000.00", quantity: "0.0100" };
    expect(checkOrder(d, ctx("1000", { ...BTC_USDT, status: "halted" })).errors.form?.code).toBe(
      "symbol_halted",
    );
  });
});

describe("percent of balance", () => {
  it("buys as many lots as the quote balance pays for, rounded down", () => {
    const d = { ...emptyDraft("buy"), price: "65000.00" };
    expect(amountForPercent(50, d, BTC_USDT, "1000")).toBe("0.0076");
    expect(amountForPercent(100, d, BTC_USDT, "65000")).toBe("1.0000");
  });

  it("sells a share of the base balance on the lot grid", () => {
    const d = emptyDraft("sell");
    expect(amountForPercent(25, d, BTC_USDT, "0.12345678")).toBe("0.0308");
  });

  it("gives a market buy's quote total", () => {
    const d = { ...emptyDraft("buy"), kind: "market" as const };
    expect(amountForPercent(10, d, BTC_USDT, "1234.5")).toBe("123.450000");
  });

  it("needs a price to size a limit buy", () => {
    expect(amountForPercent(50, emptyDraft("buy"), BTC_USDT, "1000")).toBeNull();
  });
});

describe("order request", () => {
  it("maps the form to the API's fields", () => {
    const limit = { ...emptyDraft("buy"), price: "65000", quantity: "0.01", postOnly: true };
    expect(orderRequest(limit, BTC_USDT)).toEqual({
      symbol: "BTC-USDT",
      side: "buy",
      type: "limit",
      price: "65000",
      quantity: "0.01",
      post_only: true,
    });
    const ioc = { ...limit, postOnly: false, ioc: true };
    expect(orderRequest(ioc, BTC_USDT).time_in_force).toBe("IOC");
    const mkt = { ...emptyDraft("buy"), kind: "market" as const, total: "50" };
    expect(orderRequest(mkt, BTC_USDT)).toEqual({
      symbol: "BTC-USDT",
      side: "buy",
      type: "market",
      quote_quantity: "50",
    });
    const stop = { ...limit, kind: "stop_limit" as const, stopPrice: "66000", postOnly: false };
    expect(orderRequest(stop, BTC_USDT).stop_price).toBe("66000");
  });
});
