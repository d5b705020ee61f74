import { describe, expect, it } from "vitest";
import type { FundingNetwork } from "./funding";
import {
  type AddressEntry,
  approvalText,
  assetDecimals,
  checkHolder,
  checkIban,
  coolingLeft,
  defaultWithdrawNetwork,
  formatDuration,
  IdempotencyKeys,
  minimumWithdrawal,
  networkName,
  networksFromRules,
  outcomeUnknown,
  quoteWithdrawal,
  type RulesAnswer,
  type Withdrawal,
  withdrawAssets,
  withdrawErrorText,
  withdrawNetworksFor,
  type WithdrawalRules,
} from "./withdraw";

const usdt = (over: Partial<WithdrawalRules> = {}): WithdrawalRules => ({
  asset: "USDT",
  network: "ethereum",
  contract: "0xC5273AbFb36550090095B1EDec019216AD21BE6c",
  confirmations: 12,
  min_deposit: "1.000000",
  withdrawal_fee: "5.000000",
  deposit_enabled: true,
  withdrawal_enabled: true,
  ...over,
});

describe("withdrawal amounts", () => {
  it("takes the asset's decimals from how the server writes the fee", () => {
    expect(assetDecimals(usdt())).toBe(6);
    expect(assetDecimals(usdt({ withdrawal_fee: "0.00020000" }))).toBe(8);
    expect(assetDecimals(usdt({ withdrawal_fee: "3" }))).toBe(0);
  });

  it("puts the minimum above the fee, or at the configured minimum when higher", () => {
    expect(minimumWithdrawal(usdt())).toBe("5.000001");
    expect(minimumWithdrawal(usdt({ min_withdrawal: "20.000000" }))).toBe("20.000000");
    expect(minimumWithdrawal(usdt({ min_withdrawal: "1.000000" }))).toBe("5.000001");
  });

  it("computes the fee and the net amount exactly (no float)", () => {
    const q = quoteWithdrawal("100.1", usdt(), "1000");
    expect(q.error).toBeNull();
    expect(q.fee).toBe("5.000000");
    expect(q.net).toBe("95.100000");
    // 0.1 + 0.2 style amounts stay exact
    const b = quoteWithdrawal("0.3", usdt({ withdrawal_fee: "0.1", asset: "ETH" }), null);
    expect(b.net).toBe("0.2");
  });

  it("refuses what the server would, with its codes, before any request", () => {
    const code = (amount: string, available: string | null = "1000") =>
      quoteWithdrawal(amount, usdt(), available).error?.code ?? null;
    expect(code("")).toBe("amount_required");
    expect(code("abc")).toBe("invalid_amount");
    expect(code("1,000")).toBe("invalid_amount");
    expect(code("-10")).toBe("invalid_amount");
    expect(code("0")).toBe("invalid_amount");
    expect(code("10.0000001")).toBe("invalid_amount"); // 7 decimals, USDT has 6
    expect(code("10.0000000")).toBeNull(); // trailing zeros are fine
    expect(code("5")).toBe("below_minimum"); // equal to the fee: nothing would arrive
    expect(code("5.000001")).toBeNull();
    expect(code("1000.000001")).toBe("insufficient_balance");
    expect(code("1000")).toBeNull();
    expect(code("99999", null)).toBeNull(); // balance unknown: the server decides
  });

  it("names the minimum and the fee in the below-minimum message", () => {
    const q = quoteWithdrawal("4", usdt(), "100");
    expect(q.error?.text).toContain("5.000001");
    expect(q.error?.text).toContain("5.000000");
  });
});

describe("networks for a withdrawal", () => {
  const NETWORKS: FundingNetwork[] = [
    {
      network: "bsc",
      kind: "evm",
      chain: null,
      chain_id: 97,
      deposit_addresses: true,
      assets: [usdt({ network: "bsc", withdrawal_enabled: false })],
    },
    { network: "ethereum", kind: "evm", chain: null, chain_id: 1337, deposit_addresses: true, assets: [usdt()] },
  ];

  it("marks a suspended network and picks an open one first", () => {
    const choices = withdrawNetworksFor(NETWORKS, "USDT");
    expect(choices.map((c) => [c.network, c.disabled !== null])).toEqual([
      ["bsc", true],
      ["ethereum", false],
    ]);
    expect(choices[0].disabled).toContain("suspended");
    expect(defaultWithdrawNetwork(choices)).toBe("ethereum");
    expect(withdrawNetworksFor(NETWORKS, "BTC")).toEqual([]);
    expect(defaultWithdrawNetwork([])).toBeNull();
  });
});

describe("the address book's cooling-off", () => {
  const entry = (usable: boolean, usableFrom: number): AddressEntry => ({
    id: 1,
    network: "ethereum",
    address: "0x0000000000000000000000000000000000000001",
    label: "cold wallet",
    created_at: 0,
    usable_from: usableFrom,
    usable,
  });

  it("counts down to usable_from and trusts the server's usable flag", () => {
    expect(coolingLeft(entry(false, 10_000), 4_000)).toBe(6_000);
    expect(coolingLeft(entry(false, 10_000), 12_000)).toBe(0);
    expect(coolingLeft(entry(true, 10_000), 0)).toBe(0); // usable: the clock does not matter
  });

  it("says durations rounded up", () => {
    expect(formatDuration(400)).toBe("1 s");
    expect(formatDuration(59_000)).toBe("59 s");
    expect(formatDuration(61_000)).toBe("2 min");
    expect(formatDuration(24 * 3_600_000)).toBe("24 h");
    expect(formatDuration(24 * 3_600_000 - 60_000)).toBe("23 h 59 min");
  });
});

describe("idempotency keys", () => {
  const req = { asset: "USDT", network: "ethereum", address: "0xabc", amount: "100" };
  const counter = () => {
    let n = 0;
    return () => `key-${++n}`;
  };

  it("keeps the key of a request until the server answers it (double click, lost answer)", () => {
    const keys = new IdempotencyKeys(counter());
    const first = keys.keyFor(req);
    expect(keys.keyFor({ ...req })).toBe(first); // a double click: same key
    expect(outcomeUnknown(0)).toBe(true); // network error: no answered(), retry reuses
    expect(outcomeUnknown(503)).toBe(true);
    expect(keys.keyFor(req)).toBe(first);
    keys.answered();
    expect(keys.keyFor(req)).not.toBe(first); // answered: the next one is a new request
  });

  it("gives a changed request a new key (it is another withdrawal)", () => {
    const keys = new IdempotencyKeys(counter());
    const a = keys.keyFor(req);
    const b = keys.keyFor({ ...req, amount: "101" });
    expect(b).not.toBe(a);
    expect(outcomeUnknown(400)).toBe(false);
    expect(outcomeUnknown(409)).toBe(false);
  });

  it("makes keys the server accepts (8-64 of [A-Za-z0-9_-]) and never the same twice", () => {
    const keys = new IdempotencyKeys();
    const seen = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const k = keys.keyFor({ ...req, amount: String(i + 10) });
      expect(k).toMatch(/^[A-Za-z0-9_-]{8,64}$/);
      seen.add(k);
    }
    expect(seen.size).toBe(50);
  });
});

describe("texts", () => {
  const w = (over: Partial<Withdrawal>): Withdrawal => ({
    id: 1,
    asset: "USDT",
    network: "ethereum",
    address: "0xabc",
    amount: "1500.000000",
    fee: "5.000000",
    net_amount: "1495.000000",
    status: "pending_approval",
    required_approvals: 2,
    txid: null,
    block_number: null,
    reason: null,
    created_at: 0,
    updated_at: 0,
    ...over,
  });

  it("says when a second approver is needed", () => {
    expect(approvalText(w({}), false)).toBe("2 different people");
    expect(approvalText(w({}), true)).toContain("a second person must");
    expect(approvalText(w({ approvals: 1 }), false)).toBe("2 people: 1 of 2");
    expect(approvalText(w({ required_approvals: 1 }), false)).toBe("1 person");
    expect(approvalText(w({ status: "approved" }), true)).toBe("2 people: done");
    // the queue's approved_by: the count, and (the caller among them) "you approved"
    expect(approvalText(w({ approved_by: [7] }), false)).toBe("2 people: 1 of 2");
    expect(approvalText(w({ approved_by: [7] }), true)).toContain("1 of 2, you approved");
  });

  it("turns the server's codes into what to do", () => {
    expect(withdrawErrorText("two_factor_required", "x")).toContain("Security page");
    expect(withdrawErrorText("address_cooling_off", "x")).toContain("waiting time");
    expect(withdrawErrorText("something_new", "odd")).toBe("odd (something_new)");
  });
});

describe("the rules answer (GET /api/v1/withdrawals/rules)", () => {
  const answer: RulesAnswer = {
    require_2fa: true,
    cooling_off_hours: 24,
    networks: [
      {
        network: "bitcoin",
        payouts: false,
        assets: [
          { asset: "BTC", decimals: 8, withdrawal_enabled: false, fee: "0.00010000", minimum: "0.00020000", auto_approve_below: "0.00000000", two_person_above: null },
        ],
      },
      {
        network: "ethereum",
        payouts: true,
        assets: [
          { asset: "USDT", decimals: 6, withdrawal_enabled: true, fee: "1.000000", minimum: "10.000000", auto_approve_below: "100.000000", two_person_above: "1000.000000" },
          { asset: "ETH", decimals: 18, withdrawal_enabled: false, fee: "0.001", minimum: "0.01", auto_approve_below: "0", two_person_above: null },
        ],
      },
      {
        network: "sepa",
        payouts: true,
        assets: [
          { asset: "EUR", decimals: 2, withdrawal_enabled: true, fee: "0.00", minimum: "1.00", auto_approve_below: "0.00", two_person_above: null },
        ],
      },
    ],
  };
  const networks = networksFromRules(answer);

  it("takes the server's minimum and decimals instead of guessing them", () => {
    const usdt = withdrawNetworksFor(networks, "USDT")[0];
    expect(usdt.disabled).toBeNull();
    expect(minimumWithdrawal(usdt.rules)).toBe("10.000000");
    expect(quoteWithdrawal("9.999999", usdt.rules, "50").error?.code).toBe("below_minimum");
    expect(quoteWithdrawal("10", usdt.rules, "50")).toMatchObject({ net: "9.000000", error: null });
    // ETH's fee is written with 3 decimals, but the asset has 18
    const eth = withdrawNetworksFor(networks, "ETH")[0];
    expect(assetDecimals(eth.rules)).toBe(18);
    expect(quoteWithdrawal("0.0100000001", eth.rules, null).error).toBeNull();
  });

  it("says why a network is closed: no payouts here, or switched off", () => {
    const btc = withdrawNetworksFor(networks, "BTC")[0];
    expect(btc.disabled).toContain("does not send BTC on bitcoin");
    const eth = withdrawNetworksFor(networks, "ETH")[0];
    expect(eth.disabled).toContain("suspended");
  });

  it("offers bank transfers as the sepa network", () => {
    const eur = withdrawNetworksFor(networks, "EUR");
    expect(eur.map((c) => [c.network, c.disabled])).toEqual([["sepa", null]]);
    expect(withdrawAssets(networks)).toEqual(["BTC", "ETH", "EUR", "USDT"]);
    expect(networkName("sepa")).toBe("Bank transfer (SEPA)");
    expect(networkName("ethereum")).toBe("ethereum");
  });
});

describe("IBAN and holder checks (the address book's sepa entries)", () => {
  it("accepts a valid IBAN typed in groups and stores it compact", () => {
    expect(checkIban("de89 3704 0044 0532 0130 00")).toEqual({ iban: "DE89370400440532013000", error: null });
    expect(checkIban("GB82WEST12345698765432").error).toBeNull();
  });
  it("refuses a typo and a non-IBAN with the server's codes", () => {
    expect(checkIban("DE89370400440532013001").error?.code).toBe("iban_checksum_mismatch");
    expect(checkIban("DE8937040044").error?.code).toBe("invalid_iban");
    expect(checkIban("0x52908400098527886E0F7030069857D2E4169EE7").error?.code).toBe("invalid_iban");
  });
  it("needs the holder's name, 2 to 64 characters", () => {
    expect(checkHolder("Ada Lovelace")).toBeNull();
    expect(checkHolder(" A ")).not.toBeNull();
    expect(checkHolder("x".repeat(65))).not.toBeNull();
  });
});
