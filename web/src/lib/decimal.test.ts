import { describe, expect, it } from "vitest";
import { compare, decimalsOf, fromUnits, multiply, parseDecimal, toUnits } from "./decimal";

describe("decimal", () => {
  it("parses plain decimals exactly and refuses anything else", () => {
    expect(parseDecimal("0.1")).toEqual({ units: 1n, scale: 1 });
    expect(parseDecimal("-12.50")).toEqual({ units: -1250n, scale: 2 });
    for (const bad of ["", "1e5", "1,000", "abc", "1.2.3", "-"]) expect(parseDecimal(bad)).toBeNull();
  });

  it("converts to units without floats: 0.1 + 0.2 is 0.3", () => {
    const a = toUnits("0.1", 8)!;
    const b = toUnits("0.2", 8)!;
    expect(fromUnits(a + b, 8)).toBe("0.30000000");
  });

  it("refuses more decimals than allowed but accepts trailing zeros", () => {
    expect(toUnits("1.234", 2)).toBeNull();
    expect(toUnits("1.2300", 2)).toBe(123n);
  });

  it("formats units with the requested decimals, truncating", () => {
    expect(fromUnits(123456n, 6)).toBe("0.123456");
    expect(fromUnits(123456n, 6, 2)).toBe("0.12");
    expect(fromUnits(-5n, 2)).toBe("-0.05");
    expect(fromUnits(42n, 0)).toBe("42");
  });

  it("counts the decimals of a step", () => {
    expect(decimalsOf("0.01")).toBe(2);
    expect(decimalsOf("0.00100")).toBe(3);
    expect(decimalsOf("10")).toBe(0);
  });

  it("compares and multiplies exactly", () => {
    expect(compare("1.10", "1.1")).toBe(0);
    expect(compare("65000.01", "65000")).toBe(1);
    expect(multiply("65000.01", "0.0003", 6)).toBe("19.500003");
  });

  it("keeps integers beyond 2^53 exact", () => {
    expect(fromUnits(toUnits("92233720368.54775807", 8)!, 8)).toBe("92233720368.54775807");
  });
});
