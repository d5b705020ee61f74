/** The user's security activity (`GET /api/v1/account/security-events`) in words. */

export interface SecurityEvent {
  seq: number;
  time: number;
  event: string;
  kind: "security" | "withdrawal" | string;
  ip: string | null;
  details: Record<string, string | number | boolean | null>;
}

export interface SecurityEventsPage {
  items: SecurityEvent[];
  next_cursor: string | null;
}

const WORDS: Record<string, string> = {
  signed_in: "Signed in",
  sign_in_failed: "Failed sign-in",
  new_sign_in: "Sign-in from a new device or address",
  api_key_revoked: "API key revoked",
};

/** A readable title: known events by name, others from their code
 * (`api_key_created` -> "API key created"), withdrawal steps prefixed. */
export function describeEvent(e: Pick<SecurityEvent, "event" | "kind">): string {
  const known = WORDS[e.event];
  const words =
    known ??
    e.event
      .replace(/_/g, " ")
      .replace(/\bapi\b/gi, "API")
      .replace(/\b2fa\b/gi, "2FA")
      .replace(/^\w/, (c) => c.toUpperCase());
  return e.kind === "withdrawal" ? `Withdrawal: ${words.toLowerCase()}` : words;
}

/** The details worth showing (keys that identify what it was about), as `k: v`. */
export function describeDetails(details: SecurityEvent["details"]): string {
  return Object.entries(details)
    .filter(([, v]) => v !== null && v !== "")
    .map(([k, v]) => `${k.replace(/_/g, " ")}: ${String(v)}`)
    .join(", ");
}
