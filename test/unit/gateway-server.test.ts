import http, { type IncomingHttpHeaders } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { JwksCache } from '../../src/gateway/jwks.js';
import { MemoryRateLimiter, type RateLimiter } from '../../src/gateway/ratelimit.js';
import { RedisRateLimiter } from '../../src/gateway/ratelimit-redis.js';
import { accessLogLine, createGateway, isoTime, type AccessLogEntry, type GatewayConfig } from '../../src/gateway/server.js';
import { TokenVerifier } from '../../src/gateway/tokens.js';
import type { DecisionRecord } from '../../src/runtime/usage.js';
import { until } from '../helpers/wait.js';

interface Seen {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: string;
}

const T0 = 1_700_000_000_000;
let privateKey: CryptoKey;
let jwk: JWK;
let upstream: http.Server;
let upstreamUrl: string;
const seen: Seen[] = [];
/** What the fake upstream does with a request; default: 200 with a small JSON body. */
let behaviour: 'ok' | 'hang' | 'cut' | 'big' = 'ok';
/** The answer of behaviour 'big': 8 MiB, far more than sockets buffer. */
const BIG = Buffer.alloc(8 * 1024 * 1024, 'abcdefghijklmnopqrstuvwxyz0123456789');
/** Settles when the fake upstream saw its request end or break off (for the abort tests). */
let upstreamRequestEnded: Promise<'end' | 'aborted'> = Promise.resolve('end');
/** Requests the fake upstream has started to receive. */
let upstreamRequests = 0;

beforeAll(async () => {
  const pair = await generateKeyPair('ES256');
  privateKey = pair.privateKey;
  jwk = { ...(await exportJWK(pair.publicKey)), kid: 'k1', alg: 'ES256', use: 'sig' };
  upstream = http.createServer((req, res) => {
    upstreamRequests++;
    upstreamRequestEnded = new Promise((resolve) => {
      req.once('end', () => resolve('end'));
      req.once('close', () => resolve(req.complete ? 'end' : 'aborted'));
    });
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      if (behaviour === 'hang') return;
      if (behaviour === 'big') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(BIG.length) });
        let at = 0;
        const more = (): void => {
          while (at < BIG.length) {
            const piece = BIG.subarray(at, at + 65_536);
            at += piece.length;
            if (!res.write(piece)) return void res.once('drain', more);
          }
          res.end();
        };
        more();
        return;
      }
      if (behaviour === 'cut') {
        // A head promising 1,000 bytes, 10 of them, then the connection dropped.
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' });
        res.write('{"partial"', () => res.socket?.destroy());
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json', connection: 'keep-alive', 'keep-alive': 'timeout=5' });
      res.end(JSON.stringify({ ok: true }));
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
});

afterAll(async () => {
  upstream.closeAllConnections();
  await new Promise<void>((r) => upstream.close(() => r()));
});

const started: http.Server[] = [];
afterEach(async () => {
  seen.length = 0;
  behaviour = 'ok';
  for (const s of started.splice(0)) {
    s.closeAllConnections();
    await new Promise<void>((r) => s.close(() => r()));
  }
});

const issuerOf = (tenant: string) => `${upstreamUrl}/realms/${tenant}`;
const card = { name: 'assistant', url: 'http://localhost:8080/api/v1/agents/assistant', securitySchemes: { oauth2: { type: 'oauth2', flows: { authorizationCode: { authorizationUrl: 'http://kc/auth', tokenUrl: 'http://kc/token', scopes: { read: 'Read' } } } } }, security: [{ oauth2: ['read'] }] };

function config(baseDomain?: string): GatewayConfig {
  const quotas = { requestsPerMinute: 100, requestsPerMinutePerUser: 2 };
  return {
    ...(baseDomain ? { baseDomain } : {}),
    agents: new Map([
      ['assistant', { upstream: `${upstreamUrl}/base`, required: [['read']] }],
      ['writer', { upstream: `${upstreamUrl}/w`, required: [['write']] }],
    ]),
    tenants: new Map([
      ['acme', { issuer: issuerOf('acme'), quotas, cards: new Map([['assistant', card], ['writer', card]]) }],
      ['globex', { issuer: issuerOf('globex'), quotas, cards: new Map([['assistant', card]]), upstreams: new Map([['assistant', `${upstreamUrl}/globex`]]) }],
    ]),
  };
}

async function startGateway(opts: { baseDomain?: string; maxBodyBytes?: number; upstreamTimeoutMs?: number; limiter?: RateLimiter } = {}) {
  const logs: AccessLogEntry[] = [];
  const records: DecisionRecord[] = [];
  const keys = new JwksCache({ fetchJwks: () => Promise.resolve({ keys: [jwk] }) }, { now: () => T0 });
  const verifier = new TokenVerifier({ issuers: new Map([[issuerOf('acme'), new Set(['acme'])], [issuerOf('globex'), new Set(['globex'])]]), keys, now: () => T0 });
  const cfg = config(opts.baseDomain);
  const server = createGateway({
    config: () => cfg,
    verifier,
    limiter: opts.limiter ?? new MemoryRateLimiter(),
    now: () => T0,
    log: (e) => logs.push(e),
    record: (r) => records.push(r),
    ...(opts.maxBodyBytes !== undefined ? { maxBodyBytes: opts.maxBodyBytes } : {}),
    ...(opts.upstreamTimeoutMs !== undefined ? { upstreamTimeoutMs: opts.upstreamTimeoutMs } : {}),
  });
  started.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as AddressInfo).port, logs, records };
}

function token(o: { tenant?: string; sub?: string; scope?: string; aud?: string } = {}): Promise<string> {
  const tenant = o.tenant ?? 'acme';
  return new SignJWT({ typ: 'Bearer', tenant_id: tenant, scope: o.scope ?? 'openid read', email: `${o.sub ?? 'ann'}@${tenant}.test` })
    .setProtectedHeader({ alg: 'ES256', kid: 'k1' })
    .setIssuer(issuerOf(tenant))
    .setAudience(o.aud ?? 'assistant')
    .setSubject(o.sub ?? 'ann')
    .setExpirationTime(T0 / 1000 + 300)
    .sign(privateKey);
}

interface Answer {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

function call(port: number, method: string, path: string, headers: Record<string, string> = {}, body?: string | Buffer): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Sends `pieces` over one connection, each once the last is written, and reads until the gateway closes it. */
function rawCall(port: number, pieces: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('end', () => resolve(Buffer.concat(chunks).toString('latin1')));
    socket.on('error', reject);
    const next = (i: number): void => {
      if (i < pieces.length) socket.write(pieces[i]!, () => setImmediate(() => next(i + 1)));
    };
    socket.on('connect', () => next(0));
  });
}

/** Resolves once the gateway has written `n` access-log lines (a line is written when a response closes). */
async function logged(logs: AccessLogEntry[], n: number): Promise<void> {
  for (let i = 0; i < 200 && logs.length < n; i++) await new Promise((r) => setImmediate(r));
}

describe('gateway server', () => {
  it('proxies an allowed call with the tenant and user from the token, never those the client sent', async () => {
    const { port, logs } = await startGateway();
    const t = await token();
    const res = await call(port, 'POST', '/api/v1/agents/assistant/v1/message?x=1', { authorization: `Bearer ${t}`, 'content-type': 'application/json', 'X-SystemPrompt-Tenant': 'globex', 'x-systemprompt-user': 'root' }, '{"hello":1}');
    expect(res.status).toBe(200);
    expect(res.body).toBe('{"ok":true}');
    expect(res.headers).not.toHaveProperty('keep-alive');
    expect(seen).toHaveLength(1);
    const up = seen[0]!;
    expect([up.method, up.url, up.body]).toEqual(['POST', '/base/v1/message?x=1', '{"hello":1}']);
    expect(up.headers['x-systemprompt-tenant']).toBe('acme');
    expect(up.headers['x-systemprompt-user']).toBe('ann');
    expect(up.headers['x-systemprompt-user-email']).toBe('ann@acme.test');
    expect(up.headers['x-systemprompt-scopes']).toBe('openid read');

    await logged(logs, 1);
    expect(logs[0]).toMatchObject({ method: 'POST', path: '/api/v1/agents/assistant/v1/message', route: 'agent', status: 200, tenant: 'acme', user: 'ann', agent: 'assistant', bytesIn: 11, bytesOut: 11 });
    expect(JSON.stringify(logs)).not.toContain(t.split('.')[2]!);
  });

  it('answers 401 without a token or with a forged one, 403 without the scope, and the upstream sees nothing', async () => {
    const { port, logs } = await startGateway();
    const none = await call(port, 'GET', '/api/v1/agents/assistant/x');
    expect([none.status, none.headers['www-authenticate']]).toEqual([401, 'Bearer realm="systemprompt"']);
    const [h, p] = (await token()).split('.');
    const forged = await call(port, 'GET', '/api/v1/agents/assistant/x', { authorization: `Bearer ${h}.${p}.${Buffer.from('x'.repeat(64)).toString('base64url')}` });
    expect([forged.status, JSON.parse(forged.body)]).toEqual([401, { error: 'bad_signature' }]);
    const scope = await call(port, 'GET', '/api/v1/agents/writer/x', { authorization: `Bearer ${await token({ aud: 'writer' })}` });
    expect([scope.status, scope.headers['www-authenticate']]).toEqual([403, 'Bearer realm="systemprompt", error="insufficient_scope", scope="write"']);
    expect(seen).toEqual([]);
    await logged(logs, 3);
    expect(logs.map((l) => l.reason)).toEqual(['missing_token', 'bad_signature', 'missing_scope']);
  });

  it("answers 403 to tenant A's token at tenant B's host, and B's upstream sees nothing", async () => {
    const { port } = await startGateway({ baseDomain: 'gw.test' });
    const served = JSON.parse((await call(port, 'GET', '/api/v1/agents/assistant/.well-known/agent-card.json', { host: 'acme.gw.test:8443' })).body) as { url: string };
    expect(served.url).toBe('http://acme.gw.test:8443/api/v1/agents/assistant');
    const t = await token({ tenant: 'acme' });
    const res = await call(port, 'GET', '/api/v1/agents/assistant/x', { host: 'globex.gw.test', authorization: `Bearer ${t}` });
    expect([res.status, JSON.parse(res.body)]).toEqual([403, { error: 'wrong_tenant' }]);
    expect(seen).toEqual([]);
    expect((await call(port, 'GET', '/api/v1/agents/assistant/x', { host: 'acme.gw.test', authorization: `Bearer ${t}` })).status).toBe(200);
  });

  it("sends each tenant's calls to the agent's upstream as rendered for that tenant", async () => {
    const { port } = await startGateway();
    expect((await call(port, 'GET', '/api/v1/agents/assistant/x', { authorization: `Bearer ${await token({ tenant: 'globex' })}` })).status).toBe(200);
    expect((await call(port, 'GET', '/api/v1/agents/assistant/x', { authorization: `Bearer ${await token({ tenant: 'acme' })}` })).status).toBe(200);
    expect(seen.map((x) => [x.url, x.headers['x-systemprompt-tenant']])).toEqual([
      ['/globex/x', 'globex'],
      ['/base/x', 'acme'],
    ]);
  });

  it('answers 429 with Retry-After over the per-user limit while another user of the tenant still passes', async () => {
    const { port } = await startGateway();
    const ann = `Bearer ${await token({ sub: 'ann' })}`;
    const bob = `Bearer ${await token({ sub: 'bob' })}`;
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await call(port, 'GET', '/api/v1/agents/assistant/x', { authorization: ann })).status);
    expect(statuses).toEqual([200, 200, 429]);
    const limited = await call(port, 'GET', '/api/v1/agents/assistant/x', { authorization: ann });
    expect([limited.status, limited.headers['retry-after']]).toEqual([429, String(60 - ((T0 / 1000) % 60))]);
    expect((await call(port, 'GET', '/api/v1/agents/assistant/x', { authorization: bob })).status).toBe(200);
    expect(seen).toHaveLength(3);
  });

  it("records each decision about a verified user (allowed, wrong scope, wrong tenant, rate limited) under the token's tenant, and none without a verified token", async () => {
    const { port, logs, records } = await startGateway({ baseDomain: 'gw.test' });
    const ann = { authorization: `Bearer ${await token({ sub: 'ann' })}`, host: 'acme.gw.test' };
    expect((await call(port, 'POST', '/api/v1/agents/assistant/notes?q=secret', ann, '{"a":1}')).status).toBe(200);
    expect((await call(port, 'GET', '/api/v1/agents/writer/x', { ...ann, authorization: `Bearer ${await token({ sub: 'ann', aud: 'writer' })}` })).status).toBe(403);
    expect((await call(port, 'GET', '/api/v1/agents/assistant/x', { ...ann, host: 'globex.gw.test' })).status).toBe(403);
    expect((await call(port, 'GET', '/api/v1/agents/assistant/x', ann)).status).toBe(200);
    expect((await call(port, 'GET', '/api/v1/agents/assistant/x', ann)).status).toBe(429);
    expect((await call(port, 'GET', '/api/v1/agents/assistant/x', { host: 'globex.gw.test' })).status).toBe(401);
    await logged(logs, 6);
    expect(records.map((r) => [r.tenant, r.userId, r.email, r.agent, r.method, r.path, r.allowed, r.status, r.reason])).toEqual([
      ['acme', 'ann', 'ann@acme.test', 'assistant', 'POST', '/api/v1/agents/assistant/notes', true, 200, undefined],
      ['acme', 'ann', 'ann@acme.test', 'writer', 'GET', '/api/v1/agents/writer/x', false, 403, 'missing_scope'],
      ['acme', 'ann', 'ann@acme.test', 'assistant', 'GET', '/api/v1/agents/assistant/x', false, 403, 'wrong_tenant'],
      ['acme', 'ann', 'ann@acme.test', 'assistant', 'GET', '/api/v1/agents/assistant/x', true, 200, undefined],
      ['acme', 'ann', 'ann@acme.test', 'assistant', 'GET', '/api/v1/agents/assistant/x', false, 429, 'rate_limited'],
    ]);
    expect(records[0]).toMatchObject({ required: [['read']], held: ['openid', 'read'], bytesIn: 7, bytesOut: 11, time: T0 });
    expect(records[1]!.required).toEqual([['write']]);
  });

  it('lets a request through, marked unchecked in the access log, when its limits cannot be checked (the shared store is down: fail open)', async () => {
    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const warnings: string[] = [];
    const limiter = new RedisRateLimiter({ redis: `redis://127.0.0.1:${deadPort}`, warn: (m) => warnings.push(m) });
    try {
      const { port, logs } = await startGateway({ limiter });
      const ann = `Bearer ${await token({ sub: 'ann' })}`;
      // The per-user limit is 2: all three pass, unchecked.
      for (let i = 0; i < 3; i++) expect((await call(port, 'GET', '/api/v1/agents/assistant/x', { authorization: ann })).status).toBe(200);
      await logged(logs, 3);
      expect(logs.map((l) => [l.status, l.rateLimit])).toEqual([
        [200, 'unchecked'],
        [200, 'unchecked'],
        [200, 'unchecked'],
      ]);
      expect(seen).toHaveLength(3);
      expect(limiter.uncheckedCount).toBe(3);
      expect(warnings).toHaveLength(1);
    } finally {
      await limiter.close();
    }
  });

  it('refuses bodies over the limit, declared or streamed, before the upstream answers', async () => {
    const { port } = await startGateway({ maxBodyBytes: 16 });
    const auth = { authorization: `Bearer ${await token()}` };
    const declared = await call(port, 'POST', '/api/v1/agents/assistant/x', auth, 'x'.repeat(17));
    expect([declared.status, JSON.parse(declared.body)]).toEqual([413, { error: 'body_too_large' }]);
    expect(seen).toEqual([]);
    const chunked = await call(port, 'POST', '/api/v1/agents/assistant/x', { ...auth, 'transfer-encoding': 'chunked' }, Buffer.alloc(64 * 1024, 'x'));
    expect(chunked.status).toBe(413);
  });

  it('relays a large answer whole to a client that stops reading for a while (backpressure both ways)', async () => {
    const { port, logs } = await startGateway();
    behaviour = 'big';
    const t = await token();
    const got = await new Promise<Buffer>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/api/v1/agents/assistant/x', headers: { authorization: `Bearer ${t}` }, agent: false }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve(Buffer.concat(chunks)));
        res.on('error', reject);
        // Not reading for 300 ms: the gateway's socket to this client fills up, and it must wait for it.
        res.pause();
        setTimeout(() => res.resume(), 300);
      });
      req.on('error', reject);
      req.end();
    });
    expect(got.length).toBe(BIG.length);
    expect(got.equals(BIG)).toBe(true);
    await logged(logs, 1);
    expect(logs[0]).toMatchObject({ status: 200, bytesOut: BIG.length });
  });

  it('cuts the answer off (never a whole-looking one) when the upstream breaks off mid-answer', async () => {
    const { port, logs } = await startGateway();
    behaviour = 'cut';
    const outcome = await new Promise<string>((resolve) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/api/v1/agents/assistant/x', headers: { authorization: '' }, agent: false });
      void token().then((t) => {
        req.setHeader('authorization', `Bearer ${t}`);
        req.end();
      });
      req.on('response', (res) => {
        res.on('data', () => undefined);
        res.on('end', () => resolve(res.complete ? 'complete' : 'incomplete'));
        res.on('aborted', () => resolve('aborted'));
        res.on('error', () => resolve('aborted'));
      });
      req.on('error', () => resolve('aborted'));
    });
    expect(outcome).not.toBe('complete');
    await logged(logs, 1);
    expect(logs[0]).toMatchObject({ status: 200, reason: 'upstream_aborted', bytesOut: 10 });
  });

  it('sends the upstream the whole body however it arrives: with the head, partly or wholly after it, chunked, or none', async () => {
    const { port } = await startGateway();
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'message/send', params: { text: 'hello' } });
    const cases: [string, (head: string) => string[], string][] = [
      ['with the head', (head) => [`${head}content-length: ${body.length}\r\n\r\n${body}`], body],
      ['part with the head, the rest after', (head) => [`${head}content-length: ${body.length}\r\n\r\n${body.slice(0, 10)}`, body.slice(10)], body],
      ['after the head, in two pieces', (head) => [`${head}content-length: ${body.length}\r\n\r\n`, body.slice(0, 10), body.slice(10)], body],
      ['chunked', (head) => [`${head}transfer-encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`], body],
      ['none', (head) => [`${head}\r\n`], ''],
    ];
    // A token the gateway has verified once (refused at another agent, before the rate limits):
    // a call with it is then handled at once, inside the parser's callback for the request's head.
    const remembered = async (sub: string): Promise<string> => {
      const t = await token({ sub });
      expect((await call(port, 'POST', '/api/v1/agents/writer/x', { authorization: `Bearer ${t}` })).status).toBe(403);
      return t;
    };
    for (const [i, [name, pieces, expected]] of cases.entries()) {
      const t = await remembered(`body-${i}`);
      seen.length = 0;
      const head = `POST /api/v1/agents/assistant/x HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\nauthorization: Bearer ${t}\r\n`;
      const answer = await rawCall(port, pieces(head));
      expect(answer.split('\r\n')[0], name).toBe('HTTP/1.1 200 OK');
      expect(seen.map((s) => s.body), name).toEqual([expected]);
    }
    // Two on one kept-alive connection, sent in one write: the second is handled once the first is answered.
    const t = await remembered('body-kept-alive');
    seen.length = 0;
    const request = (connection: string) => `POST /api/v1/agents/assistant/x HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: ${connection}\r\nauthorization: Bearer ${t}\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
    const answers = await rawCall(port, [request('keep-alive') + request('close')]);
    expect(answers.match(/^HTTP\/1\.1 \d+/gm)).toEqual(['HTTP/1.1 200', 'HTTP/1.1 200']);
    expect(seen.map((s) => s.body)).toEqual([body, body]);
  });

  it('never sends the upstream a request whose client broke off mid-body, and logs it as client_aborted', async () => {
    const { port, logs } = await startGateway();
    const t = await token();
    const before = upstreamRequests;
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: '/api/v1/agents/assistant/x', headers: { authorization: `Bearer ${t}`, 'content-length': '100' }, agent: false });
    req.on('error', () => undefined);
    // TCP keeps order: the gateway reads the head and these 10 bytes before it sees the connection go.
    await new Promise<void>((r) => req.write('x'.repeat(10), () => r()));
    req.destroy();
    await logged(logs, 1);
    expect(logs[0]!.reason).toBe('client_aborted');
    expect(logs[0]!.status).toBe(499);
    // 10 when the gateway read them before the connection went, 0 when it went while the token was checked.
    expect([0, 10]).toContain(logs[0]!.bytesIn);
    expect(upstreamRequests).toBe(before);
  });

  it('answers 504 when the upstream does not answer in time, and 502 when it cannot be reached', async () => {
    const { port } = await startGateway({ upstreamTimeoutMs: 100 });
    behaviour = 'hang';
    const auth = { authorization: `Bearer ${await token()}` };
    const slow = await call(port, 'GET', '/api/v1/agents/assistant/x', auth);
    expect([slow.status, JSON.parse(slow.body)]).toEqual([504, { error: 'upstream_timeout' }]);

    const closed = http.createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const deadPort = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    const logs: AccessLogEntry[] = [];
    const keys = new JwksCache({ fetchJwks: () => Promise.resolve({ keys: [jwk] }) }, { now: () => T0 });
    const cfg = config();
    const server = createGateway({
      config: () => ({ ...cfg, agents: new Map([['assistant', { upstream: `http://127.0.0.1:${deadPort}`, required: [] }]]) }),
      verifier: new TokenVerifier({ issuers: new Map([[issuerOf('acme'), new Set(['acme'])]]), keys, now: () => T0 }),
      limiter: new MemoryRateLimiter(),
      now: () => T0,
      log: (e) => logs.push(e),
    });
    started.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const down = await call((server.address() as AddressInfo).port, 'GET', '/api/v1/agents/assistant/x', auth);
    expect([down.status, JSON.parse(down.body)]).toEqual([502, { error: 'upstream_unreachable' }]);
  });

  it("serves the tenant's card with the gateway's URLs", async () => {
    const { port } = await startGateway();
    const res = await call(port, 'GET', '/api/v1/agents/assistant/.well-known/agent-card.json?tenant=acme', { host: 'localhost:8080' });
    expect(res.status).toBe(200);
    const served = JSON.parse(res.body) as { url: string; securitySchemes: { oauth2: { flows: { authorizationCode: Record<string, string> } } } };
    expect(served.url).toBe('http://localhost:8080/api/v1/agents/assistant?tenant=acme');
    expect(served.securitySchemes.oauth2.flows.authorizationCode).toMatchObject({ authorizationUrl: 'http://localhost:8080/api/v1/core/oauth/authorize?tenant=acme', tokenUrl: 'http://localhost:8080/api/v1/core/oauth/token?tenant=acme' });
    expect((await call(port, 'GET', '/api/v1/agents/writer/.well-known/agent-card.json?tenant=globex')).status).toBe(404);
    // A spoofed Host cannot put another site into the card.
    const odd = JSON.parse((await call(port, 'GET', '/api/v1/agents/assistant/.well-known/agent-card.json?tenant=acme', { host: 'evil.test/x?' })).body) as { url: string };
    expect(odd.url).toBe('http://localhost/api/v1/agents/assistant?tenant=acme');
    expect((await call(port, 'GET', '/api/v1/agents/assistant/.well-known/agent-card.json')).status).toBe(400);
  });

  it("sends the OAuth endpoints to the tenant's realm", async () => {
    const { port, logs } = await startGateway();
    const auth = await call(port, 'GET', '/api/v1/core/oauth/authorize?tenant=acme&client_id=assistant&response_type=code&code_challenge=abc&code_challenge_method=S256');
    expect(auth.status).toBe(302);
    expect(auth.headers.location).toBe(`${issuerOf('acme')}/protocol/openid-connect/auth?client_id=assistant&response_type=code&code_challenge=abc&code_challenge_method=S256`);

    const tok = await call(port, 'POST', '/api/v1/core/oauth/token?tenant=acme', { 'content-type': 'application/x-www-form-urlencoded', 'x-systemprompt-tenant': 'globex' }, 'grant_type=authorization_code&code=c0de&code_verifier=v');
    expect(tok.status).toBe(200);
    expect(seen.map((s) => [s.method, s.url, s.body])).toEqual([['POST', '/realms/acme/protocol/openid-connect/token', 'grant_type=authorization_code&code=c0de&code_verifier=v']]);
    expect(seen[0]!.headers).not.toHaveProperty('x-systemprompt-tenant');
    expect((await call(port, 'POST', '/api/v1/core/oauth/token?tenant=initech')).status).toBe(404);
    await logged(logs, 3);
    expect(JSON.stringify(logs)).not.toContain('c0de');
    expect(JSON.stringify(logs)).not.toContain('code_challenge');
  });
});

describe('gateway access-log line', () => {
  it("writes the time as Date's toISOString does, whatever the milliseconds and however they change", () => {
    const base = Date.UTC(2026, 10, 30, 23, 59, 59);
    for (const ms of [base, base + 7, base + 42, base + 999, base + 999.6, base + 1000, base + 1005, base - 1, base + 86_400_000 + 30, base + 0.4]) {
      expect(isoTime(ms)).toBe(new Date(Math.floor(ms)).toISOString());
    }
  });


  it('is the JSON of the entry on one line, without the fields it does not have, whatever its strings hold', () => {
    const base: AccessLogEntry = { time: '2026-11-30T03:00:00.000Z', method: 'POST', path: '/api/v1/agents/a/"x"\\y\u2028', route: 'agent', status: 200, durationMs: 1.25, bytesIn: 11, bytesOut: 0 };
    for (const e of [base, { ...base, tenant: 'acme', user: 'u-1', agent: 'a', reason: 'rate_limited', rateLimit: 'unchecked' as const }, { ...base, tenant: undefined, reason: 'client_aborted' }]) {
      const line = accessLogLine(e);
      expect(line.endsWith('}\n')).toBe(true);
      expect(line.slice(0, -1)).not.toContain('\n');
      expect(JSON.parse(line)).toEqual(JSON.parse(JSON.stringify(e)));
    }
  });
});
