import { hash } from 'node:crypto';
import { decodeJwt, decodeProtectedHeader, jwtVerify, type JWTPayload } from 'jose';
import { isDnsLabel } from '../compile/names.js';
import { TokenError, type TokenFailure } from './errors.js';
import { codeOf, type JwksCache, type KeySet } from './jwks.js';
import { missingScopes, UNSATISFIABLE, type ScopeRequirement } from './scopes.js';

/** Who a verified token speaks for. The tenant is the token's `tenant_id` claim, never the client's word. */
export interface Principal {
  tenant: string;
  /** The token's `sub` (Keycloak's user id). */
  userId: string;
  /** `email`, else `preferred_username` (the username is the email here); undefined when the token has neither. */
  email: string | undefined;
  /** The token's granted scopes (`scope`, space-separated), sorted and de-duplicated. */
  scopes: string[];
  issuer: string;
  /** `exp`, seconds since the epoch. */
  expiresAt: number;
}

export interface TokenVerifierOptions {
  /**
   * The realms we manage: issuer URL (exactly as in tokens' `iss`) → the tenants whose tokens it
   * issues. A realm per tenant has one; a shared realm (organization isolation) has all of its
   * tenants. A token whose `tenant_id` its issuer does not serve is refused.
   */
  issuers: ReadonlyMap<string, ReadonlySet<string>>;
  keys: JwksCache;
  /** Seconds of clock skew tolerated for `exp` and `nbf`; default 30. */
  clockToleranceSeconds?: number;
  /** Milliseconds since the epoch; injected in tests. */
  now?: () => number;
  /**
   * How many verified tokens to remember (default 10,000; 0: none), so that a token sent again is
   * not verified again while the key set that verified it is still its issuer's. An entry is the
   * token's SHA-256 and the few claims verify() reads, a few hundred bytes.
   */
  verifiedCacheSize?: number;
}

/** What verify() remembers of a token whose signature and claims jwtVerify accepted. */
interface Verified {
  issuer: string;
  /** The key set the signature was verified with: the entry holds only while it is still the issuer's. */
  keys: KeySet;
  /** The claims verify() reads after jwtVerify (not the whole payload: memory stays small). */
  payload: JWTPayload;
  /** The principal, once built and its token's own claims checked (frozen: every request with this token shares it). */
  principal?: Principal;
  /** The last audience and requirement (as configured: the same object until a reload) its claims passed. */
  passed?: { audience: string; required: ScopeRequirement };
}

/** The claims verify() reads once the signature is verified. */
const READ_CLAIMS = ['typ', 'tenant_id', 'sub', 'aud', 'scope', 'scp', 'email', 'preferred_username', 'exp', 'nbf'] as const;

export interface VerifyRequest {
  /** The request's `Authorization` header, as received. */
  authorization: string | undefined;
  /** The agent's client id: the token's `aud` must contain it. */
  audience: string;
  /** What the agent's card requires (see scopes.ts). */
  required: ScopeRequirement;
  /** The tenant the URL names (host name or `tenant` parameter), when it names one: the token's must be the same. */
  expectedTenant?: string;
}

/** Asymmetric algorithms only: a realm's public keys can never verify an HMAC (`HS*`) or `none` token. */
const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA', 'Ed25519'];
const BEARER = /^Bearer +([A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+\.[A-Za-z0-9\-_]+) *$/i;
/** Far more than any Keycloak access token; bounds the work a junk header can cause. */
const MAX_TOKEN_LENGTH = 16_384;

/** Extracts the compact JWS from `Authorization: Bearer ...`; 401 when absent or not a JWT's shape. */
export function bearerToken(authorization: string | undefined): string {
  if (authorization === undefined || authorization.trim() === '') throw new TokenError('missing_token');
  if (authorization.length > MAX_TOKEN_LENGTH) throw new TokenError('malformed_token');
  const m = BEARER.exec(authorization);
  if (!m) throw new TokenError(/^bearer\b/i.test(authorization) ? 'malformed_token' : 'missing_token');
  return m[1]!;
}

/**
 * Verifies bearer tokens for the agents behind the gateway, in this order (cheap and key-free
 * checks first, so that junk never reaches the key cache): shape; issuer one of ours (before any
 * key is fetched: a token cannot make the gateway fetch from a URL of its choosing); signature with
 * the realm's key (asymmetric algorithms only); `exp`/`nbf` with a small tolerance; an access token
 * (Keycloak's `typ: Bearer`, not an ID token, which carries the same `aud`); `tenant_id` a tenant
 * this issuer serves (401), the URL's tenant (403); `aud` holds the agent (403); the card's scopes (403).
 * A token it verified before (clients send the same access token until it expires) skips the
 * signature while the realm's keys are unchanged: the most expensive step, done once per token.
 */
export class TokenVerifier {
  private readonly tolerance: number;
  private readonly now: () => number;
  /** By the SHA-256 of the compact token; oldest first (dropped first past verifiedCacheSize). */
  private readonly verified = new Map<string, Verified>();
  private readonly cacheSize: number;

  constructor(private readonly opts: TokenVerifierOptions) {
    this.tolerance = opts.clockToleranceSeconds ?? 30;
    this.now = opts.now ?? Date.now;
    this.cacheSize = opts.verifiedCacheSize ?? 10_000;
  }

  /** verifyNow, always as a promise (refusals as rejections). */
  async verify(req: VerifyRequest): Promise<Principal> {
    return this.verifyNow(req);
  }

  /**
   * The principal at once when the token is remembered and its issuer's keys are fresh (every
   * request of a client but its first, for the gateway: no promise, no microtask); otherwise a
   * promise. Refusals are TokenErrors, thrown at once or as the promise's rejection.
   */
  verifyNow(req: VerifyRequest): Principal | Promise<Principal> {
    const claims = this.claimsNow(req.authorization);
    return claims instanceof Promise ? claims.then((c) => this.principalFor(req, c)) : this.principalFor(req, claims);
  }

  /** The checks of verify() that depend on the request (its tenant, audience and scopes), on verified claims. */
  private principalFor(req: VerifyRequest, { issuer, tenants, payload, entry }: VerifiedClaims): Principal {
    let principal = entry?.principal;
    if (principal) {
      // Its own claims were checked when it was built; which tenants its issuer serves may have changed since.
      if (!tenants.has(principal.tenant)) throw new TokenError('unknown_tenant');
    } else {
      principal = principalOf(issuer, tenants, payload);
      if (entry) {
        Object.freeze(principal.scopes);
        entry.principal = Object.freeze(principal);
      }
    }
    const tenant = principal.tenant;
    if (req.expectedTenant !== undefined && req.expectedTenant !== tenant) throw new TokenError('wrong_tenant', { principal });
    // The same agent's check as last time (its audience, its card's requirement): its answer is the same.
    if (entry?.passed !== undefined && entry.passed.audience === req.audience && entry.passed.required === req.required) return principal;

    const aud = typeof payload.aud === 'string' ? [payload.aud] : Array.isArray(payload.aud) ? payload.aud : [];
    if (!aud.includes(req.audience)) throw new TokenError('wrong_audience', { principal });

    const missing = missingScopes(principal.scopes, req.required);
    if (missing.length) throw new TokenError('missing_scope', { missingScopes: missing.filter((s) => s !== UNSATISFIABLE), principal });
    if (entry) entry.passed = { audience: req.audience, required: req.required };
    return principal;
  }

  /**
   * The token's issuer (one of ours), the tenants it serves, and its claims once its signature, `exp`
   * and `nbf` are verified; with the cache entry when it was remembered. A token verified before is
   * not verified again while the key set that verified it is still the issuer's (JwksCache.keySet:
   * same freshness check, same refetch after maxAgeMs, a new set after every successful fetch): the
   * signature and every claim check but the clock's would come out the same, so only `exp` and
   * `nbf` are checked again, as jwtVerify checks them. A remembered token sent as `Bearer <token>`
   * (as clients send it) is found before the header's shape is checked: it passed that check when
   * it was first verified, and the header is exactly that again. Answers at once (no promise) for
   * such a token while its issuer's keys are fresh.
   */
  private claimsNow(authorization: string | undefined): VerifiedClaims | Promise<VerifiedClaims> {
    if (this.cacheSize > 0 && authorization !== undefined && authorization.length <= MAX_TOKEN_LENGTH && authorization.startsWith('Bearer ')) {
      const plain = authorization.slice(7);
      const id = hash('sha256', plain, 'base64');
      const found = this.remembered(id);
      if (found instanceof Promise) return found.then((claims) => claims ?? this.verifiedClaims(authorization, plain, id));
      return found ?? this.verifiedClaims(authorization, plain, id);
    }
    return this.verifiedClaims(authorization, undefined, undefined);
  }

  /** claimsNow's other cases: the header's shape checked, the token looked up (unless it was as `plain`, `plainId`), else verified. */
  private async verifiedClaims(authorization: string | undefined, plain: string | undefined, plainId: string | undefined): Promise<VerifiedClaims> {
    const token = bearerToken(authorization);
    let id = token === plain ? plainId : undefined;
    if (this.cacheSize > 0 && token !== plain) {
      id = hash('sha256', token, 'base64');
      const found = this.remembered(id);
      const claims = found instanceof Promise ? await found : found;
      if (claims) return claims;
    }
    let unverified: JWTPayload;
    try {
      decodeProtectedHeader(token);
      unverified = decodeJwt(token);
    } catch (err) {
      throw new TokenError('malformed_token', { cause: err });
    }
    const issuer = unverified.iss;
    const tenants = typeof issuer === 'string' ? this.opts.issuers.get(issuer) : undefined;
    if (issuer === undefined || tenants === undefined) throw new TokenError('unknown_issuer');

    let payload: JWTPayload;
    let keys: KeySet | undefined;
    try {
      ({ payload } = await jwtVerify(
        token,
        async (header, jws) => {
          const resolved = await this.opts.keys.resolveFrom(issuer, header, jws);
          keys = resolved.keys;
          return resolved.key;
        },
        {
          issuer,
          algorithms: ALGORITHMS,
          clockTolerance: this.tolerance,
          currentDate: new Date(this.now()),
          requiredClaims: ['exp', 'sub'],
        },
      ));
    } catch (err) {
      if (err instanceof TokenError) throw err;
      throw new TokenError(failureOf(err), { cause: err });
    }
    if (this.cacheSize > 0 && id !== undefined && keys !== undefined) {
      const read: Record<string, unknown> = {};
      for (const claim of READ_CLAIMS) if (Object.hasOwn(payload, claim)) read[claim] = payload[claim];
      this.verified.delete(id);
      this.verified.set(id, { issuer, keys, payload: read as JWTPayload });
      if (this.verified.size > this.cacheSize) this.verified.delete(this.verified.keys().next().value!);
    }
    return { issuer, tenants, payload };
  }

  /**
   * The claims of the remembered token `id` when its key set is still the issuer's and the clock
   * still accepts it (throws as jwtVerify would when it does not); undefined when it must be verified
   * again. Waits only when the issuer's keys are due to be fetched again.
   */
  private remembered(id: string): VerifiedClaims | undefined | Promise<VerifiedClaims | undefined> {
    const hit = this.verified.get(id);
    if (!hit) return undefined;
    const tenants = this.opts.issuers.get(hit.issuer);
    if (tenants === undefined) throw new TokenError('unknown_issuer');
    const fresh = this.opts.keys.freshKeySet(hit.issuer);
    return fresh !== undefined ? this.stillValid(id, hit, tenants, fresh) : this.opts.keys.keySet(hit.issuer).then((keys) => this.stillValid(id, hit, tenants, keys));
  }

  /** remembered(), once the issuer's current key set is known. */
  private stillValid(id: string, hit: Verified, tenants: ReadonlySet<string>, keys: KeySet | undefined): VerifiedClaims | undefined {
    if (keys !== hit.keys) {
      this.verified.delete(id);
      return undefined;
    }
    const now = Math.floor(this.now() / 1000);
    const { nbf, exp } = hit.payload;
    if (nbf !== undefined && nbf > now + this.tolerance) throw new TokenError('not_yet_valid');
    if (exp !== undefined && exp <= now - this.tolerance) {
      this.verified.delete(id);
      throw new TokenError('expired');
    }
    return { issuer: hit.issuer, tenants, payload: hit.payload, entry: hit };
  }
}

/** What verifiedClaims() answers. */
interface VerifiedClaims {
  issuer: string;
  tenants: ReadonlySet<string>;
  payload: JWTPayload;
  /** The cache entry, when the token was remembered. */
  entry?: Verified;
}

/**
 * Who the token speaks for, from its claims: an access token (Keycloak's `typ: Bearer`, not an ID
 * token), its `tenant_id` a tenant its issuer serves (401 otherwise), a non-empty `sub`.
 */
function principalOf(issuer: string, tenants: ReadonlySet<string>, payload: JWTPayload): Principal {
  if (payload.typ !== undefined && (typeof payload.typ !== 'string' || payload.typ.toLowerCase() !== 'bearer')) throw new TokenError('not_an_access_token');
  const tenant = payload.tenant_id;
  if (typeof tenant !== 'string' || !isDnsLabel(tenant) || !tenants.has(tenant)) throw new TokenError('unknown_tenant');
  if (typeof payload.sub !== 'string' || payload.sub === '') throw new TokenError('invalid_claims');
  const email = typeof payload.email === 'string' ? payload.email : typeof payload.preferred_username === 'string' ? payload.preferred_username : undefined;
  return { tenant, userId: payload.sub, email, scopes: scopesOf(payload), issuer, expiresAt: payload.exp! };
}

/** The granted scopes: OAuth's space-separated `scope`, or an `scp` array some issuers use. */
export function scopesOf(payload: JWTPayload): string[] {
  const raw = typeof payload.scope === 'string' ? payload.scope.split(' ') : Array.isArray(payload.scp) ? payload.scp : [];
  return [...new Set(raw.filter((s): s is string => typeof s === 'string' && s !== ''))].sort();
}

/** jose's error codes (stable across its versions, unlike messages) to our reasons. */
function failureOf(err: unknown): TokenFailure {
  switch (codeOf(err)) {
    case 'ERR_JWT_EXPIRED':
      return 'expired';
    case 'ERR_JWT_CLAIM_VALIDATION_FAILED':
      return (err as { claim?: string }).claim === 'nbf' ? 'not_yet_valid' : 'invalid_claims';
    case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
      return 'bad_signature';
    case 'ERR_JOSE_ALG_NOT_ALLOWED':
    case 'ERR_JOSE_NOT_SUPPORTED':
      return 'unsupported_algorithm';
    case 'ERR_JWKS_NO_MATCHING_KEY':
    case 'ERR_JWKS_MULTIPLE_MATCHING_KEYS':
      return 'unknown_key';
    default:
      return 'malformed_token';
  }
}
