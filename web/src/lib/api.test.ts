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
