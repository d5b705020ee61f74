import { describe, expect, it } from "vitest";
import {
  formatChangePct,
  formatCompact,
  formatDecimal,
  formatPrice,
  formatQty,
  formatTime,
} from "./format";
import { BTC_USDT } from "./testdata";

describe("format", () => {
  it("shows prices with the tick's decimals and quantities with the lot's", () => {
    expect(formatPrice("65000.1", BTC_USDT)).toBe("65,000.10");
    expect(formatPrice("65000.000000", BTC_USDT)).toBe("65,000.00");
    expect(formatQty("0.5", BTC_USDT)).toBe("0.5000");
    expect(formatQty("1234.00000000", BTC_USDT)).toBe("1,234.0000");
  });

  it("never rounds a value up", () => {
    expect(formatDecimal("0.129", 2)).toBe("0.12");
  });

  it("shows a dash for a missing or malformed value", () => {
    expect(formatPrice(null, BTC_USDT)).toBe("-");
    expect(formatDecimal("NaN", 2)).toBe("-");
  });

  it("gives the 24h change in percent with a sign", () => {
    expect(formatChangePct("101", "100")).toBe("+1.00%");
    expect(formatChangePct("99.5", "100")).toBe("-0.50%");
    expect(formatChangePct("100", "100")).toBe("0.00%");
    expect(formatChangePct(null, "100")).toBe("0.00%");
    expect(formatChangePct("66666.66", "65000.00")).toBe("+2.56%");
  });

  it("shortens large volumes", () => {
    expect(formatCompact("1234567.89")).toBe("1.23M");
    expect(formatCompact("999.5")).toBe("999.5");
    expect(formatCompact("2500")).toBe("2.50K");
  });

  it("shows times in UTC", () => {
    expect(formatTime(Date.UTC(2026, 0, 2, 3, 4, 5))).toBe("03:04:05");
  });
});
