import { describe, expect, it } from "vitest";
import {
  confirmationProgress,
  type DepositRecord,
  depositAmountText,
  depositMethodText,
  depositQuery,
  depositStatusText,
  needsAttention,
  nextPollMs,
  PENDING_POLL_MS,
  shortRef,
} from "./deposits";

function deposit(over: Partial<DepositRecord> = {}): DepositRecord {
  return {
    id: "chain:ethereum:0xabc:-1",
    kind: "chain",
    asset: "ETH",
    network: "ethereum",
    amount: "0.50000000",
    status: "pending",
    reason: null,
    txid: "0x5c504ed432cb51138bcf09aa5e8a410dd4a1e204ef84bfed1be16dfba1b22060",
    reference: "ethereum:0x5c50:-1",
    block_number: 10,
    confirmations: 2,
    confirmations_required: 12,
    booking_date: null,
    created_at: 1_700_000_000_000,
    updated_at: 1_700_000_000_000,
    ...over,
  };
}

describe("depositStatusText", () => {
  it("counts the confirmations of a pending chain deposit", () => {
    expect(depositStatusText(deposit())).toBe("Seen, 2/12 confirmations");
  });
  it("never shows more confirmations than required while pending", () => {
    expect(depositStatusText(deposit({ confirmations: 15 }))).toBe("Seen, 12/12 confirmations");
  });
  it("shows zero before the watcher knows the tip", () => {
    expect(depositStatusText(deposit({ confirmations: null }))).toBe("Seen, 0/12 confirmations");
  });
  it("says credited, orphaned, returned and refused plainly", () => {
    expect(depositStatusText(deposit({ status: "credited" }))).toBe("Credited");
    expect(depositStatusText(deposit({ status: "orphaned" }))).toMatch(/reorg/);
    expect(depositStatusText(deposit({ kind: "bank", status: "returned" }))).toBe(
      "Returned to the sender",
    );
    expect(depositStatusText(deposit({ status: "failed", reason: "below_minimum" }))).toBe(
      "Not credited: below the minimum deposit, not credited",
    );
    expect(depositStatusText(deposit({ status: "failed", reason: "insufficient" }))).toBe(
      "Not credited: insufficient",
    );
  });
  it("says a bank line in review and an unpaid card payment", () => {
    const bank = deposit({ kind: "bank", network: "bank", reason: "review", confirmations_required: null });
    expect(depositStatusText(bank)).toBe("Pending: being checked by our team");
    const card = deposit({ kind: "card", network: "card", confirmations_required: null });
    expect(depositStatusText(card)).toBe("Waiting for the card payment");
  });
});

describe("polling", () => {
  it("polls while a deposit is pending and stops once all are final", () => {
    expect(nextPollMs([deposit({ status: "credited" }), deposit()])).toBe(PENDING_POLL_MS);
    expect(nextPollMs([deposit({ status: "credited" }), deposit({ status: "orphaned" })])).toBeNull();
    expect(nextPollMs([])).toBeNull();
  });
});

describe("formatting", () => {
  it("gives the confirmation progress of pending chain deposits only", () => {
    expect(confirmationProgress(deposit({ confirmations: 3 }))).toBe(0.25);
    expect(confirmationProgress(deposit({ confirmations: 40 }))).toBe(1);
    expect(confirmationProgress(deposit({ status: "credited" }))).toBeNull();
    expect(confirmationProgress(deposit({ kind: "bank" }))).toBeNull();
  });
  it("shortens a txid in the middle and keeps short references", () => {
    expect(shortRef(deposit())).toBe("0x5c504ed4…b22060");
    expect(shortRef(deposit({ txid: null, reference: "HIST-1" }))).toBe("HIST-1");
  });
  it("keeps the server's decimals and groups thousands", () => {
    expect(depositAmountText(deposit({ amount: "12500.25" }))).toBe("12,500.25");
    expect(depositAmountText(deposit())).toBe("0.50000000");
    expect(depositAmountText(deposit({ amount: null }))).toBe("-");
  });
  it("names the method", () => {
    expect(depositMethodText(deposit())).toBe("ethereum");
    expect(depositMethodText(deposit({ kind: "bank" }))).toBe("Bank transfer");
    expect(depositMethodText(deposit({ kind: "card" }))).toBe("Card");
  });
  it("flags orphaned and refused deposits for staff", () => {
    expect(needsAttention(deposit({ status: "orphaned" }))).toBe(true);
    expect(needsAttention(deposit({ status: "failed" }))).toBe(true);
    expect(needsAttention(deposit())).toBe(false);
  });
});

describe("depositQuery", () => {
  it("leaves out empty filters and encodes the cursor", () => {
    expect(depositQuery({})).toBe("?limit=50");
    expect(depositQuery({ asset: "ETH", status: "", cursor: "17~chain:ethereum:0xab:-1" })).toBe(
      "?asset=ETH&limit=50&cursor=17%7Echain%3Aethereum%3A0xab%3A-1",
    );
    expect(depositQuery({ userId: 7, network: "bank", status: "pending,orphaned", limit: 100 })).toBe(
      "?user_id=7&status=pending%2Corphaned&network=bank&limit=100",
    );
  });
});
