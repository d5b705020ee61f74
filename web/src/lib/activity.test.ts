import { describe, expect, it } from "vitest";
import { describeDetails, describeEvent } from "./activity";

describe("security activity", () => {
  it("names known events and derives the others from their code", () => {
    expect(describeEvent({ event: "signed_in", kind: "security" })).toBe("Signed in");
    expect(describeEvent({ event: "api_key_created", kind: "security" })).toBe("API key created");
    expect(describeEvent({ event: "requested", kind: "withdrawal" })).toBe("Withdrawal: requested");
  });

  it("lists details without empty values", () => {
    expect(describeDetails({ key: "k1", method: "password", ip: null, note: "" })).toBe(
      "key: k1, method: password",
    );
    expect(describeDetails({})).toBe("");
  });
});
