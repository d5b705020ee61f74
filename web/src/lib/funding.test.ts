import { describe, expect, it } from "vitest";
import {
  defaultNetwork,
  depositAssets,
  depositErrorText,
  type FundingNetwork,
  networksFor,
  svgDataUri,
} from "./funding";

const rules = (asset: string, network: string, deposit_enabled = true) => ({
  asset,
  network,
  contract: null,
  confirmations: 12,
  min_deposit: "0.001",
  withdrawal_fee: "0.0005",
  deposit_enabled,
  withdrawal_enabled: true,
});

const NETWORKS: FundingNetwork[] = [
  {
    network: "bitcoin",
    kind: "utxo",
    chain: "regtest",
    chain_id: null,
    deposit_addresses: true,
    assets: [rules("BTC", "bitcoin")],
  },
  {
    network: "ethereum",
    kind: "evm",
    chain: null,
    chain_id: 1337,
    deposit_addresses: true,
    assets: [rules("ETH", "ethereum"), rules("USDT", "ethereum", false)],
  },
  {
    network: "bsc",
    kind: "evm",
    chain: null,
    chain_id: 97,
    deposit_addresses: false,
    assets: [rules("USDT", "bsc")],
  },
];

describe("deposit choices", () => {
  it("lists every asset once, sorted", () => {
    expect(depositAssets(NETWORKS)).toEqual(["BTC", "ETH", "USDT"]);
    expect(depositAssets([])).toEqual([]);
  });

  it("gives each network of an asset with why it is closed", () => {
    const usdt = networksFor(NETWORKS, "USDT");
    expect(usdt.map((c) => c.network)).toEqual(["ethereum", "bsc"]);
    expect(usdt[0].disabled).toMatch(/suspended/);
    expect(usdt[0].disabled).toMatch(/Do not send USDT/);
    expect(usdt[1].disabled).toMatch(/not offered/);
    const btc = networksFor(NETWORKS, "BTC");
    expect(btc).toHaveLength(1);
    expect(btc[0].disabled).toBeNull();
    expect(btc[0].rules.confirmations).toBe(12);
  });

  it("picks an open network first, else the first to explain why", () => {
    expect(defaultNetwork(networksFor(NETWORKS, "ETH"))).toBe("ethereum");
    expect(defaultNetwork(networksFor(NETWORKS, "USDT"))).toBe("ethereum");
    const open = [...NETWORKS];
    open[2] = { ...NETWORKS[2], deposit_addresses: true };
    expect(defaultNetwork(networksFor(open, "USDT"))).toBe("bsc");
    expect(defaultNetwork([])).toBeNull();
  });

  it("says the server's refusals plainly, keeping unknown codes", () => {
    expect(depositErrorText("deposits_disabled", "x")).toMatch(/not offered/);
    expect(depositErrorText("funding_unavailable", "x")).toMatch(/does not take/);
    expect(depositErrorText("rate_limited", "slow down")).toBe("slow down (rate_limited)");
  });
});

describe("QR images", () => {
  it("adds the SVG namespace an inline SVG leaves out (else the image is broken)", () => {
    const uri = svgDataUri('<svg width="76" height="76" class="segno"><path d="M2 2h1"/></svg>');
    const svg = atob(uri.slice("data:image/svg+xml;base64,".length));
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg" width="76"')).toBe(true);
    const kept = '<svg xmlns="http://www.w3.org/2000/svg" width="1"></svg>';
    expect(atob(svgDataUri(kept).split(",")[1])).toBe(kept);
  });
});
