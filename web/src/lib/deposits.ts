/**
 * The deposit history's logic, framework-free so Vitest covers it: what a deposit's
 * status says to a person ("Seen, 2/12 confirmations", "Credited"), how long a
 * reference is shown, the query strings of the user's and the staff's lists, and when
 * the page polls again (every few seconds while a deposit is pending, else not).
 */
import { formatDecimal } from "./format";

/** One deposit of `GET /api/v1/deposits` (staff rows add `user_id`, `source_status`). */
export interface DepositRecord {
  id: string;
  kind: "chain" | "bank" | "card";
  asset: string;
  network: string;
  amount: string | null;
  status: "pending" | "credited" | "orphaned" | "returned" | "failed";
  reason: string | null;
  txid: string | null;
  reference: string | null;
  block_number: number | null;
  confirmations: number | null;
  confirmations_required: number | null;
  booking_date: string | null;
  created_at: number | null;
  updated_at: number | null;
  user_id?: number | null;
  source_status?: string;
}

export interface DepositFilters {
  asset?: string;
  status?: string;
  network?: string;
  userId?: number;
  limit?: number;
  cursor?: string | null;
}

/** How often the page asks again while a deposit is pending (confirmations move). */
export const PENDING_POLL_MS = 4000;

/** The delay before the next poll: only while something can still change. */
export function nextPollMs(items: DepositRecord[]): number | null {
  return items.some((d) => d.status === "pending") ? PENDING_POLL_MS : null;
}

const REASONS: Record<string, string> = {
  below_minimum: "below the minimum deposit, not credited",
  review: "being checked by our team",
  canceled: "the payment was canceled",
  amount_mismatch: "the amount paid did not match",
};

/** The status said for a person, with the confirmations of a pending chain deposit. */
export function depositStatusText(d: DepositRecord): string {
  switch (d.status) {
    case "pending": {
      if (d.kind === "chain" && d.confirmations_required !== null) {
        const have = Math.min(d.confirmations ?? 0, d.confirmations_required);
        return `Seen, ${have}/${d.confirmations_required} confirmations`;
      }
      if (d.kind === "card") return "Waiting for the card payment";
      return d.reason ? `Pending: ${REASONS[d.reason] ?? d.reason}` : "Pending";
    }
    case "credited":
      return "Credited";
    case "orphaned":
      return "Dropped from the chain (reorg): waiting to be mined again";
    case "returned":
      return "Returned to the sender";
    case "failed":
      return d.reason ? `Not credited: ${REASONS[d.reason] ?? d.reason}` : "Not credited";
  }
}

/** Progress of a pending chain deposit in 0..1 (for a bar), null otherwise. */
export function confirmationProgress(d: DepositRecord): number | null {
  if (d.kind !== "chain" || d.status !== "pending" || !d.confirmations_required) return null;
  return Math.min(1, Math.max(0, (d.confirmations ?? 0) / d.confirmations_required));
}

/** How the money came: the chain network, a bank transfer or a card. */
export function depositMethodText(d: DepositRecord): string {
  if (d.kind === "bank") return "Bank transfer";
  if (d.kind === "card") return "Card";
  return d.network;
}

/** A long txid shortened in the middle (`0x1234…abcd`); references shown whole. */
export function shortRef(d: DepositRecord): string {
  const text = d.txid ?? d.reference ?? "";
  return text.length > 20 ? `${text.slice(0, 10)}…${text.slice(-6)}` : text;
}

/** The amount as the server sent it, grouped (its decimals kept); "-" if unknown. */
export function depositAmountText(d: DepositRecord): string {
  if (d.amount === null) return "-";
  const dot = d.amount.indexOf(".");
  return formatDecimal(d.amount, dot < 0 ? 0 : d.amount.length - dot - 1);
}

/** The query string of a list request (empty filters left out). */
export function depositQuery(f: DepositFilters): string {
  const p = new URLSearchParams();
  if (f.userId !== undefined) p.set("user_id", String(f.userId));
  if (f.asset) p.set("asset", f.asset);
  if (f.status) p.set("status", f.status);
  if (f.network) p.set("network", f.network);
  p.set("limit", String(f.limit ?? 50));
  if (f.cursor) p.set("cursor", f.cursor);
  return `?${p.toString()}`;
}

/** Rows staff should look at first: orphaned deposits (a reorg) and refused ones. */
export function needsAttention(d: DepositRecord): boolean {
  return d.status === "orphaned" || d.status === "failed";
}
