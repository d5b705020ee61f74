import { describe, expect, it } from "vitest";
import { fiatErrorText, groupIban, knownCurrencies } from "./fiat";

describe("fiat", () => {
  it("groups an IBAN in fours, as banks print it", () => {
    expect(groupIban("DE89370400440532013000")).toBe("DE89 3704 0044 0532 0130 00");
    expect(groupIban("DE89 3704 0044 0532 0130 00")).toBe("DE89 3704 0044 0532 0130 00");
  });

  it("reads the currencies an unknown_currency refusal names", () => {
    expect(knownCurrencies("'EUR' is not a fiat currency here (known: CHF, USD)")).toEqual([
      "CHF",
      "USD",
    ]);
    expect(knownCurrencies("no list")).toEqual([]);
  });

  it("says the refusals plainly", () => {
    expect(fiatErrorText("kyc_level_required", "x")).toContain("level 2");
    expect(fiatErrorText("other", "msg")).toBe("msg (other)");
  });
});
