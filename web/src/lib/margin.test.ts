import { describe, expect, it } from "vitest";
import {
  checkAmount,
  decimalsFrom,
  findWallet,
  gaugePercent,
  levelZone,
  type MarginAccount,
  type MarginConfig,
  marginErrorText,
  recordText,
  thresholdPercent,
  walletAssets,
  walletChoices,
  yearlyPercent,
} from "./margin";

const config: MarginConfig = {
  valuation_asset: "USDT",
  symbols: [
    { symbol: "BTC-USDT", max_leverage: 10, initial_level: "1.1112", margin_call_level: "1.0800", liquidation_level: "1.0500", liquidation_fee_bps: 50, mark_price: "65000.00" },
    { symbol: "ETH-USDT", max_leverage: 10, initial_level: "1.1112", margin_call_level: "1.0800", liquidation_level: "1.0500", liquidation_fee_bps: 50, mark_price: "3200.00" },
  ],
  cross: { max_leverage: 5, initial_level: "1.2500", margin_call_level: "1.1500", liquidation_level: "1.1000", liquidation_fee_bps: 50 },
  assets: [{ asset: "USDT", hourly_rate: "0.000011416", borrow_limit: "1000000.000000", pool_available: "50000000.000000" }],
};

const levels = { initial_level: "1.1112", margin_call_level: "1.0800", liquidation_level: "1.0500" };

describe("wallets", () => {
  it("offers cross first, then each isolated symbol, with their assets", () => {
    const choices = walletChoices(config);
    expect(choices.map((c) => c.label)).toEqual([
      "Cross (5x)",
      "Isolated BTC-USDT (10x)",
      "Isolated ETH-USDT (10x)",
    ]);
    expect(walletAssets(config, choices[0])).toEqual(["USDT", "BTC", "ETH"]);
    expect(walletAssets(config, choices[1])).toEqual(["BTC", "USDT"]);
  });

  it("finds the wallet of a choice in the account", () => {
    const account = {
      valuation_asset: "USDT",
      mark_prices: [],
      wallets: [{ wallet: "isolated", symbol: "BTC-USDT" }],
    } as unknown as MarginAccount;
    const [cross, btc] = walletChoices(config);
    expect(findWallet(account, btc)?.symbol).toBe("BTC-USDT");
    expect(findWallet(account, cross)).toBeNull();
    expect(findWallet(null, cross)).toBeNull();
  });
});

describe("level gauge", () => {
  it("puts a level in its zone, thresholds included", () => {
    expect(levelZone({ ...levels, margin_level: null })).toBe("none");
    expect(levelZone({ ...levels, margin_level: "1.1233" })).toBe("safe");
    expect(levelZone({ ...levels, margin_level: "1.0800" })).toBe("call");
    expect(levelZone({ ...levels, margin_level: "1.0609" })).toBe("call");
    expect(levelZone({ ...levels, margin_level: "1.0500" })).toBe("liquidation");
  });

  it("fills from the liquidation level to twice the initial level's distance", () => {
    expect(gaugePercent({ ...levels, margin_level: "1.0500" })).toBe(0);
    expect(gaugePercent({ ...levels, margin_level: "1.0000" })).toBe(0);
    expect(gaugePercent({ ...levels, margin_level: "1.1112" })).toBe(50);
    expect(gaugePercent({ ...levels, margin_level: "1.1724" })).toBe(100);
    expect(gaugePercent({ ...levels, margin_level: "9.9" })).toBe(100);
    expect(gaugePercent({ ...levels, margin_level: null })).toBe(100);
    expect(thresholdPercent("1.0800", levels)).toBe(24.5);
  });
});

describe("amount checks", () => {
  it("refuses what the server would, with its codes", () => {
    expect(checkAmount("", 6, null, "borrow").code).toBeNull();
    expect(checkAmount("abc", 6, null, "borrow").code).toBe("invalid_decimal");
    expect(checkAmount("0", 6, null, "borrow").code).toBe("invalid_amount");
    expect(checkAmount("1.0000001", 6, null, "borrow").code).toBe("too_many_decimals");
    expect(checkAmount("992.805756", 6, "992.805755", "borrow").code).toBe("below_initial_margin");
    expect(checkAmount("8000.000001", 6, "8000.000000", "repay").code).toBe("repay_exceeds_debt");
    expect(checkAmount("110.41", 6, "110.400000", "transfer").message).toContain("110.400000");
    const ok = checkAmount("992.805755", 6, "992.805755", "borrow");
    expect(ok.ok).toBe(true);
    expect(ok.units).toBe(992805755n);
  });

  it("reads an asset's decimals from an amount the server wrote", () => {
    expect(decimalsFrom("0.09980000")).toBe(8);
    expect(decimalsFrom("2500.000000")).toBe(6);
    expect(decimalsFrom("7")).toBe(0);
    expect(decimalsFrom(undefined, 6)).toBe(6);
  });
});

describe("texts", () => {
  it("explains refusals and history rows", () => {
    expect(marginErrorText("below_initial_margin", "x")).toContain("initial margin level");
    expect(marginErrorText("something_new", "the server's words")).toBe("the server's words");
    const base = { id: 1, wallet: "isolated" as const, symbol: "BTC-USDT", time: 0, seq: 1 };
    expect(recordText({ ...base, type: "borrow", asset: "USDT", amount: "8000.000000" })).toBe(
      "Borrowed 8000.000000 USDT",
    );
    expect(
      recordText({ ...base, type: "repay", asset: "USDT", amount: "1", reason: "liquidation" }),
    ).toBe("Repaid 1 USDT (liquidation)");
    expect(recordText({ ...base, type: "interest", asset: "USDT", amount: "0.009136", hours: 1 })).toBe(
      "Interest 0.009136 USDT (1 h)",
    );
    expect(
      recordText({ ...base, type: "liquidation_finished", fee: "40.000046", fee_asset: "USDT", left: { USDT: "236.814018" } }),
    ).toBe("Liquidation finished: fee 40.000046 USDT, left 236.814018 USDT");
  });

  it("shows an hourly rate as a yearly percentage, exactly", () => {
    expect(yearlyPercent("0.000001142")).toBe("1.00");
    expect(yearlyPercent("0.00001142")).toBe("10.00");
  });
});
