import { createLocalJWKSet, type CryptoKey, type JSONWebKeySet, type JWSHeaderParameters, type FlattenedJWSInput, type LocalJWKSet } from 'jose';
import { TokenError } from './errors.js';

/** Where a realm's signing keys come from. The gateway fetches them over HTTP; tests hand them over. */
export interface JwksFetcher {
  fetchJwks(issuer: string): Promise<JSONWebKeySet>;
}

/** A Keycloak realm publishes its keys at `<issuer>/protocol/openid-connect/certs`. */
export const jwksUrl = (issuer: string): string => `${issuer.replace(/\/+$/, '')}/protocol/openid-connect/certs`;

/** Fetches a realm's JWKS over HTTP, with a timeout; a non-2xx answer or a body that is no key set throws. */
export function httpJwksFetcher(opts: { timeoutMs?: number; fetch?: typeof fetch } = {}): JwksFetcher {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const doFetch = opts.fetch ?? fetch;
  return {
    async fetchJwks(issuer) {
      const res = await doFetch(jwksUrl(issuer), { headers: { accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs), redirect: 'error' });
      if (!res.ok) throw new Error(`JWKS of ${issuer}: HTTP ${res.status}`);
      const body = (await res.json()) as unknown;
      if (!body || typeof body !== 'object' || !Array.isArray((body as { keys?: unknown }).keys)) throw new Error(`JWKS of ${issuer}: no "keys" array`);
      return body as JSONWebKeySet;
    },
  };
}

export interface JwksCacheOptions {
  /** Milliseconds since the epoch; injected in tests. */
  now?: () => number;
  /**
   * At most one fetch per issuer in this many milliseconds, whatever asks for it (an unknown `kid`,
   * expired keys, a failed fetch). Tokens with made-up `kid`s cannot make the gateway hammer Keycloak.
   */
  minRefetchIntervalMs?: number;
  /** Keys older than this are fetched again before use, so that keys a realm dropped stop verifying. */
  maxAgeMs?: number;
  /** Told about every failed fetch (for the access log / metrics); the error names the issuer, never a token. */
  onFetchError?: (issuer: string, err: unknown) => void;
}

/** One fetched key set of an issuer; compared by identity only (see JwksCache.keySet). */
export type KeySet = LocalJWKSet;

interface Entry {
  keys?: LocalJWKSet;
  fetchedAt: number;
  /** When the last fetch (successful or not) started. */
  attemptedAt: number;
  inflight?: Promise<void>;
}

const NO_MATCHING_KEY = 'ERR_JWKS_NO_MATCHING_KEY';

/**
 * Signing keys per issuer, fetched on first use, kept for `maxAgeMs`, and fetched again when a
 * token names a key we do not hold (a realm rotated its keys), but never more than once per
 * `minRefetchIntervalMs`. Concurrent callers share one fetch. When a refresh fails, keys already
 * held stay in use (Keycloak down must not lock every user out); with none held, 503.
 * Only issuers the caller already checked against its allowlist should be asked for.
 */
export class JwksCache {
  private readonly entries = new Map<string, Entry>();
  private readonly now: () => number;
  private readonly minInterval: number;
  private readonly maxAge: number;
  private readonly onFetchError: (issuer: string, err: unknown) => void;

  constructor(
    private readonly fetcher: JwksFetcher,
    opts: JwksCacheOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.minInterval = opts.minRefetchIntervalMs ?? 10_000;
    this.maxAge = opts.maxAgeMs ?? 10 * 60_000;
    this.onFetchError = opts.onFetchError ?? (() => {});
  }

  /** The key that verifies a token of `issuer` with this protected header. */
  async resolve(issuer: string, header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<CryptoKey> {
    return (await this.resolveFrom(issuer, header, token)).key;
  }

  /** resolve(), also telling which key set (as keySet() names it) the key came from. */
  async resolveFrom(issuer: string, header: JWSHeaderParameters, token: FlattenedJWSInput): Promise<{ key: CryptoKey; keys: KeySet }> {
    const entry = this.entry(issuer);
    if (!this.fresh(entry)) await this.refresh(issuer, entry);
    const held = entry.keys;
    if (!held) throw new TokenError('jwks_unavailable');
    try {
      return { key: await held(header, token), keys: held };
    } catch (err) {
      if (codeOf(err) !== NO_MATCHING_KEY) throw err;
      // An unknown kid: the realm may have rotated its keys. Fetch again, if not done too recently.
      const before = entry.keys;
      await this.refresh(issuer, entry);
      const after = entry.keys;
      if (after === before || after === undefined) throw new TokenError('unknown_key', { cause: err });
      try {
        return { key: await after(header, token), keys: after };
      } catch (again) {
        if (codeOf(again) === NO_MATCHING_KEY) throw new TokenError('unknown_key', { cause: again });
        throw again;
      }
    }
  }

  /**
   * The key set resolve() would use for `issuer` now, after the same freshness check (fetched when
   * none is held or it is older than `maxAgeMs`); undefined when none could be fetched. Every fetch
   * that succeeds gives a new one, so a key set is still the issuer's while keySet() returns it.
   */
  async keySet(issuer: string): Promise<KeySet | undefined> {
    const entry = this.entry(issuer);
    if (!this.fresh(entry)) await this.refresh(issuer, entry);
    return entry.keys;
  }

  /** keySet() without waiting: the key set when one is held and fresh, else undefined (then ask keySet()). */
  freshKeySet(issuer: string): KeySet | undefined {
    const entry = this.entries.get(issuer);
    return entry && this.fresh(entry) ? entry.keys : undefined;
  }

  /** Keys held and younger than maxAgeMs: used as they are, nothing fetched. */
  private fresh(entry: Entry): boolean {
    return entry.keys !== undefined && this.now() - entry.fetchedAt < this.maxAge;
  }

  /** Drops what is cached (for a configuration reload that removed an issuer). */
  forget(issuer: string): void {
    this.entries.delete(issuer);
  }

  private entry(issuer: string): Entry {
    let e = this.entries.get(issuer);
    if (!e) {
      e = { fetchedAt: -Infinity, attemptedAt: -Infinity };
      this.entries.set(issuer, e);
    }
    return e;
  }

  /** Fetches the issuer's keys unless a fetch is under way (then waits for it) or was started too recently. */
  private async refresh(issuer: string, entry: Entry): Promise<void> {
    if (entry.inflight) return entry.inflight;
    const now = this.now();
    if (now - entry.attemptedAt < this.minInterval) return;
    entry.attemptedAt = now;
    entry.inflight = (async () => {
      try {
        const jwks = await this.fetcher.fetchJwks(issuer);
        entry.keys = createLocalJWKSet(jwks);
        entry.fetchedAt = this.now();
      } catch (err) {
        // Keep the keys we hold; with none, resolve() answers 503. The next try waits minRefetchIntervalMs.
        this.onFetchError(issuer, err);
      } finally {
        entry.inflight = undefined;
      }
    })();
    return entry.inflight;
  }
}

export function codeOf(err: unknown): string | undefined {
  return err && typeof err === 'object' && typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
}
