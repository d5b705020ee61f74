/**
 * The deposit page's logic, framework-free so Vitest covers it: which assets can be
 * deposited where (from `GET /api/v1/funding/networks`), and what to tell the user
 * when a network cannot take a deposit, before asking the server for an address (the
 * server still decides: its refusal, with its code, is shown as is).
 */

/** One asset's rules on one network, as `GET /api/v1/funding/networks` lists them. */
export interface AssetRules {
  asset: string;
  network: string;
  contract: string | null;
  confirmations: number;
  min_deposit: string;
  withdrawal_fee: string;
  deposit_enabled: boolean;
  withdrawal_enabled: boolean;
}

export interface FundingNetwork {
  network: string;
  kind: string;
  chain: string | null;
  chain_id: number | null;
  /** False when the exchange has no key for this network: no address can be made. */
  deposit_addresses: boolean;
  assets: AssetRules[];
}

/** `GET /api/v1/deposits/address`: the rules plus the caller's address and its QR code. */
export interface DepositAddress extends AssetRules {
  address: string;
  qr_svg: string;
  created_at: number;
}

/** Every asset on any network, sorted. */
export function depositAssets(networks: FundingNetwork[]): string[] {
  return [...new Set(networks.flatMap((n) => n.assets.map((a) => a.asset)))].sort();
}

export interface NetworkChoice {
  network: string;
  rules: AssetRules;
  /** Why no deposit can be made there, or null when it can. */
  disabled: string | null;
}

/** The networks `asset` lives on, in the server's order, each with why it is closed. */
export function networksFor(networks: FundingNetwork[], asset: string): NetworkChoice[] {
  const out: NetworkChoice[] = [];
  for (const n of networks) {
    const rules = n.assets.find((a) => a.asset === asset);
    if (rules === undefined) continue;
    out.push({ network: n.network, rules, disabled: closedReason(n, rules) });
  }
  return out;
}

/** The first network open for deposits, else the first one (to show why it is closed). */
export function defaultNetwork(choices: NetworkChoice[]): string | null {
  return (choices.find((c) => c.disabled === null) ?? choices[0])?.network ?? null;
}

function closedReason(n: FundingNetwork, rules: AssetRules): string | null {
  if (!rules.deposit_enabled) {
    return `Deposits of ${rules.asset} on ${n.network} are suspended for now. Do not send ${rules.asset} there: choose another network or try later.`;
  }
  if (!n.deposit_addresses) {
    return `Deposits on ${n.network} are not offered by this exchange. Choose another network.`;
  }
  return null;
}

/** The server's refusal codes, said for a person (others show the server's message). */
export function depositErrorText(code: string, message: string): string {
  switch (code) {
    case "deposits_disabled":
      return "Deposits are not offered on this network right now. Choose another network.";
    case "funding_unavailable":
      return "This exchange does not take crypto deposits.";
    case "unknown_network":
    case "unknown_asset":
      return "This asset cannot be deposited on that network.";
    default:
      return `${message} (${code})`;
  }
}

/** An inline SVG (as the server sends QR codes) as an image `src`. An SVG shown as an
 *  image needs its namespace, which an inline SVG may leave out (segno's does): without
 *  it the browser shows a broken image. */
export function svgDataUri(svg: string): string {
  const s = svg.trimStart();
  const withNs =
    s.startsWith("<svg") && !/^<svg[^>]*\sxmlns=/.test(s)
      ? `<svg xmlns="http://www.w3.org/2000/svg"${s.slice(4)}`
      : s;
  return `data:image/svg+xml;base64,${btoa(withNs)}`;
}
