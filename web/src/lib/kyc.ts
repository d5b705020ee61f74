/**
 * The user's KYC page logic, framework-free so Vitest covers it: the shape of
 * `GET /api/v1/kyc`, the document kinds, and the checks of a file before it is sent
 * (type and size: the server checks again, the bytes too, and answers
 * `invalid_document` / `document_too_large`).
 */

export const DOCUMENT_KINDS = [
  ["passport", "Passport"],
  ["id_card", "Identity card"],
  ["driving_licence", "Driving licence"],
  ["proof_of_address", "Proof of address (bill, bank statement)"],
  ["selfie", "Selfie holding the document"],
] as const;

export type DocumentKind = (typeof DOCUMENT_KINDS)[number][0];

/** What the server takes (services/kyc.py): JPEG, PNG or PDF up to 5 MiB. */
export const DOCUMENT_TYPES = ["image/jpeg", "image/png", "application/pdf"];
export const MAX_DOCUMENT_BYTES = 5 * 1024 * 1024;

/** One of the user's documents (`GET /api/v1/kyc`, `POST /api/v1/kyc/documents`). */
export interface MyDocument {
  id: number;
  kind: string;
  content_type: string;
  size: number;
  sha256: string;
  status: "pending" | "approved" | "rejected";
  uploaded_at: number;
  reviewed_at: number | null;
  note: string | null;
}

export interface LevelLimits {
  /** Whole units per asset per day; an asset not listed: none. */
  withdraw_per_day: Record<string, string>;
  fiat: boolean;
}

export interface KycStatus {
  level: number;
  verified_at: number | null;
  limits: LevelLimits;
  /** Every level's limits, when the server lists them. */
  levels?: ({ level: number } & LevelLimits)[];
  documents: MyDocument[];
}

/** Why `file` cannot be sent, or null when it can. */
export function checkDocument(file: { type: string; size: number } | null): string | null {
  if (file === null) return "Choose a file first.";
  if (!DOCUMENT_TYPES.includes(file.type)) {
    return "The document must be a JPEG, PNG or PDF file.";
  }
  if (file.size === 0) return "The file is empty.";
  if (file.size > MAX_DOCUMENT_BYTES) {
    return `The file is ${sizeText(file.size)}: the limit is 5 MB.`;
  }
  return null;
}

export function sizeText(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(0)} kB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

export function kindLabel(kind: string): string {
  return DOCUMENT_KINDS.find(([k]) => k === kind)?.[1] ?? kind;
}

/** A review status for a person. */
export function statusText(d: MyDocument): string {
  if (d.status === "pending") return "Waiting for review";
  if (d.status === "approved") return "Approved";
  return d.note ? `Rejected: ${d.note}` : "Rejected";
}

/** The server's refusal codes, said for a person. */
export function uploadErrorText(code: string, message: string): string {
  switch (code) {
    case "invalid_document":
    case "unsupported_media_type":
      return "The file is not a JPEG, PNG or PDF document (its content was checked).";
    case "document_too_large":
    case "payload_too_large":
      return "The file is larger than 5 MB.";
    default:
      return `${message} (${code})`;
  }
}

/** "2 BTC, 30 ETH" from a level's daily limits; "none" when empty. */
export function limitsText(l: LevelLimits): string {
  const parts = Object.keys(l.withdraw_per_day)
    .sort()
    .map((a) => `${Number(l.withdraw_per_day[a]).toLocaleString("en-US")} ${a}`);
  return parts.length ? parts.join(", ") : "none";
}
