import { describe, expect, it } from "vitest";
import {
  checkDocument,
  kindLabel,
  limitsText,
  MAX_DOCUMENT_BYTES,
  type MyDocument,
  statusText,
  uploadErrorText,
} from "./kyc";

const doc = (status: MyDocument["status"], note: string | null = null): MyDocument => ({
  id: 1,
  kind: "passport",
  content_type: "image/png",
  size: 10,
  sha256: "00",
  status,
  uploaded_at: 0,
  reviewed_at: null,
  note,
});

describe("checkDocument", () => {
  it("accepts JPEG, PNG and PDF up to 5 MiB", () => {
    expect(checkDocument({ type: "image/jpeg", size: 1 })).toBeNull();
    expect(checkDocument({ type: "image/png", size: MAX_DOCUMENT_BYTES })).toBeNull();
    expect(checkDocument({ type: "application/pdf", size: 1000 })).toBeNull();
  });
  it("refuses other types, empty and too large files, and no file", () => {
    expect(checkDocument(null)).toMatch(/Choose a file/);
    expect(checkDocument({ type: "image/gif", size: 10 })).toMatch(/JPEG, PNG or PDF/);
    expect(checkDocument({ type: "", size: 10 })).toMatch(/JPEG, PNG or PDF/);
    expect(checkDocument({ type: "image/png", size: 0 })).toMatch(/empty/);
    expect(checkDocument({ type: "image/png", size: MAX_DOCUMENT_BYTES + 1 })).toMatch(
      /5\.0 MB: the limit is 5 MB/,
    );
  });
});

describe("texts", () => {
  it("name kinds and review states for a person", () => {
    expect(kindLabel("id_card")).toBe("Identity card");
    expect(kindLabel("other")).toBe("other");
    expect(statusText(doc("pending"))).toBe("Waiting for review");
    expect(statusText(doc("approved"))).toBe("Approved");
    expect(statusText(doc("rejected", "blurry"))).toBe("Rejected: blurry");
    expect(statusText(doc("rejected"))).toBe("Rejected");
  });
  it("explain the server's refusals", () => {
    expect(uploadErrorText("invalid_document", "x")).toMatch(/content was checked/);
    expect(uploadErrorText("payload_too_large", "x")).toMatch(/5 MB/);
    expect(uploadErrorText("rate_limited", "slow down")).toBe("slow down (rate_limited)");
  });
  it("list a level's daily limits", () => {
    expect(limitsText({ withdraw_per_day: { USDT: "50000", BTC: "2" }, fiat: false })).toBe(
      "2 BTC, 50,000 USDT",
    );
    expect(limitsText({ withdraw_per_day: {}, fiat: false })).toBe("none");
  });
});
