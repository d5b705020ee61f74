import { describe, expect, it } from "vitest";
import { type Alert, ageText, bpsPercent, checkBps, checkTier, detailsText, sortAlerts } from "./backoffice";

const alert = (id: number, severity: Alert["severity"], status: Alert["status"] = "open"): Alert => ({
  id,
  kind: "x",
  severity,
  message: "m",
  details: {},
  created_at: 0,
  last_seen_at: 0,
  count: 1,
  status,
  acknowledged_by: null,
  acknowledged_at: null,
});

describe("ageText", () => {
  it("says how long ago, in the largest whole unit", () => {
    const now = 1_000_000_000;
    expect(ageText(now - 1000, now)).toBe("just now");
    expect(ageText(now - 42_000, now)).toBe("42 s");
    expect(ageText(now - 5 * 60_000 - 59_000, now)).toBe("5 min");
    expect(ageText(now - 3 * 3_600_000, now)).toBe("3 h");
    expect(ageText(now - 2 * 86_400_000, now)).toBe("2 d");
  });
  it("never shows a negative age (a server clock ahead of the browser's)", () => {
    expect(ageText(2000, 1000)).toBe("just now");
  });
});

describe("sortAlerts", () => {
  it("shows open alerts first, the most severe first, then the newest", () => {
    const sorted = sortAlerts([
      alert(1, "critical", "acknowledged"),
      alert(2, "info"),
      alert(3, "critical"),
      alert(4, "warning"),
      alert(5, "critical"),
    ]);
    expect(sorted.map((a) => a.id)).toEqual([5, 3, 4, 2, 1]);
  });
});

describe("detailsText", () => {
  it("lists details by key, strings bare and others as JSON", () => {
    expect(detailsText({ network: "eth", block: 12, ok: true, none: null })).toBe(
      "block=12 network=eth none=null ok=true",
    );
  });
});

describe("checkBps and checkTier", () => {
  it("take whole numbers in range", () => {
    expect(checkBps("0")).toEqual({ ok: true, value: 0 });
    expect(checkBps(" 10000 ")).toEqual({ ok: true, value: 10_000 });
    expect(checkTier("100")).toEqual({ ok: true, value: 100 });
  });
  it.each(["", "-1", "10001", "1.5", "1e3", "abc", "0x10", "９"])("refuse bps %j", (text) => {
    const r = checkBps(text, "maker");
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toContain("maker");
  });
  it("refuses a tier above 100", () => {
    expect(checkTier("101").ok).toBe(false);
  });
});

describe("bpsPercent", () => {
  it("shows basis points as a percentage with two decimals", () => {
    expect(bpsPercent(0)).toBe("0%");
    expect(bpsPercent(10)).toBe("0.10%");
    expect(bpsPercent(25)).toBe("0.25%");
    expect(bpsPercent(150)).toBe("1.50%");
    expect(bpsPercent(10_000)).toBe("100.00%");
  });
});
