import { SignJWT, type JSONWebKeySet, type JWK } from 'jose';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { TokenError, wwwAuthenticate } from '../../src/gateway/errors.js';
import { httpJwksFetcher, JwksCache, jwksUrl, type JwksFetcher } from '../../src/gateway/jwks.js';
import { bearerToken, TokenVerifier } from '../../src/gateway/tokens.js';
import { makeKey, type Key } from '../helpers/keys.js';

const ACME = 'http://kc.test/realms/acme';
const GLOBEX = 'http://kc.test/realms/globex';
const SHARED = 'http://kc.test/realms/shared';
const T0 = 1_700_000_000_000;


/** A realm's key set, as the fetcher serves it; counts fetches per issuer. */
class FakeRealms implements JwksFetcher {
  readonly keys = new Map<string, JWK[]>();
  readonly fetches: string[] = [];
  failing = false;
  private gate: Promise<void> | undefined;
  fetchJwks(issuer: string): Promise<JSONWebKeySet> {
    this.fetches.push(issuer);
    if (this.failing) return Promise.reject(new Error('connection refused'));
    const set = { keys: [...(this.keys.get(issuer) ?? [])] };
    return this.gate ? this.gate.then(() => set) : Promise.resolve(set);
  }
  /** Fetches wait until the returned function is called. */
  hold(): () => void {
    let release!: () => void;
    this.gate = new Promise<void>((r) => (release = r));
    return () => {
      this.gate = undefined;
      release();
    };
  }
}

let k1: Key;
let k2: Key;
let attacker: Key;

beforeAll(async () => {
  [k1, k2, attacker] = await Promise.all([makeKey('k1'), makeKey('k2'), makeKey('k1')]);
});

function setup(opts: { minRefetchIntervalMs?: number; maxAgeMs?: number; verifiedCacheSize?: number } = {}) {
  let now = T0;
  const realms = new FakeRealms();
  realms.keys.set(ACME, [k1.jwk]);
  realms.keys.set(GLOBEX, [k2.jwk]);
  const keys = new JwksCache(realms, { now: () => now, minRefetchIntervalMs: opts.minRefetchIntervalMs ?? 10_000, maxAgeMs: opts.maxAgeMs ?? 600_000 });
  const issuers = new Map([
    [ACME, new Set(['acme'])],
    [GLOBEX, new Set(['globex'])],
    [SHARED, new Set(['initech', 'hooli'])],
  ]);
  const verifier = new TokenVerifier({
    issuers,
    keys,
    now: () => now,
    ...(opts.verifiedCacheSize !== undefined ? { verifiedCacheSize: opts.verifiedCacheSize } : {}),
  });
  return {
    realms,
    keys,
    issuers,
    verifier,
    advance: (ms: number) => void (now += ms),
    now: () => now,
  };
}

interface TokenOpts {
  key?: Key;
  kid?: string;
  iss?: string;
  aud?: string | string[];
  sub?: string;
  expIn?: number;
  nbfIn?: number;
  claims?: Record<string, unknown>;
  now?: number;
}

async function token(o: TokenOpts = {}): Promise<string> {
  const key = o.key ?? k1;
  const nowS = Math.floor((o.now ?? T0) / 1000);
  const jwt = new SignJWT({ typ: 'Bearer', tenant_id: 'acme', scope: 'openid read email', email: 'ann@acme.test', preferred_username: 'ann@acme.test', ...o.claims })
    .setProtectedHeader({ alg: 'ES256', kid: o.kid ?? key.kid })
    .setIssuer(o.iss ?? ACME)
    .setAudience(o.aud ?? ['assistant', 'account'])
    .setIssuedAt(nowS)
    .setExpirationTime(nowS + (o.expIn ?? 300));
  if (o.sub !== '') jwt.setSubject(o.sub ?? 'user-1');
  if (o.nbfIn !== undefined) jwt.setNotBefore(nowS + o.nbfIn);
  return jwt.sign(key.privateKey);
}

const bearer = (t: string) => `Bearer ${t}`;
const READ = [['read']];

async function refusal(p: Promise<unknown>): Promise<TokenError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(TokenError);
  return err as TokenError;
}

describe('gateway token verification', () => {
  it('accepts a valid token and takes the tenant from its tenant_id claim', async () => {
    const { verifier } = setup();
    const p = await verifier.verify({ authorization: bearer(await token()), audience: 'assistant', required: READ });
    expect(p).toEqual({ tenant: 'acme', userId: 'user-1', email: 'ann@acme.test', scopes: ['email', 'openid', 'read'], issuer: ACME, expiresAt: Math.floor(T0 / 1000) + 300 });
  });

  it('answers 401 without a token, with a non-bearer scheme, or with a malformed one', async () => {
    const { verifier } = setup();
    for (const [authorization, reason] of [
      [undefined, 'missing_token'],
      ['', 'missing_token'],
      ['Basic YWxhZGRpbjpvcGVuc2VzYW1l', 'missing_token'],
      ['Bearer not-a-jwt', 'malformed_token'],
      ['Bearer a.b.c', 'malformed_token'],
    ] as const) {
      const err = await refusal(verifier.verify({ authorization, audience: 'assistant', required: READ }));
      expect([err.status, err.reason]).toEqual([401, reason]);
    }
  });

  it('answers 401 to a forged signature: another key under a known kid, or a payload edited after signing', async () => {
    const { verifier } = setup();
    const forged = await refusal(verifier.verify({ authorization: bearer(await token({ key: attacker })), audience: 'assistant', required: READ }));
    expect([forged.status, forged.reason]).toEqual([401, 'bad_signature']);

    const [h, payload, sig] = (await token()).split('.');
    const claims = JSON.parse(Buffer.from(payload!, 'base64url').toString()) as Record<string, unknown>;
    const edited = Buffer.from(JSON.stringify({ ...claims, tenant_id: 'acme', scope: 'openid read write admin' })).toString('base64url');
    const tampered = await refusal(verifier.verify({ authorization: bearer(`${h}.${edited}.${sig}`), audience: 'assistant', required: [['admin']] }));
    expect([tampered.status, tampered.reason]).toEqual([401, 'bad_signature']);
  });

  it('refuses an HMAC token signed with a guessable secret (asymmetric algorithms only)', async () => {
    const { verifier } = setup();
    const hs = await new SignJWT({ typ: 'Bearer', tenant_id: 'acme', scope: 'read' })
      .setProtectedHeader({ alg: 'HS256', kid: 'k1' })
      .setIssuer(ACME)
      .setAudience('assistant')
      .setSubject('user-1')
      .setExpirationTime(Math.floor(T0 / 1000) + 300)
      .sign(new TextEncoder().encode('x'.repeat(32)));
    const err = await refusal(verifier.verify({ authorization: bearer(hs), audience: 'assistant', required: READ }));
    expect([err.status, err.reason]).toEqual([401, 'unsupported_algorithm']);
  });

  it('answers 401 to an expired token, and tolerates 30 s of clock skew', async () => {
    const { verifier, advance } = setup();
    const t = await token({ expIn: 60 });
    advance(60_000 + 20_000);
    await expect(verifier.verify({ authorization: bearer(t), audience: 'assistant', required: READ })).resolves.toMatchObject({ tenant: 'acme' });
    advance(15_000);
    const err = await refusal(verifier.verify({ authorization: bearer(t), audience: 'assistant', required: READ }));
    expect([err.status, err.reason]).toEqual([401, 'expired']);
  });

  it('answers 401 to a token not valid yet', async () => {
    const { verifier } = setup();
    const err = await refusal(verifier.verify({ authorization: bearer(await token({ nbfIn: 120 })), audience: 'assistant', required: READ }));
    expect([err.status, err.reason]).toEqual([401, 'not_yet_valid']);
  });

  it('answers 401 to an issuer we do not manage without fetching anything from it', async () => {
    const { verifier, realms } = setup();
    for (const iss of ['http://evil.test/realms/acme', 'http://kc.test/realms/master', `${ACME}/`]) {
      const err = await refusal(verifier.verify({ authorization: bearer(await token({ iss })), audience: 'assistant', required: READ }));
      expect([err.status, err.reason]).toEqual([401, 'unknown_issuer']);
    }
    expect(realms.fetches).toEqual([]);
  });

  it("answers 401 when the token's tenant is not one its realm serves (a realm's token cannot claim another tenant)", async () => {
    const { verifier } = setup();
    for (const tenant_id of ['globex', undefined, 'ACME', ['acme']]) {
      const err = await refusal(verifier.verify({ authorization: bearer(await token({ claims: { tenant_id } })), audience: 'assistant', required: READ }));
      expect([err.status, err.reason]).toEqual([401, 'unknown_tenant']);
    }
  });

  it('answers 403 when the URL names another tenant than the token', async () => {
    const { verifier } = setup();
    const t = bearer(await token());
    await expect(verifier.verify({ authorization: t, audience: 'assistant', required: READ, expectedTenant: 'acme' })).resolves.toMatchObject({ tenant: 'acme' });
    const err = await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: READ, expectedTenant: 'globex' }));
    expect([err.status, err.reason]).toEqual([403, 'wrong_tenant']);
  });

  it('answers 403 to a valid token for another agent', async () => {
    const { verifier } = setup();
    for (const aud of ['billing', ['account', 'billing']]) {
      const err = await refusal(verifier.verify({ authorization: bearer(await token({ aud })), audience: 'assistant', required: READ }));
      expect([err.status, err.reason]).toEqual([403, 'wrong_audience']);
    }
    await expect(verifier.verify({ authorization: bearer(await token({ aud: 'assistant' })), audience: 'assistant', required: READ })).resolves.toMatchObject({ userId: 'user-1' });
  });

  it('answers 403 with the missing scopes when the card requires a scope the token lacks', async () => {
    const { verifier } = setup();
    const t = bearer(await token({ claims: { scope: 'openid read' } }));
    const err = await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: [['read', 'write']] }));
    expect([err.status, err.reason, err.missingScopes]).toEqual([403, 'missing_scope', ['write']]);
    expect(wwwAuthenticate(err)).toBe('Bearer realm="systemprompt", error="insufficient_scope", scope="write"');
    // Any one alternative suffices.
    await expect(verifier.verify({ authorization: t, audience: 'assistant', required: [['admin'], ['read']] })).resolves.toMatchObject({ scopes: ['openid', 'read'] });
    // A scope that is a prefix or substring of a held one is not held.
    const err2 = await refusal(verifier.verify({ authorization: bearer(await token({ claims: { scope: 'reader' } })), audience: 'assistant', required: READ }));
    expect(err2.reason).toBe('missing_scope');
  });

  it('refuses an ID token, which carries the same audience', async () => {
    const { verifier } = setup();
    const err = await refusal(verifier.verify({ authorization: bearer(await token({ claims: { typ: 'ID' } })), audience: 'assistant', required: READ }));
    expect([err.status, err.reason]).toEqual([401, 'not_an_access_token']);
  });

  it('refuses a token without a subject', async () => {
    const { verifier } = setup();
    const err = await refusal(verifier.verify({ authorization: bearer(await token({ sub: '' })), audience: 'assistant', required: READ }));
    expect([err.status, err.reason]).toEqual([401, 'invalid_claims']);
  });

  it('serves several tenants of a shared realm, each from its own claim', async () => {
    const { verifier, realms } = setup();
    realms.keys.set(SHARED, [k1.jwk]);
    const p = await verifier.verify({ authorization: bearer(await token({ iss: SHARED, claims: { tenant_id: 'hooli' } })), audience: 'assistant', required: READ });
    expect(p.tenant).toBe('hooli');
    const err = await refusal(verifier.verify({ authorization: bearer(await token({ iss: SHARED, claims: { tenant_id: 'acme' } })), audience: 'assistant', required: READ }));
    expect(err.reason).toBe('unknown_tenant');
  });

  it('never puts token text in error messages or challenges', async () => {
    const { verifier } = setup();
    const t = await token({ key: attacker });
    const err = await refusal(verifier.verify({ authorization: bearer(t), audience: 'assistant', required: READ }));
    const signature = t.split('.')[2]!;
    expect(err.message).not.toContain(signature);
    expect(wwwAuthenticate(err)).toBe('Bearer realm="systemprompt", error="invalid_token", error_description="bad_signature"');
    expect(wwwAuthenticate(new TokenError('missing_token'))).toBe('Bearer realm="systemprompt"');
  });

  it('extracts the bearer token case-insensitively and rejects oversized headers', () => {
    expect(bearerToken('bearer a.b.c')).toBe('a.b.c');
    expect(() => bearerToken(`Bearer ${'a'.repeat(20_000)}.b.c`)).toThrow(TokenError);
  });
});

describe('gateway JWKS cache', () => {
  it('fetches a realm key set once and reuses it', async () => {
    const { verifier, realms } = setup();
    for (let i = 0; i < 3; i++) await verifier.verify({ authorization: bearer(await token()), audience: 'assistant', required: READ });
    expect(realms.fetches).toEqual([ACME]);
  });

  it('refetches once on an unknown kid (a rotated key), then not again within the interval', async () => {
    const { verifier, realms, advance } = setup();
    await verifier.verify({ authorization: bearer(await token()), audience: 'assistant', required: READ });
    advance(11_000);
    // The realm rotates to k2 under acme; a token with the new kid triggers exactly one refetch.
    realms.keys.set(ACME, [k1.jwk, k2.jwk]);
    const rotated = await token({ key: k2, now: T0 + 11_000 });
    await expect(verifier.verify({ authorization: bearer(rotated), audience: 'assistant', required: READ })).resolves.toMatchObject({ tenant: 'acme' });
    expect(realms.fetches).toEqual([ACME, ACME]);

    // Made-up kids do not make the gateway hammer Keycloak.
    for (let i = 0; i < 5; i++) {
      const err = await refusal(verifier.verify({ authorization: bearer(await token({ kid: `junk-${i}`, now: T0 + 11_000 })), audience: 'assistant', required: READ }));
      expect([err.status, err.reason]).toEqual([401, 'unknown_key']);
    }
    expect(realms.fetches).toHaveLength(2);
    advance(10_000);
    await refusal(verifier.verify({ authorization: bearer(await token({ kid: 'junk-9', now: T0 + 21_000 })), audience: 'assistant', required: READ }));
    expect(realms.fetches).toHaveLength(3);
  });

  it('shares one fetch between concurrent requests', async () => {
    const { verifier, realms } = setup();
    const release = realms.hold();
    const t = bearer(await token());
    const all = Promise.all([1, 2, 3, 4].map(() => verifier.verify({ authorization: t, audience: 'assistant', required: READ })));
    release();
    expect((await all).map((p) => p.tenant)).toEqual(['acme', 'acme', 'acme', 'acme']);
    expect(realms.fetches).toEqual([ACME]);
  });

  it('answers 503 when no keys could be fetched, and retries only after the interval', async () => {
    const { verifier, realms, advance } = setup();
    realms.failing = true;
    const t = bearer(await token({ expIn: 3600 }));
    const err = await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: READ }));
    expect([err.status, err.reason]).toEqual([503, 'jwks_unavailable']);
    await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: READ }));
    expect(realms.fetches).toHaveLength(1);
    realms.failing = false;
    advance(10_000);
    await expect(verifier.verify({ authorization: t, audience: 'assistant', required: READ })).resolves.toMatchObject({ tenant: 'acme' });
    expect(realms.fetches).toHaveLength(2);
  });

  it('keeps using held keys when a refresh after maxAge fails, and drops a removed key after a successful one', async () => {
    const { verifier, realms, advance } = setup({ maxAgeMs: 60_000 });
    await verifier.verify({ authorization: bearer(await token()), audience: 'assistant', required: READ });
    advance(61_000);
    realms.failing = true;
    const later = bearer(await token({ now: T0 + 61_000 }));
    await expect(verifier.verify({ authorization: later, audience: 'assistant', required: READ })).resolves.toMatchObject({ tenant: 'acme' });
    expect(realms.fetches).toHaveLength(2);

    realms.failing = false;
    realms.keys.set(ACME, [k2.jwk]);
    advance(11_000);
    const err = await refusal(verifier.verify({ authorization: bearer(await token({ now: T0 + 72_000 })), audience: 'assistant', required: READ }));
    expect(err.reason).toBe('unknown_key');
  });

  it('fetches over HTTP from the realm certs endpoint', async () => {
    expect(jwksUrl(ACME)).toBe(`${ACME}/protocol/openid-connect/certs`);
    const seen: string[] = [];
    const fetcher = httpJwksFetcher({
      fetch: (async (url: string | URL | Request) => {
        seen.push(String(url));
        return new Response(JSON.stringify({ keys: [k1.jwk] }), { status: 200, headers: { 'content-type': 'application/json' } });
      }) as typeof fetch,
    });
    await expect(fetcher.fetchJwks(ACME)).resolves.toEqual({ keys: [k1.jwk] });
    expect(seen).toEqual([`${ACME}/protocol/openid-connect/certs`]);

    const failing = httpJwksFetcher({ fetch: (async () => new Response('nope', { status: 500 })) as typeof fetch });
    await expect(failing.fetchJwks(ACME)).rejects.toThrow(/HTTP 500/);
  });
});

describe('gateway verified-token cache', () => {
  it('verifies a token sent again without its signature, but still checks its expiry', async () => {
    const { verifier, keys, advance } = setup();
    const resolves = vi.spyOn(keys, 'resolveFrom');
    const t = bearer(await token({ expIn: 60 }));
    for (let i = 0; i < 3; i++) await expect(verifier.verify({ authorization: t, audience: 'assistant', required: READ })).resolves.toMatchObject({ tenant: 'acme', userId: 'user-1' });
    expect(resolves).toHaveBeenCalledTimes(1);
    advance(60_000 + 29_000);
    await expect(verifier.verify({ authorization: t, audience: 'assistant', required: READ })).resolves.toMatchObject({ tenant: 'acme' });
    advance(1_000);
    const err = await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: READ }));
    expect([err.status, err.reason]).toEqual([401, 'expired']);
    expect(resolves).toHaveBeenCalledTimes(1);
  });

  it('checks the request and the configuration every time: audience, tenant, scopes, issuer', async () => {
    const { verifier, issuers } = setup();
    const t = bearer(await token({ claims: { scope: 'openid read' } }));
    await verifier.verify({ authorization: t, audience: 'assistant', required: READ });
    expect((await refusal(verifier.verify({ authorization: t, audience: 'billing', required: READ }))).reason).toBe('wrong_audience');
    expect((await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: READ, expectedTenant: 'globex' }))).reason).toBe('wrong_tenant');
    expect((await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: [['write']] }))).reason).toBe('missing_scope');
    // Passed for the agent before: it still does, and another agent's check is still made.
    await expect(verifier.verify({ authorization: t, audience: 'assistant', required: READ })).resolves.toMatchObject({ tenant: 'acme' });
    expect((await refusal(verifier.verify({ authorization: t, audience: 'billing', required: READ }))).reason).toBe('wrong_audience');
    expect((await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: [['read', 'write']] }))).reason).toBe('missing_scope');
    issuers.set(ACME, new Set(['other']));
    expect((await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: READ }))).reason).toBe('unknown_tenant');
    issuers.delete(ACME);
    expect((await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: READ }))).reason).toBe('unknown_issuer');
  });

  it('verifies the signature again once the realm keys were fetched again, and refuses a token of a dropped key', async () => {
    const { verifier, keys, realms, advance } = setup({ maxAgeMs: 60_000 });
    const resolves = vi.spyOn(keys, 'resolveFrom');
    const t = bearer(await token({ expIn: 3600 }));
    await verifier.verify({ authorization: t, audience: 'assistant', required: READ });
    // Keys older than maxAge are fetched again: a new key set, so the token is verified again.
    advance(61_000);
    await verifier.verify({ authorization: t, audience: 'assistant', required: READ });
    expect(resolves).toHaveBeenCalledTimes(2);
    expect(realms.fetches).toHaveLength(2);
    // A failed refresh keeps the held keys, and the token stays verified with them.
    realms.failing = true;
    advance(61_000);
    await verifier.verify({ authorization: t, audience: 'assistant', required: READ });
    expect(realms.fetches).toHaveLength(3);
    expect(resolves).toHaveBeenCalledTimes(2);
    // The realm dropped k1: once its keys are fetched again, the token is refused as a new one would be.
    realms.failing = false;
    realms.keys.set(ACME, [k2.jwk]);
    advance(11_000);
    const err = await refusal(verifier.verify({ authorization: t, audience: 'assistant', required: READ }));
    expect([err.status, err.reason]).toEqual([401, 'unknown_key']);
  });

  it('keeps at most verifiedCacheSize tokens, and none with 0', async () => {
    const [a, b] = [bearer(await token()), bearer(await token({ sub: 'user-2' }))];
    for (const [size, calls] of [
      [1, 4],
      [2, 2],
      [0, 4],
    ] as const) {
      const { verifier, keys } = setup({ verifiedCacheSize: size });
      const resolves = vi.spyOn(keys, 'resolveFrom');
      for (const t of [a, b, a, b]) await verifier.verify({ authorization: t, audience: 'assistant', required: READ });
      expect(resolves).toHaveBeenCalledTimes(calls);
    }
  });

  it('finds a remembered token however the header spells Bearer, and never for a header that is not exactly a token', async () => {
    const { verifier, keys } = setup();
    const resolves = vi.spyOn(keys, 'resolveFrom');
    const t = await token();
    for (const authorization of [`Bearer ${t}`, `bearer ${t}`, `BEARER  ${t} `, `Bearer ${t}`]) {
      await expect(verifier.verify({ authorization, audience: 'assistant', required: READ }), authorization.slice(0, 8)).resolves.toMatchObject({ tenant: 'acme', userId: 'user-1' });
    }
    expect(resolves).toHaveBeenCalledTimes(1);
    for (const authorization of [`Bearer ${t}x`, `Bearer ${t}.x`, `Bearer ${t}\t`, `Token ${t}`]) {
      const err = await refusal(verifier.verify({ authorization, audience: 'assistant', required: READ }));
      expect(err.status, authorization.slice(0, 8)).toBe(401);
    }
  });

  it('answers a remembered token at once (no promise) while its keys are fresh, and waits again once they are due', async () => {
    const { verifier, advance, realms } = setup({ maxAgeMs: 60_000 });
    const t = bearer(await token({ expIn: 600 }));
    const req = { authorization: t, audience: 'assistant', required: READ };
    const first = verifier.verifyNow(req);
    expect(first).toBeInstanceOf(Promise);
    const principal = await first;
    const again = verifier.verifyNow(req);
    expect(again).not.toBeInstanceOf(Promise);
    expect(again).toEqual(principal);
    // From then on every request with this token shares one frozen principal.
    expect(verifier.verifyNow(req)).toBe(again);
    expect(Object.isFrozen(again)).toBe(true);
    // Refusals of a remembered token come at once too, as the TokenError verify() would reject with.
    expect(() => verifier.verifyNow({ ...req, required: [['write']] })).toThrow(expect.objectContaining({ status: 403, reason: 'missing_scope' }));
    // Keys past their age are fetched again first: a promise, then at once again.
    advance(61_000);
    const fetches = realms.fetches.length;
    const later = verifier.verifyNow(req);
    expect(later).toBeInstanceOf(Promise);
    await expect(later).resolves.toMatchObject({ tenant: 'acme', userId: 'user-1' });
    expect(realms.fetches.length).toBe(fetches + 1);
    expect(verifier.verifyNow(req)).not.toBeInstanceOf(Promise);
  });

  it('does not remember a token it refused', async () => {
    const { verifier, keys } = setup();
    const resolves = vi.spyOn(keys, 'resolveFrom');
    const forged = bearer(await token({ key: attacker }));
    for (let i = 0; i < 2; i++) expect((await refusal(verifier.verify({ authorization: forged, audience: 'assistant', required: READ }))).reason).toBe('bad_signature');
    expect(resolves).toHaveBeenCalledTimes(2);
  });
});
