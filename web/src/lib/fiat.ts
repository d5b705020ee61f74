/**
 * Bank transfers in (docs/fiat.md), framework-free so Vitest covers it: the shapes of
 * the deposit instructions and of a statement line in the back office, the IBAN shown
 * in groups of four, the fiat currencies a refusal names, and the refusals said for a
 * person. A transfer is credited by its RF reference, so the page says so loudly.
 */

/** `GET /api/v1/fiat/deposit-instructions?currency=`. */
export interface FiatInstructions {
  currency: string;
  iban: string;
  bic: string;
  beneficiary: string;
  /** The user's RF reference (ISO 11649), compact: what the copy button copies. */
  reference: string;
  /** The same in groups of four, for reading. */
  reference_display: string;
  note: string;
}

/** A line of an imported bank statement (`/api/v1/admin/fiat/lines`). */
export interface FiatLine {
  id: number;
  ref: string;
  account_iban: string;
  entry_ref: string;
  currency: string;
  amount: string;
  user_id: number | null;
  status: string;
  reason: string | null;
  remittance: string | null;
  debtor_name: string | null;
  debtor_iban: string | null;
  booking_date: string | null;
  line: number | null;
  imported_at: number;
  credited_seq: number | null;
  resolved_by: number | null;
  resolved_at: number | null;
  note: string | null;
}

/** "DE89370400440532013000" -> "DE89 3704 0044 0532 0130 00" (how banks print it). */
export function groupIban(iban: string): string {
  return iban.replace(/\s+/g, "").replace(/(.{4})(?=.)/g, "$1 ");
}

/** The fiat currencies a `400 unknown_currency` names ("... (known: EUR, USD)"). */
export function knownCurrencies(message: string): string[] {
  const m = /\(known: ([A-Z, ]*)\)/.exec(message);
  if (m === null) return [];
  return m[1]
    .split(",")
    .map((c) => c.trim())
    .filter((c) => /^[A-Z]{3}$/.test(c));
}

/** The server's refusals, said for a person. */
export function fiatErrorText(code: string, message: string): string {
  switch (code) {
    case "fiat_unavailable":
      return "This exchange does not take bank transfers.";
    case "kyc_level_required":
    case "kyc_required":
      return "Bank transfers need verification level 2: complete your verification first.";
    case "unknown_currency":
      return "This currency cannot be deposited by bank transfer here.";
    default:
      return `${message} (${code})`;
  }
}
