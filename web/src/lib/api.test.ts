import { afterEach, describe, expect, it, vi } from "vitest";
import { Api, ApiError } from "./api";

function stubFetch(status: number, body: unknown) {
  const calls: { url: string; init: RequestInit }[] = [];
  vi.stubGlobal("fetch", async (url: string, init: RequestInit) => {
    calls.push({ url, init });
    return new Response(status === 204 ? null : JSON.stringify(body), { status });
  });
  return calls;
}

describe("api client", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("sends the session as a Bearer token and JSON bodies", async () => {
    const calls = stubFetch(201, { id: 1 });
    const api = new Api();
    api.token = "abc";
    await api.placeOrder({ symbol: "BTC-USDT" });
    const h = calls[0].init.headers as Record<string, string>;
    expect(h.Authorization).toBe("Bearer abc");
    expect(h["Content-Type"]).toBe("application/json");
    expect(calls[0].init.body).toBe('{"symbol":"BTC-USDT"}');
  });

  it("turns {code, message} errors into ApiError with status, code and filter", async () => {
    stubFetch(400, { code: "filter_violated", message: "off the tick", filter: "tick_size" });
    const err = await new Api().placeOrder({}).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 400, code: "filter_violated", filter: "tick_size" });
  });

  it("sends a staff member's 2FA code only with back-office changes", async () => {
    const calls = stubFetch(200, {});
    const api = new Api();
    api.staffCode = "123456";
    await api.adminFreeze(7, "why");
    await api.adminUsers();
    await api.cancelAll();
    const sent = calls.map((c) => (c.init.headers as Record<string, string>)["TW-TOTP"]);
    expect(sent).toEqual(["123456", undefined, undefined]);
  });

  it("sends the 2FA code with halts and KYC decisions, and the reason or note", async () => {
    const calls = stubFetch(200, {});
    const api = new Api();
    api.staffCode = "654321";
    await api.adminSetHalted("ETH-USDT", true, "oracle outage");
    await api.adminSetHalted("ETH-USDT", false, "oracle back");
    await api.kycReject(3, "blurred");
    await api.kycQueue();
    expect(calls.map((c) => `${c.init.method} ${c.url}`)).toEqual([
      "POST /api/v1/admin/markets/ETH-USDT/halt",
      "POST /api/v1/admin/markets/ETH-USDT/resume",
      "POST /api/v1/admin/kyc/documents/3/reject",
      "GET /api/v1/admin/kyc/documents?limit=200",
    ]);
    const sent = calls.map((c) => (c.init.headers as Record<string, string>)["TW-TOTP"]);
    expect(sent).toEqual(["654321", "654321", "654321", undefined]);
    expect(calls[0].init.body).toBe('{"reason":"oracle outage"}');
    expect(calls[2].init.body).toBe('{"note":"blurred"}');
  });

  it("asks for a deposit address with the asset and network escaped", async () => {
    const calls = stubFetch(200, {});
    await new Api().depositAddress("USDT", "bsc");
    expect(calls[0].url).toBe("/api/v1/deposits/address?asset=USDT&network=bsc");
    await new Api().depositAddress("A&B", "x y");
    expect(calls[1].url).toBe("/api/v1/deposits/address?asset=A%26B&network=x%20y");
  });

  it("reports an unreachable server as network_error", async () => {
    vi.stubGlobal("fetch", async () => {
      throw new TypeError("failed to fetch");
    });
    await expect(new Api().markets()).rejects.toMatchObject({ code: "network_error" });
  });
});

describe("withdrawal and fiat calls", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("sends the Idempotency-Key and the user's 2FA code as headers of one call", async () => {
    const calls = stubFetch(201, { id: 1 });
    const api = new Api();
    const body = { asset: "USDT", network: "ethereum", address: "0xabc", amount: "10" };
    await api.requestWithdrawal(body, "k".repeat(32), "123456");
    await api.requestWithdrawal(body, "k".repeat(32));
    await api.withdrawals();
    const h = calls.map((c) => c.init.headers as Record<string, string>);
    expect(h[0]["Idempotency-Key"]).toBe("k".repeat(32));
    expect(h[0]["TW-TOTP"]).toBe("123456");
    expect(h[1]["TW-TOTP"]).toBeUndefined();
    expect(h[2]["Idempotency-Key"]).toBeUndefined();
    expect(JSON.parse(calls[0].init.body as string)).toEqual(body);
  });

  it("sends the staff code with withdrawal decisions and a statement as raw XML", async () => {
    const calls = stubFetch(200, {});
    const api = new Api();
    api.staffCode = "222333";
    await api.adminApproveWithdrawal(4);
    await api.adminRejectWithdrawal(5, "sanctions hit");
    await api.adminWithdrawals("pending_approval");
    const xml = new Blob(["<Document/>"], { type: "application/xml" });
    await api.adminFiatImport(xml);
    expect(calls.map((c) => `${c.init.method} ${c.url}`)).toEqual([
      "POST /api/v1/admin/withdrawals/4/approve",
      "POST /api/v1/admin/withdrawals/5/reject",
      "GET /api/v1/admin/withdrawals?status=pending_approval&limit=200",
      "POST /api/v1/admin/fiat/statements",
    ]);
    const h = calls.map((c) => c.init.headers as Record<string, string>);
    expect(h.map((x) => x["TW-TOTP"])).toEqual(["222333", "222333", undefined, "222333"]);
    expect(h[3]["Content-Type"]).toBe("application/xml");
    expect(calls[3].init.body).toBe(xml);
  });
});
