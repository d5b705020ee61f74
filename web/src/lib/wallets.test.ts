import { describe, expect, it } from "vitest";
import { saveWallet, savedWallet, walletKey, walletLabel } from "./wallets";

class MemoryStorage {
  data = new Map<string, string>();
  getItem(k: string): string | null {
    return this.data.get(k) ?? null;
  }
  setItem(k: string, v: string): void {
    this.data.set(k, v);
  }
  removeItem(k: string): void {
    this.data.delete(k);
  }
}

describe("walletLabel", () => {
  it("says spot for an unmarked order and names the margin wallet", () => {
    expect(walletLabel({})).toBe("Spot");
    expect(walletLabel({ wallet: "margin", margin_wallet: "isolated" })).toBe("Isolated");
    expect(walletLabel({ wallet: "margin", margin_wallet: "cross" })).toBe("Cross");
  });
  it("says margin when the server does not say which wallet", () => {
    expect(walletLabel({ wallet: "margin" })).toBe("Margin");
  });
});

describe("remembered wallet per symbol", () => {
  it("keeps each symbol's own choice", () => {
    const s = new MemoryStorage();
    expect(savedWallet(s, "BTC-USDT")).toBe("spot");
    saveWallet(s, "BTC-USDT", "isolated");
    saveWallet(s, "ETH-USDT", "cross");
    expect(savedWallet(s, "BTC-USDT")).toBe("isolated");
    expect(savedWallet(s, "ETH-USDT")).toBe("cross");
    expect(savedWallet(s, "SOL-USDT")).toBe("spot");
  });
  it("forgets on spot and reads anything else as spot", () => {
    const s = new MemoryStorage();
    saveWallet(s, "BTC-USDT", "cross");
    saveWallet(s, "BTC-USDT", "spot");
    expect(s.data.has(walletKey("BTC-USDT"))).toBe(false);
    s.setItem(walletKey("BTC-USDT"), "futures");
    expect(savedWallet(s, "BTC-USDT")).toBe("spot");
  });
  it("survives a storage that throws or is missing", () => {
    const broken = {
      getItem: () => {
        throw new Error("denied");
      },
      setItem: () => {
        throw new Error("full");
      },
      removeItem: () => {
        throw new Error("denied");
      },
    };
    expect(savedWallet(broken, "BTC-USDT")).toBe("spot");
    expect(() => saveWallet(broken, "BTC-USDT", "cross")).not.toThrow();
    expect(savedWallet(null, "BTC-USDT")).toBe("spot");
  });
});
