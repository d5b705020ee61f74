import { describe, expect, it } from "vitest";
import { nextTab } from "./tabs";

describe("nextTab (ARIA tab pattern)", () => {
  it("moves with the arrows and wraps at both ends", () => {
    expect(nextTab("ArrowRight", 0, 3)).toBe(1);
    expect(nextTab("ArrowRight", 2, 3)).toBe(0);
    expect(nextTab("ArrowLeft", 0, 3)).toBe(2);
    expect(nextTab("ArrowDown", 1, 3)).toBe(2);
  });
  it("jumps with Home and End", () => {
    expect(nextTab("Home", 2, 4)).toBe(0);
    expect(nextTab("End", 0, 4)).toBe(3);
  });
  it("ignores other keys and empty lists, and starts at the first when none is selected", () => {
    expect(nextTab("Enter", 1, 3)).toBeNull();
    expect(nextTab("ArrowRight", 0, 0)).toBeNull();
    expect(nextTab("ArrowRight", -1, 3)).toBe(1);
  });
});
