/**
 * The withdrawal page's logic, framework-free so Vitest covers it: which assets and
 * networks take withdrawals, the minimum, fee and net amount of a request, the checks
 * the server would make on the amount (with its codes), the address book's cooling-off,
 * what each status and refusal means for a person, and the Idempotency-Key that makes
 * a double click or a retry after a lost answer one withdrawal, not two.
 *
 * Amounts stay decimal strings and BigInt units (decimal.ts); the asset's decimals are
 * those the server writes its amounts with (`withdrawal_fee` carries all of them).
 */
import { compare, fromUnits, parseDecimal, toUnits } from "./decimal";
import type { AssetRules, FundingNetwork } from "./funding";

/** A withdrawal as the API answers it (`timeline` on the detail only, `user_id` for staff). */
export interface Withdrawal {
  id: number;
  asset: string;
  network: string;
  address: string;
  amount: string;
  fee: string;
  net_amount: string;
  status: string;
  required_approvals: number;
  /** How many staff approved so far, when the server says (it may not). */
  approvals?: number;
  /** Who approved so far (the staff queue's entries carry it). */
  approved_by?: number[];
  txid: string | null;
  block_number: number | null;
  reason: string | null;
  created_at: number;
  updated_at: number;
  user_id?: number;
  timeline?: TimelineEvent[];
}

export interface TimelineEvent {
  status: string;
  at: number;
  actor_id: number | null;
  note: string | null;
}

/** An entry of the withdrawal address book. */
export interface AddressEntry {
  id: number;
  network: string;
  address: string;
  label: string;
  created_at: number;
  /** From this time (ms) the address can be withdrawn to (the cooling-off's end). */
  usable_from: number;
  usable: boolean;
}

/** Rules of an asset on a network, with the fields `GET /api/v1/withdrawals/rules` adds:
 *  the effective minimum, the asset's decimals, and whether the network has payouts here. */
export type WithdrawalRules = AssetRules & {
  min_withdrawal?: string;
  decimals?: number;
  payouts?: boolean;
};

/** The "network" of bank-transfer (fiat) withdrawals: its address is an IBAN and its
 *  address book label the account holder's name (docs/fiat.md). */
export const FIAT_NETWORK = "sepa";

/** `GET /api/v1/withdrawals/rules` (public): what the form checks before asking. */
export interface RulesAnswer {
  require_2fa: boolean;
  cooling_off_hours: number;
  networks: {
    network: string;
    payouts: boolean;
    assets: {
      asset: string;
      decimals: number;
      withdrawal_enabled: boolean;
      fee: string;
      minimum: string;
      auto_approve_below: string;
      two_person_above: string | null;
    }[];
  }[];
}

/** The rules answer in the shape the page's choices use (one entry per network and asset). */
export function networksFromRules(rules: RulesAnswer): FundingNetwork[] {
  return rules.networks.map((n) => ({
    network: n.network,
    kind: n.network === FIAT_NETWORK ? "fiat" : "chain",
    chain: null,
    chain_id: null,
    deposit_addresses: false,
    assets: n.assets.map(
      (a): WithdrawalRules => ({
        asset: a.asset,
        network: n.network,
        contract: null,
        confirmations: 0,
        min_deposit: "0",
        withdrawal_fee: a.fee,
        deposit_enabled: false,
        withdrawal_enabled: a.withdrawal_enabled,
        min_withdrawal: a.minimum,
        decimals: a.decimals,
        payouts: n.payouts,
      }),
    ),
  }));
}

/** A network's name for people ("sepa" is a bank transfer). */
export function networkName(network: string): string {
  return network === FIAT_NETWORK ? "Bank transfer (SEPA)" : network;
}

/** The statuses a user may still cancel in (the server's `CANCELLABLE`). */
export const CANCELLABLE = new Set(["pending_approval", "approved"]);

/** Statuses after which nothing changes any more. */
export const FINAL = new Set(["confirmed", "failed", "cancelled", "rejected", "refused"]);

/** The asset's decimals: the rules answer says them; else the server writes the fee
 *  with all of them ("5.000000": 6). */
export function assetDecimals(rules: WithdrawalRules): number {
  if (rules.decimals !== undefined) return rules.decimals;
  const dot = rules.withdrawal_fee.indexOf(".");
  return dot < 0 ? 0 : rules.withdrawal_fee.length - dot - 1;
}

/** The smallest amount the server takes: the configured minimum when it says it, and
 *  always more than the fee (the net must be positive). */
export function minimumWithdrawal(rules: WithdrawalRules): string {
  const d = assetDecimals(rules);
  const fee = toUnits(rules.withdrawal_fee, d) ?? 0n;
  let min = fee + 1n;
  const configured = rules.min_withdrawal != null ? toUnits(rules.min_withdrawal, d) : null;
  if (configured !== null && configured > min) min = configured;
  return fromUnits(min, d);
}

/** Every asset withdrawable on some network, sorted. */
export function withdrawAssets(networks: FundingNetwork[]): string[] {
  return [...new Set(networks.flatMap((n) => n.assets.map((a) => a.asset)))].sort();
}

export interface WithdrawNetworkChoice {
  network: string;
  rules: WithdrawalRules;
  /** Why no withdrawal can be made there, or null. */
  disabled: string | null;
}

/** The networks `asset` can leave on, in the server's order, each with why it is closed. */
export function withdrawNetworksFor(
  networks: FundingNetwork[],
  asset: string,
): WithdrawNetworkChoice[] {
  const out: WithdrawNetworkChoice[] = [];
  for (const n of networks) {
    const rules: WithdrawalRules | undefined = n.assets.find((a) => a.asset === asset);
    if (rules === undefined) continue;
    const disabled = closedReason(rules, networkName(n.network));
    out.push({ network: n.network, rules, disabled });
  }
  return out;
}

/** Why `rules` takes no withdrawal, or null: no payouts on the network here (the
 *  exchange cannot send there at all), or switched off by the operators for now. */
export function closedReason(rules: WithdrawalRules, where: string = rules.network): string | null {
  if (rules.payouts === false) {
    return `This exchange does not send ${rules.asset} on ${where}: choose another network.`;
  }
  if (!rules.withdrawal_enabled) {
    return `Withdrawals of ${rules.asset} on ${where} are suspended for now. Choose another network or try later.`;
  }
  return null;
}

/** The first network open for withdrawals, else the first one (to say why it is closed). */
export function defaultWithdrawNetwork(choices: WithdrawNetworkChoice[]): string | null {
  return (choices.find((c) => c.disabled === null) ?? choices[0])?.network ?? null;
}

export interface Quote {
  /** The amount as typed, when it is a usable number; fee and net with the asset's decimals. */
  fee: string;
  net: string | null;
  minimum: string;
  /** The server's code for what is wrong with the amount, and a sentence; null when fine. */
  error: { code: string; text: string } | null;
}

/**
 * Fee, net amount and the checks the server makes on an amount (same codes), before any
 * request: a plain positive decimal within the asset's decimals (`invalid_amount`), at
 * least the minimum and more than the fee (`below_minimum`), not over what is available
 * (`insufficient_balance`, when the balance is known). The fee is taken from the amount.
 */
export function quoteWithdrawal(
  amountText: string,
  rules: WithdrawalRules,
  available: string | null,
): Quote {
  const d = assetDecimals(rules);
  const fee = fromUnits(toUnits(rules.withdrawal_fee, d) ?? 0n, d);
  const minimum = minimumWithdrawal(rules);
  const text = amountText.trim();
  const fail = (code: string, msg: string): Quote => ({
    fee,
    net: null,
    minimum,
    error: { code, text: msg },
  });
  if (text === "") return fail("amount_required", "Enter an amount.");
  const parsed = parseDecimal(text);
  if (parsed === null || text.startsWith("-") || text.startsWith("+")) {
    return fail("invalid_amount", "Enter a plain number such as 25.5 (no commas or spaces).");
  }
  const units = toUnits(text, d);
  if (units === null) {
    return fail("invalid_amount", `${rules.asset} has at most ${d} decimals.`);
  }
  if (units <= 0n) return fail("invalid_amount", "The amount must be more than zero.");
  const min = toUnits(minimum, d) ?? 0n;
  if (units < min) {
    return fail(
      "below_minimum",
      `The minimum withdrawal of ${rules.asset} on ${rules.network} is ${minimum} (the fee is ${fee}).`,
    );
  }
  if (available !== null && compare(text, available) > 0) {
    return fail("insufficient_balance", `You have ${available} ${rules.asset} available.`);
  }
  const net = fromUnits(units - (toUnits(fee, d) ?? 0n), d);
  return { fee, net, minimum, error: null };
}

/**
 * An IBAN as the server stores it (compact, upper case) and the refusal the server would
 * give (`invalid_iban`: not two letters, two digits and 11-30 letters or digits;
 * `iban_checksum_mismatch`: the mod-97 check fails, a typo). The server also checks each
 * country's length and structure.
 */
export function checkIban(text: string): { iban: string; error: { code: string; text: string } | null } {
  const iban = text.replace(/[\s-]+/g, "").toUpperCase();
  if (!/^[A-Z]{2}\d{2}[A-Z0-9]{11,30}$/.test(iban)) {
    return {
      iban,
      error: { code: "invalid_iban", text: "Enter an IBAN: country code, 2 check digits, then the account number." },
    };
  }
  const moved = iban.slice(4) + iban.slice(0, 4);
  let rest = 0;
  for (const ch of moved) {
    const v = ch >= "A" ? ch.charCodeAt(0) - 55 : ch.charCodeAt(0) - 48;
    rest = (v >= 10 ? rest * 100 + v : rest * 10 + v) % 97;
  }
  if (rest !== 1) {
    return { iban, error: { code: "iban_checksum_mismatch", text: "This IBAN has a typo: its check digits do not match." } };
  }
  return { iban, error: null };
}

/** The account holder's name as the server takes it: 2-64 characters. */
export function checkHolder(text: string): string | null {
  const name = text.trim();
  return name.length >= 2 && name.length <= 64 ? null : "Enter the account holder's name (2 to 64 characters).";
}

/** Time left before an address book entry can be used, in ms (0 when usable). */
export function coolingLeft(entry: AddressEntry, nowMs: number): number {
  return entry.usable ? 0 : Math.max(0, entry.usable_from - nowMs);
}

/** "23 h 59 min", "4 min", "40 s": rounded up, so "0" is never shown before it is true. */
export function formatDuration(ms: number): string {
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.ceil(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  const rest = m % 60;
  return rest === 0 ? `${h} h` : `${h} h ${rest} min`;
}

/** What a status means, said for the user. */
export function statusText(status: string): string {
  switch (status) {
    case "holding":
      return "Requested: locking the funds";
    case "pending_approval":
      return "Waiting for review";
    case "approved":
      return "Approved: waiting to be sent";
    case "signing":
    case "signed":
      return "Being signed";
    case "broadcast":
      return "Sent: waiting for confirmations";
    case "settling":
      return "Confirmed: settling";
    case "confirmed":
      return "Completed";
    case "releasing":
      return "Returning the funds";
    case "failed":
      return "Failed: funds returned";
    case "cancelled":
      return "Cancelled: funds returned";
    case "rejected":
      return "Rejected: funds returned";
    case "refused":
      return "Not accepted";
    default:
      return status;
  }
}

/** The server's refusal codes, said for a person (others: the server's message and code). */
export function withdrawErrorText(code: string, message: string): string {
  switch (code) {
    case "two_factor_required":
      return "Withdrawals need two-factor authentication: turn it on on the Security page first.";
    case "totp_required":
      return "Enter the 6-digit code from your authenticator app.";
    case "invalid_totp":
      return "That 2FA code is wrong or was used already: wait for the next one and try again.";
    case "login_locked":
      return "Too many wrong 2FA codes: wait a few minutes before trying again.";
    case "address_not_whitelisted":
      return "This address is not in your address book for this network: add it first.";
    case "address_cooling_off":
      return "This address was added recently and cannot be used until its waiting time is over.";
    case "address_blocked":
      return "Withdrawals to this address are not allowed.";
    case "address_exists":
      return "This address is in your address book already.";
    case "invalid_address":
    case "address_checksum_mismatch":
    case "address_wrong_network":
      return `${message} Check the address: a mistyped one would lose the funds.`;
    case "below_minimum":
    case "invalid_amount":
      return message.charAt(0).toUpperCase() + message.slice(1) + ".";
    case "insufficient_balance":
      return "Your available balance is too small for this amount.";
    case "kyc_limit_exceeded":
      return `${message.charAt(0).toUpperCase()}${message.slice(1)}. Complete verification to raise it.`;
    case "withdrawals_disabled":
      return `${message.charAt(0).toUpperCase()}${message.slice(1)}. Choose another network or try later.`;
    case "account_frozen":
      return "Your account is frozen: contact support.";
    case "email_not_verified":
      return "Confirm your email address first.";
    case "withdrawal_not_cancellable":
      return "This withdrawal is being sent or is finished: it cannot be cancelled now.";
    case "invalid_iban":
    case "iban_checksum_mismatch":
      return `${message.charAt(0).toUpperCase()}${message.slice(1)}. Check the IBAN: a mistyped one would send the money elsewhere.`;
    case "invalid_label":
      return "Enter the account holder's name (2 to 64 characters): the bank transfer is made out to it.";
    case "kyc_level_required":
      return "Bank withdrawals need a higher verification level: see the Verification page.";
    case "funding_unavailable":
      return "This exchange does not take crypto withdrawals.";
    case "idempotency_mismatch":
      return "This request clashed with an earlier one: check your history before trying again.";
    default:
      return `${message} (${code})`;
  }
}

/** 32 hex characters from the browser's random source (works without a secure context,
 *  unlike `crypto.randomUUID`). */
export function randomKey(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Idempotency keys for one form. The same request keeps its key until the server has
 * answered it (a double click, or a retry after a lost answer, sends the same key, and
 * the server answers the first withdrawal again instead of making a second); once the
 * server answered (accepted or refused), the next submission is a new request with a
 * new key, so a refused request can be tried again after fixing what was wrong.
 */
export class IdempotencyKeys {
  private pending: { fingerprint: string; key: string } | null = null;

  constructor(private readonly make: () => string = randomKey) {}

  keyFor(request: { asset: string; network: string; address: string; amount: string }): string {
    const fingerprint = JSON.stringify([request.asset, request.network, request.address, request.amount]);
    if (this.pending === null || this.pending.fingerprint !== fingerprint) {
      this.pending = { fingerprint, key: this.make() };
    }
    return this.pending.key;
  }

  /** The server answered (any HTTP status): the next submission gets a new key. Not
   *  called when the answer was lost (network error, 5xx), so a retry reuses the key. */
  answered(): void {
    this.pending = null;
  }
}

/** Was the outcome of a request unknown (so a retry must reuse its key)? */
export function outcomeUnknown(status: number): boolean {
  return status === 0 || status >= 500;
}

/** The amount shown with exactly the asset's decimals, or the raw text if malformed. */
export function withDecimals(text: string, decimals: number): string {
  const u = toUnits(text, decimals);
  return u === null ? text : fromUnits(u, decimals);
}

/** The approvals a withdrawal in the queue needs, said for the reviewer; `approvedByMe`:
 *  the reviewer is among the entry's `approved_by` (or approved it on this page). */
export function approvalText(w: Withdrawal, approvedByMe: boolean): string {
  const need = w.required_approvals;
  if (need === 0) return "automatic (small amount)";
  if (need === 1) return w.status === "pending_approval" ? "1 person" : "1 person: done";
  if (w.status !== "pending_approval") return "2 people: done";
  const got = w.approvals ?? w.approved_by?.length ?? (approvedByMe ? 1 : 0);
  if (approvedByMe) return `2 people: ${got} of 2, you approved; a second person must`;
  return got > 0 ? `2 people: ${got} of 2` : "2 different people";
}

/** The queue's refusals, said for a reviewer. */
export function reviewErrorText(code: string, message: string): string {
  switch (code) {
    case "already_approved":
      return "You approved this withdrawal already: a second, different person must approve it.";
    case "self_approval":
      return "Nobody approves their own withdrawal.";
    case "withdrawal_not_pending":
      return "This withdrawal is no longer waiting for approval (refresh the list).";
    case "role_required":
      return "Withdrawal approvals need the compliance or admin role.";
    case "totp_required":
    case "invalid_totp":
      return "Enter a current code from your authenticator app above (one code per action).";
    case "reason_required":
    case "invalid_reason":
      return "Give a reason of at least 3 characters to reject: the user is told it.";
    default:
      return `${message} (${code})`;
  }
}
