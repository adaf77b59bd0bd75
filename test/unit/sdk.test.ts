import { readFileSync } from 'node:fs';
import http, { type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { SignJWT, type JSONWebKeySet } from 'jose';
import type pg from 'pg';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JwksCache, type JwksFetcher } from '../../src/gateway/jwks.js';
import { TenantDatabases, type SecretSource } from '../../src/runtime/tenant-db.js';
import {
  errorHandler,
  fromKubernetes,
  realmIssuers,
  requireScope,
  systemprompt,
  TokenError,
  type FastifyReplyLike,
  type FastifyRequestLike,
  type NextFunction,
  type SystemPromptContext,
  type SystemPromptOptions,
} from '../../src/sdk/index.js';
import { PROJECT_ROOT } from '../helpers/repo.js';
import { makeKey, type Key } from '../helpers/keys.js';

const ACME = 'http://kc.test/realms/acme';
const GLOBEX = 'http://kc.test/realms/globex';
const ISSUERS = { [ACME]: ['acme'], [GLOBEX]: ['globex'] };


let acmeKey: Key;
let globexKey: Key;
let attacker: Key;
beforeAll(async () => {
  [acmeKey, globexKey, attacker] = await Promise.all([makeKey('a1'), makeKey('g1'), makeKey('a1')]);
});

/** The realms' JWKS, served locally. */
function localJwks(): JwksCache {
  const fetcher: JwksFetcher = {
    fetchJwks: async (issuer): Promise<JSONWebKeySet> => ({ keys: issuer === ACME ? [acmeKey.jwk] : issuer === GLOBEX ? [globexKey.jwk] : [] }),
  };
  return new JwksCache(fetcher);
}

interface TokenOpts {
  tenant?: 'acme' | 'globex' | string;
  key?: Key;
  iss?: string;
  aud?: string[];
  scope?: string;
  expIn?: number;
}

async function token(o: TokenOpts = {}): Promise<string> {
  const tenant = o.tenant ?? 'acme';
  const key = o.key ?? (tenant === 'globex' ? globexKey : acmeKey);
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ typ: 'Bearer', tenant_id: tenant, scope: o.scope ?? 'openid read', email: `ann@${tenant}.test` })
    .setProtectedHeader({ alg: 'ES256', kid: key.kid })
    .setIssuer(o.iss ?? (tenant === 'globex' ? GLOBEX : ACME))
    .setAudience(o.aud ?? ['notes', 'account'])
    .setSubject(`user-of-${tenant}`)
    .setIssuedAt(now)
    .setExpirationTime(now + (o.expIn ?? 300))
    .sign(key.privateKey);
}

const sp = (o: Partial<SystemPromptOptions> = {}) => systemprompt({ agent: 'notes', issuers: ISSUERS, jwks: localJwks(), env: {}, ...o });

const servers: http.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
});

async function serve(listener: RequestListener): Promise<string> {
  const server = http.createServer(listener);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Answer {
  status: number;
  body: any;
  challenge: string | null;
}

async function call(base: string, tok: string | undefined, init: { method?: string; headers?: Record<string, string>; path?: string } = {}): Promise<Answer> {
  const res = await fetch(`${base}${init.path ?? '/notes'}`, { method: init.method ?? 'GET', headers: { ...init.headers, ...(tok === undefined ? {} : { authorization: `Bearer ${tok}` }) } });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, challenge: res.headers.get('www-authenticate') };
}

/** What a handler saw of req.systemprompt, as JSON. */
const echo = (req: IncomingMessage & { systemprompt: SystemPromptContext }, res: ServerResponse) => {
  const c = req.systemprompt;
  res.writeHead(200, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ tenant: c.tenant, user: c.user, scopes: c.scopes, issuer: c.issuer, read: c.hasScope('read'), readWrite: c.hasScope('read', 'write') }));
};

describe('the SDK middleware on node:http (sp.wrap)', () => {
  it("gives the handler the token's tenant, user and scopes, whatever X-SystemPrompt-* headers the caller sends", async () => {
    let calls = 0;
    const base = await serve(sp().wrap((req, res) => (calls++, echo(req, res))));
    const a = await call(base, await token(), { headers: { 'X-SystemPrompt-Tenant': 'globex', 'x-systemprompt-user': 'someone-else', 'X-SystemPrompt-Scopes': 'read write admin' } });
    expect(a.status).toBe(200);
    expect(a.body).toEqual({ tenant: 'acme', user: { id: 'user-of-acme', email: 'ann@acme.test' }, scopes: ['openid', 'read'], issuer: ACME, read: true, readWrite: false });
    const g = await call(base, await token({ tenant: 'globex', scope: 'read write' }));
    expect(g.body).toMatchObject({ tenant: 'globex', user: { id: 'user-of-globex' }, readWrite: true });
    expect(calls).toBe(2);
  });

  it('answers 401 without a token, with a forged one, or an expired one, and the handler never runs', async () => {
    let calls = 0;
    const base = await serve(sp().wrap((req, res) => (calls++, echo(req, res))));
    const none = await call(base, undefined);
    expect(none).toEqual({ status: 401, body: { error: 'missing_token' }, challenge: 'Bearer realm="systemprompt"' });
    // Only the gateway's headers, no token: still 401.
    expect((await call(base, undefined, { headers: { 'X-SystemPrompt-Tenant': 'acme', 'X-SystemPrompt-User': 'u' } })).status).toBe(401);

    // Another key under acme's kid.
    const wrongKey = await call(base, await token({ key: attacker }));
    expect([wrongKey.status, wrongKey.body.error]).toEqual([401, 'bad_signature']);
    expect(wrongKey.challenge).toBe('Bearer realm="systemprompt", error="invalid_token", error_description="bad_signature"');
    // acme's real token with its tenant_id edited to globex, signature kept.
    const [h, p, s] = (await token()).split('.');
    const edited = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p!, 'base64url').toString()), tenant_id: 'globex' })).toString('base64url');
    expect((await call(base, `${h}.${edited}.${s}`)).status).toBe(401);
    // acme's realm signing a token for globex: the realm does not issue globex's tokens.
    const crossRealm = await call(base, await token({ tenant: 'globex', key: acmeKey, iss: ACME }));
    expect([crossRealm.status, crossRealm.body.error]).toEqual([401, 'unknown_tenant']);
    // An issuer we were not told about.
    expect((await call(base, await token({ iss: 'http://kc.test/realms/evil' }))).body.error).toBe('unknown_issuer');
    expect((await call(base, await token({ expIn: -3600 }))).body.error).toBe('expired');
    expect(calls).toBe(0);
  });

  it("answers 403 to a token of another agent (its aud), and to one lacking the `required` scopes", async () => {
    const base = await serve(sp({ required: ['read', 'write'] }).wrap(echo));
    const otherAgent = await call(base, await token({ aud: ['assistant'], scope: 'read write' }));
    expect([otherAgent.status, otherAgent.body.error]).toEqual([403, 'wrong_audience']);
    const noWrite = await call(base, await token({ scope: 'read' }));
    expect(noWrite).toEqual({ status: 403, body: { error: 'missing_scope' }, challenge: 'Bearer realm="systemprompt", error="insufficient_scope", scope="write"' });
    expect((await call(base, await token({ scope: 'read write' }))).status).toBe(200);
  });

  it('answers a TokenError thrown by req.systemprompt.requireScope like a refused token; other handler errors with 500', async () => {
    const errors: unknown[] = [];
    const base = await serve(
      sp({ onError: (e) => errors.push(e) }).wrap((req, res) => {
        if (req.url === '/boom') throw new Error('handler bug');
        req.systemprompt.requireScope('write');
        res.end('written');
      }),
    );
    const refused = await call(base, await token({ scope: 'read' }));
    expect(refused).toEqual({ status: 403, body: { error: 'missing_scope' }, challenge: 'Bearer realm="systemprompt", error="insufficient_scope", scope="write"' });
    expect(errors).toEqual([]);
    const ok = await fetch(`${base}/notes`, { headers: { authorization: `Bearer ${await token({ scope: 'write' })}` } });
    expect([ok.status, await ok.text()]).toEqual([200, 'written']);
    const boom = await call(base, await token(), { path: '/boom' });
    expect([boom.status, boom.body]).toEqual([500, { error: 'internal_error' }]);
    expect((errors[0] as Error).message).toBe('handler bug');
  });

  it('answers 503 when the realm keys cannot be fetched (no challenge: not the caller’s fault)', async () => {
    const down = new JwksCache({ fetchJwks: () => Promise.reject(new Error('connection refused')) });
    const base = await serve(sp({ jwks: down }).wrap(echo));
    expect(await call(base, await token())).toEqual({ status: 503, body: { error: 'jwks_unavailable' }, challenge: null });
  });

  it('requireScope(...) composes as a node:http wrapper after sp.wrap', async () => {
    const base = await serve(sp().wrap(requireScope('write').wrap(echo)));
    expect((await call(base, await token({ scope: 'read' }))).status).toBe(403);
    expect((await call(base, await token({ scope: 'read write' }))).body.tenant).toBe('acme');
  });
});

/** Just enough of Express's dispatch: middleware `(req, res, next)` in order, `next(err)` to the error middleware. */
function expressLike(stack: Array<(req: IncomingMessage, res: ServerResponse, next: NextFunction) => void>, onError: (err: unknown, req: IncomingMessage, res: ServerResponse, next: NextFunction) => void): RequestListener {
  return (req, res) => {
    let i = 0;
    const next: NextFunction = (err) => {
      if (err !== undefined) return onError(err, req, res, () => ((res.statusCode = 500), res.end('unhandled')));
      const layer = stack[i++];
      if (!layer) return void ((res.statusCode = 404), res.end());
      try {
        layer(req, res, next);
      } catch (e) {
        next(e);
      }
    };
    next();
  };
}

describe('the SDK middleware in the Express (req, res, next) shape', () => {
  it('has the arity Express tells middleware from error middleware by', () => {
    expect(sp().length).toBe(3);
    expect(requireScope('read').length).toBe(3);
    expect(errorHandler.length).toBe(4);
  });

  it('calls next() once the token is verified, answers refusals itself (not through next(err)), and requireScope(...) guards a route', async () => {
    const m = sp();
    const handler = (req: IncomingMessage, res: ServerResponse) => echo(req as IncomingMessage & { systemprompt: SystemPromptContext }, res);
    const passedOn: unknown[] = [];
    const base = await serve(expressLike([m, requireScope('write'), handler], (err, _req, res) => (passedOn.push(err), (res.statusCode = 500), res.end())));
    expect(await call(base, undefined)).toEqual({ status: 401, body: { error: 'missing_token' }, challenge: 'Bearer realm="systemprompt"' });
    const readOnly = await call(base, await token({ scope: 'read' }));
    expect([readOnly.status, readOnly.body, readOnly.challenge]).toEqual([403, { error: 'missing_scope' }, 'Bearer realm="systemprompt", error="insufficient_scope", scope="write"']);
    const writer = await call(base, await token({ tenant: 'globex', scope: 'write' }));
    expect([writer.status, writer.body.tenant]).toEqual([200, 'globex']);
    expect(passedOn).toEqual([]);
  });

  it('hands errors other than refused tokens to next(err); errorHandler answers TokenErrors thrown by handlers', async () => {
    const seen: unknown[] = [];
    const throwsScope = (req: IncomingMessage) => req.systemprompt!.requireScope('admin');
    const base = await serve(expressLike([sp(), throwsScope], (err, req, res, next) => (seen.push(err), errorHandler(err, req, res, next))));
    const r = await call(base, await token());
    expect([r.status, r.body, r.challenge]).toEqual([403, { error: 'missing_scope' }, 'Bearer realm="systemprompt", error="insufficient_scope", scope="admin"']);
    expect(seen[0]).toBeInstanceOf(TokenError);

    const bug = await serve(expressLike([sp(), () => { throw new Error('bug'); }], errorHandler));
    const res = await fetch(`${bug}/notes`, { headers: { authorization: `Bearer ${await token()}` } });
    expect([res.status, await res.text()]).toEqual([500, 'unhandled']);
  });

  it('requireScope without systemprompt() first is a programming error (next(err)), not a 401', async () => {
    const seen: unknown[] = [];
    const base = await serve(expressLike([requireScope('read')], (err, _req, res) => (seen.push(err), (res.statusCode = 500), res.end())));
    expect((await call(base, await token())).status).toBe(500);
    expect(String(seen[0])).toMatch(/has not passed systemprompt\(\)/);
  });
});

/** A reply recording what the hook did with it, in the shape of Fastify's. */
function fakeReply() {
  const r = {
    status: 0,
    headers: {} as Record<string, string>,
    sent: undefined as unknown,
    code(s: number) {
      r.status = s;
      return r;
    },
    header(k: string, v: string) {
      r.headers[k] = v;
      return r;
    },
    send(p?: unknown) {
      r.sent = p;
      return r;
    },
  };
  return r satisfies FastifyReplyLike;
}

describe('the SDK middleware as a Fastify hook', () => {
  it('sets request.systemprompt, or replies 401/403 and returns the reply (the async-hook way to stop)', async () => {
    const m = sp();
    const ok: FastifyRequestLike = { headers: { authorization: `Bearer ${await token()}`, 'x-systemprompt-tenant': 'globex' } };
    const okReply = fakeReply();
    expect(await m.fastify(ok, okReply)).toBeUndefined();
    expect(ok.systemprompt?.tenant).toBe('acme');
    expect(okReply.status).toBe(0);

    const none: FastifyRequestLike = { headers: {} };
    const reply = fakeReply();
    expect(await m.fastify(none, reply)).toBe(reply);
    expect(reply).toMatchObject({ status: 401, sent: { error: 'missing_token' }, headers: { 'www-authenticate': 'Bearer realm="systemprompt"' } });
    expect(none.systemprompt).toBeUndefined();

    const scoped = fakeReply();
    expect(await requireScope('write').fastify(ok, scoped)).toBe(scoped);
    expect(scoped).toMatchObject({ status: 403, sent: { error: 'missing_scope' } });
  });

  it('is a plugin that decorates the request and adds the onRequest hook to the registering instance', () => {
    const m = sp();
    const calls: unknown[][] = [];
    let done = false;
    m.plugin({ decorateRequest: (...a: unknown[]) => calls.push(['decorateRequest', ...a]), addHook: (...a: unknown[]) => calls.push(['addHook', ...a]) }, {}, () => (done = true));
    expect(calls).toEqual([
      ['decorateRequest', 'systemprompt', null],
      ['addHook', 'onRequest', m.fastify],
    ]);
    expect(done).toBe(true);
    expect(m.plugin[Symbol.for('skip-override')]).toBe(true);
  });
});

/** TenantDatabases whose clients answer from memory, recording which tenant each statement ran for. */
class FakeDatabases extends TenantDatabases {
  readonly statements: Array<[string, string]> = [];
  constructor() {
    super({ secrets: { readSecretValue: () => Promise.reject(new Error('unused')) }, namespaceOf: () => undefined });
  }
  override withClient<T>(tenant: string, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = {
      query: async (text: string) => {
        this.statements.push([tenant, text]);
        if (text === 'fail') throw new Error('statement failed');
        return { rows: [{ current_database: `tenant_${tenant}` }], rowCount: 1 };
      },
    };
    return work(client as unknown as pg.PoolClient);
  }
}

describe('req.systemprompt.db', () => {
  it("runs every statement on the database of the token's tenant, and exposes no way to name another", async () => {
    const dbs = new FakeDatabases();
    const base = await serve(
      sp({ databases: dbs }).wrap(async (req, res) => {
        const { db } = req.systemprompt;
        const { rows } = await db.query('SELECT current_database()');
        res.end(JSON.stringify({ keys: Object.keys(db).sort(), frozen: Object.isFrozen(req.systemprompt) && Object.isFrozen(db), db: rows[0]!.current_database, tenant: db.tenant }));
      }),
    );
    const a = await call(base, await token(), { headers: { 'X-SystemPrompt-Tenant': 'globex' } });
    expect(a.body).toEqual({ keys: ['pool', 'query', 'tenant', 'transaction'], frozen: true, db: 'tenant_acme', tenant: 'acme' });
    const g = await call(base, await token({ tenant: 'globex' }));
    expect(g.body.db).toBe('tenant_globex');
    expect(dbs.statements).toEqual([
      ['acme', 'SELECT current_database()'],
      ['globex', 'SELECT current_database()'],
    ]);
  });

  it('transaction(): BEGIN, the work, COMMIT on one client; ROLLBACK when the work throws', async () => {
    const dbs = new FakeDatabases();
    const m = sp({ databases: dbs });
    const ctx = await m.authenticate({ headers: { authorization: `Bearer ${await token()}` } });
    expect(await ctx.db.transaction(async (tx) => (await tx.query('INSERT 1')).rowCount)).toBe(1);
    await expect(ctx.db.transaction((tx) => tx.query('fail'))).rejects.toThrow('statement failed');
    expect(dbs.statements.map(([t, s]) => `${t}:${s}`)).toEqual(['acme:BEGIN', 'acme:INSERT 1', 'acme:COMMIT', 'acme:BEGIN', 'acme:fail', 'acme:ROLLBACK']);
    expect(() => ((ctx as { tenant: string }).tenant = 'globex')).toThrow(TypeError);
    expect(ctx.db.tenant).toBe('acme');
  });

  it("built from a SecretSource: reads the tenant's own Secret in tenant-<tenant> (or the template given); an unreachable database is 503", async () => {
    const reads: string[] = [];
    const secrets: SecretSource = {
      readSecretValue: async (ns, name, key) => {
        reads.push(`${ns}/${name}:${key}`);
        // Nothing listens on port 1: the connection is refused at once.
        return `postgresql://u:p@127.0.0.1:1/tenant_${ns}`;
      },
    };
    const errors: unknown[] = [];
    const m = sp({ databases: { secrets, connectionTimeoutMillis: 2000 }, onError: (e) => errors.push(e) });
    const base = await serve(m.wrap(async (req, res) => void res.end(JSON.stringify((await req.systemprompt.db.query('SELECT 1')).rows))));
    expect(await call(base, await token())).toEqual({ status: 503, body: { error: 'database_unavailable' }, challenge: null });
    expect(reads).toEqual(['tenant-acme/systemprompt-database:DATABASE_URL']);
    // Told to the operator, without the password of the URL.
    expect(errors).toHaveLength(1);
    expect(String((errors[0] as Error).message)).toMatch(/^tenant acme: database: /);
    expect(String((errors[0] as Error).message)).not.toContain('u:p@');
    await m.close();

    const custom = sp({ databases: { secrets, namespaceOf: 'apps-{{tenant_id}}' } });
    const ctx = await custom.authenticate({ headers: { authorization: `Bearer ${await token({ tenant: 'globex' })}` } });
    await expect(ctx.db.query('SELECT 1')).rejects.toThrow(/tenant globex: database/);
    expect(reads.at(-1)).toBe('apps-globex/systemprompt-database:DATABASE_URL');
    await custom.close();
    expect(() => sp({ databases: { secrets, namespaceOf: 'apps' } })).toThrow(/\{\{tenant_id\}\}/);
  });

  it('without `databases`, db rejects with a message saying so', async () => {
    const ctx = await sp().authenticate({ headers: { authorization: `Bearer ${await token()}` } });
    await expect(ctx.db.query('SELECT 1')).rejects.toThrow(/no databases configured/);
    await expect(ctx.db.pool()).rejects.toThrow(/no databases configured/);
  });
});

describe('SDK options', () => {
  it('takes issuers from SYSTEMPROMPT_ISSUERS when not passed, and refuses unusable ones', async () => {
    const m = systemprompt({ agent: 'notes', jwks: localJwks(), env: { SYSTEMPROMPT_ISSUERS: JSON.stringify({ [GLOBEX]: ['globex'] }) } });
    expect((await m.authenticate({ headers: { authorization: `Bearer ${await token({ tenant: 'globex' })}` } })).tenant).toBe('globex');
    await expect(m.authenticate({ headers: { authorization: `Bearer ${await token()}` } })).rejects.toMatchObject({ reason: 'unknown_issuer', status: 401 });
    expect(() => systemprompt({ agent: 'notes', env: {} })).toThrow(/SYSTEMPROMPT_ISSUERS/);
    expect(() => systemprompt({ agent: 'notes', env: { SYSTEMPROMPT_ISSUERS: 'acme' } })).toThrow(/not JSON/);
    expect(() => systemprompt({ agent: 'notes', issuers: { [ACME]: ['Not A Tenant'] } })).toThrow(/not a tenant name/);
    expect(() => systemprompt({ agent: 'notes', issuers: { 'kc.test/realms/acme': ['acme'] } })).toThrow(/not a URL/);
    expect(() => systemprompt({ agent: 'notes', issuers: { [ACME]: [] } })).toThrow(/non-empty/);
    expect(() => systemprompt({ agent: '', issuers: ISSUERS })).toThrow(/agent/);
  });

  it('realmIssuers: one realm per tenant under Keycloak’s public URL', () => {
    expect(realmIssuers('https://kc.example.com/', ['acme', 'globex'])).toEqual({ 'https://kc.example.com/realms/acme': ['acme'], 'https://kc.example.com/realms/globex': ['globex'] });
    expect(realmIssuers('https://kc.example.com', ['acme'], 'sp-{{tenant_id}}')).toEqual({ 'https://kc.example.com/realms/sp-acme': ['acme'] });
  });

  it('fromKubernetes loads the Kubernetes client only when a Secret is read, and tries again after a failed start', async () => {
    const src = fromKubernetes({ kubeconfig: path.join(PROJECT_ROOT, 'no-such-kubeconfig') });
    await expect(src.readSecretValue('tenant-acme', 'systemprompt-database', 'DATABASE_URL')).rejects.toThrow(/cannot load kubeconfig/);
    await expect(src.readSecretValue('tenant-acme', 'systemprompt-database', 'DATABASE_URL')).rejects.toThrow(/cannot load kubeconfig/);
  });
});

describe('the SDK module graph', () => {
  /** Every module src/sdk/index.ts loads when imported (static imports; `import type` and dynamic import() are not loaded then). */
  function loaded(): { files: string[]; packages: Set<string> } {
    const files: string[] = [];
    const packages = new Set<string>();
    const statement = /^\s*(?:import|export)\s+(?!type\b)([^'";]*?)\s*from\s+'([^']+)'|^\s*import\s+'([^']+)'/gm;
    const walk = (file: string): void => {
      if (files.includes(file)) return;
      files.push(file);
      for (const m of readFileSync(file, 'utf8').matchAll(statement)) {
        const spec = m[2] ?? m[3]!;
        const names = m[1]?.trim() ?? '';
        // `import { type A, type B } from` loads nothing either.
        if (/^\{[^}]*\}$/.test(names) && names.slice(1, -1).split(',').map((s) => s.trim()).filter(Boolean).every((s) => s.startsWith('type '))) continue;
        if (spec.startsWith('.')) walk(path.resolve(path.dirname(file), spec.replace(/\.js$/, '.ts')));
        else packages.add(spec);
      }
    };
    walk(path.join(PROJECT_ROOT, 'src/sdk/index.ts'));
    return { files: files.map((f) => path.relative(PROJECT_ROOT, f)), packages };
  }

  it('loads jose and pg, and neither the CLI, commander, the Keycloak admin client nor @kubernetes/client-node', () => {
    const { files, packages } = loaded();
    expect([...packages].filter((p) => !p.startsWith('node:')).sort()).toEqual(['jose', 'pg']);
    expect(files.filter((f) => !/^src\/(sdk|gateway|runtime|compile\/(names|templates|secret-names))\b/.test(f))).toEqual([]);
    expect(files).not.toContain('src/targets/kubernetes.ts');
  });
});
