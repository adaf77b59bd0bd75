/**
 * What an agent's A2A card requires of a caller's scopes. A card's `security` is a list of
 * alternatives (any one will do), each naming schemes whose scopes are all needed. The gateway
 * checks bearer tokens, so only `oauth2` and `openIdConnect` schemes can be satisfied; an
 * alternative that needs any other scheme (an API key, mTLS) is never met by a token: fail closed.
 */

/** Alternatives of scope sets; `[]` means the card requires nothing, `[[]]` a token with any scopes. */
export type ScopeRequirement = readonly (readonly string[])[];

const TOKEN_SCHEMES = new Set(['oauth2', 'openIdConnect']);

/** The requirement a card's top-level `security` expresses, given its `securitySchemes`. */
export function requiredScopes(card: Record<string, unknown>): ScopeRequirement {
  const security = card.security;
  if (!Array.isArray(security)) return [];
  const schemes = (card.securitySchemes && typeof card.securitySchemes === 'object' ? card.securitySchemes : {}) as Record<string, { type?: unknown } | undefined>;
  const out: string[][] = [];
  for (const alternative of security) {
    if (!alternative || typeof alternative !== 'object') continue;
    let satisfiable = true;
    const scopes = new Set<string>();
    for (const [schemeName, wanted] of Object.entries(alternative as Record<string, unknown>)) {
      const type = schemes[schemeName]?.type;
      if (typeof type !== 'string' || !TOKEN_SCHEMES.has(type)) satisfiable = false;
      if (Array.isArray(wanted)) for (const s of wanted) if (typeof s === 'string') scopes.add(s);
    }
    if (satisfiable) out.push([...scopes].sort());
  }
  // Every alternative needed something a token cannot give: nothing satisfies the card.
  if (out.length === 0 && security.length > 0) return [[UNSATISFIABLE]];
  return out;
}

/** A scope no token carries (scope names never hold a space), for cards only other schemes satisfy. */
export const UNSATISFIABLE = ' unsatisfiable';

/**
 * The scopes still missing: `[]` when some alternative is fully held, otherwise those of the
 * alternative that misses the fewest (what a `WWW-Authenticate: ... scope=` should ask for).
 */
export function missingScopes(held: Iterable<string>, requirement: ScopeRequirement): string[] {
  if (requirement.length === 0) return [];
  // The common case first, without a set: some alternative fully held (the token's few scopes).
  const list = Array.isArray(held) ? (held as readonly string[]) : [...held];
  for (const alternative of requirement) if (alternative.every((s) => list.includes(s))) return [];
  const have = new Set(list);
  let best: string[] | undefined;
  for (const alternative of requirement) {
    const missing = alternative.filter((s) => !have.has(s));
    if (missing.length === 0) return [];
    if (!best || missing.length < best.length) best = missing;
  }
  return best ?? [];
}
