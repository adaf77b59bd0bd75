// The gateway's cost per request against calling the agent directly, measured in the same run.
//
// One agent upstream (a minimal node:http server answering a small JSON-RPC result) and one
// gateway (src/gateway, wired as `systemprompt gateway` wires it; bench/gateway/gateway.js) in
// front of it. The same request (an A2A-style JSON-RPC POST with a bearer token) is sent
// (a) straight to the upstream and (b) through the gateway, which verifies the token (RS256,
// signing key already cached), checks the per-user and per-tenant per-minute limits (quotas so high
// they never deny), adds the X-SystemPrompt-* headers and proxies. Everything is generated here: an
// RS256 key pair and its JWKS, and access tokens shaped like the realms' Keycloak tokens (iss, aud
// = the agent's client id, sub, typ Bearer, azp, scope, email, tenant_id, exp, ...), several users
// over several tenants, used in turn. No network beyond 127.0.0.1, no Keycloak.
//
// Cores: the gateway runs in its own processes (--processes, default 3; a proxy's rounds take them in
// turn) pinned to core 0 (`taskset -c 0`); this process (the load generator and the upstream) is
// pinned to core 1. Without taskset or with fewer than 2 CPUs
// nothing is pinned, and the output says so. The load generator is a closed loop of keep-alive
// connections, each an undici Client (undici is already the gateway's upstream client): it costs its
// core far less per request than node:http's client, so that the proxies, not the load generator,
// are what saturates (with node:http's client even direct calls stopped near 4,800 req/s).
//
// Five targets; each phase runs --rounds rounds (default 6) of every target in turn, after a warm-up
// of each, so that whatever else the machine does falls on all of them alike: the direct
// call; a TCP relay in the gateway's process (bytes passed on, no HTTP: what the hops between the
// cores alone cost, the floor of any proxy here); two bare pass-through proxies there too, no checks,
// no log: one on node:http's client (what any Node proxy costs on that core) and one on undici's
// Pool as the gateway uses it (the floor for the gateway's own way of proxying); the gateway.
// - throughput: --saturate connections (default 32), unpaced, as fast as answers come: req/s.
//   The proxy process's CPU time per request is also reported; 1e6 / that is what one core
//   carries even when something else (the load generator's core, other processes) limits req/s.
//   Both are the median of the rounds.
//   The goal "5,000 req/s on one core" is checked against that: the req/s measured also depends on
//   the load generator's core, which runs the upstream too.
// - latency: --connections connections (default 10) paced to --rate requests/s in total (default:
//   a quarter of the gateway's req/s in the throughput phase, so it is busy but not saturated);
//   p50/p99/p99.9 of the time from sending a request to the last byte of its answer, over all the
//   rounds' requests.
//   Overhead = gateway - direct at the same rate. The proxy process's garbage-collection pauses are
//   reported with each phase.
// Each phase also reports how busy other processes kept the two cores meanwhile (from /proc/stat):
// on a shared machine, wall-clock figures are only as good as that.
//
// Usage: npm run bench:gateway -- [--duration 10] [--warmup 3] [--connections 10] [--rate N]
//        [--saturate 32] [--rounds 6] [--processes 3] [--users 100] [--tenants 10] [--method POST|GET] [--no-log] [--no-token-cache] [--cpu-prof DIR]
//        [--node-flags="FLAGS"] [--targets gateway,...] [-o json] [--help]
// (or, after `npm run build`: node bench/gateway/run.js ...). --targets runs only those (direct,
// tcp_relay, bare_proxy, bare_undici, gateway) and prints their figures alone (for a profile). Measured
// figures and where the gateway's time goes: bench/gateway/README.md.
import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { Client } from 'undici';
import { requiredScopes } from '../../dist/gateway/scopes.js';

const usage = `usage: node bench/gateway/run.js [options]   (or: npm run bench:gateway -- [options])
  --duration S        seconds per target per phase, over all rounds (10)
  --warmup S          warm-up seconds per target (3)
  --rounds N          rounds of every target per phase (6)
  --processes N       gateway processes (3): a proxy's rounds take them in turn, as two processes of
                      one build differ by up to 8% here
  --saturate N        connections in the throughput phase (32)
  --connections N     connections in the latency phase (10)
  --rate N            req/s in the latency phase (a quarter of the gateway's saturated req/s)
  --users N           users (100), over --tenants N tenants (10)
  --method POST|GET   the request sent (POST)
  --targets a,b       only these of direct, tcp_relay, bare_proxy, bare_undici, gateway (their
                      figures alone)
  --no-log            the gateway writes no access log
  --no-token-cache    every request's signature verified
  --cpu-prof DIR      a V8 CPU profile of the gateway process, written to DIR
  --node-flags=F      node flags for the gateway process (e.g. --node-flags=--perf-basic-prof;
                      with "=", as the value starts with a dash)
  -o json             the figures as JSON on stdout
  -h, --help          this text`;
let parsed;
try {
  parsed = parseArgs({
    strict: true,
    options: {
      duration: { type: 'string', default: '10' },
      warmup: { type: 'string', default: '3' },
      rounds: { type: 'string', default: '6' },
      processes: { type: 'string', default: '3' },
      saturate: { type: 'string', default: '32' },
      connections: { type: 'string', default: '10' },
      rate: { type: 'string' },
      users: { type: 'string', default: '100' },
      tenants: { type: 'string', default: '10' },
      method: { type: 'string', default: 'POST' },
      targets: { type: 'string' },
      'no-log': { type: 'boolean', default: false },
      'no-token-cache': { type: 'boolean', default: false },
      'cpu-prof': { type: 'string' },
      'node-flags': { type: 'string', default: '' },
      output: { type: 'string', short: 'o' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  }).values;
} catch (err) {
  process.stderr.write(`bench gateway: ${err.message}\n${usage}\n`);
  process.exit(2);
}
if (parsed.help) {
  process.stdout.write(`${usage}\n`);
  process.exit(0);
}
/** A positive number option (a whole one with `whole`), or exit 2 naming it. */
const positive = (name, whole = false) => {
  const n = Number(parsed[name]);
  if (!(n > 0) || (whole && !Number.isInteger(n))) {
    process.stderr.write(`bench gateway: --${name} must be a positive ${whole ? 'whole ' : ''}number, not ${JSON.stringify(parsed[name])}\n`);
    process.exit(2);
  }
  return n;
};
const TARGETS = ['direct', 'tcp_relay', 'bare_proxy', 'bare_undici', 'gateway'];
const durationMs = positive('duration') * 1000;
const warmupMs = positive('warmup') * 1000;
const connections = positive('connections', true);
const fixedRate = parsed.rate === undefined ? undefined : positive('rate');
const saturate = positive('saturate', true);
const roundCount = positive('rounds', true); // each phase: this many rounds of every target in turn, durationMs in all per target
const processCount = positive('processes', true); // the proxies' rounds take the gateway processes in turn
const userCount = positive('users', true);
const tenantCount = positive('tenants', true);
const method = parsed.method.toUpperCase();
const accessLog = !parsed['no-log'];
const tokenCache = !parsed['no-token-cache']; // off: every request's signature is verified
const only = parsed.targets?.split(','); // e.g. gateway: only those targets (a profile of one of them)
const json = parsed.output === 'json';
const problems = [
  ...(method === 'POST' || method === 'GET' ? [] : [`--method must be POST or GET, not ${parsed.method}`]),
  ...(only ?? []).filter((t) => !TARGETS.includes(t)).map((t) => `--targets: unknown target ${t} (one of ${TARGETS.join(', ')})`),
  ...(parsed.output === undefined || json ? [] : [`-o must be json, not ${parsed.output}`]),
];
if (problems.length) {
  process.stderr.write(problems.map((p) => `bench gateway: ${p}\n`).join(''));
  process.exit(2);
}
const progress = (msg) => process.stderr.write(`[bench gateway] ${msg}\n`);

// --- Cores -----------------------------------------------------------------------------------
function pinning() {
  if (process.platform !== 'linux' || os.availableParallelism() < 2) return undefined;
  try {
    execFileSync('taskset', ['-a', '-c', '-p', '1', String(process.pid)], { stdio: 'ignore' });
    return { gateway: '0', loadAndUpstream: '1' };
  } catch {
    return undefined;
  }
}
const pinned = pinning();

// --- Data: keys, tokens, configuration -------------------------------------------------------
const KID = 'bench-rs256';
const { publicKey, privateKey } = await generateKeyPair('RS256', { modulusLength: 2048 });
const jwks = { keys: [{ ...(await exportJWK(publicKey)), kid: KID, kty: 'RSA', alg: 'RS256', use: 'sig' }] };
const AGENT = 'assistant';
const tenants = Array.from({ length: tenantCount }, (_, t) => `tenant-${String(t).padStart(3, '0')}`);
const issuerOf = (tenant) => `http://keycloak.bench.invalid/realms/${tenant}`;
const TENANT_SCOPE = 'read';

/** The card a tenant serves for the agent (as compile/card.ts builds it), whose `security` the gateway enforces. */
const cardOf = (tenant) => ({
  protocolVersion: '0.3.0',
  name: AGENT,
  description: 'The assistant agent',
  url: `http://localhost:8080/api/v1/agents/${AGENT}`,
  preferredTransport: 'JSONRPC',
  version: '1.0.0',
  capabilities: {},
  defaultInputModes: ['text/plain'],
  defaultOutputModes: ['text/plain'],
  skills: [],
  securitySchemes: {
    oauth2: {
      type: 'oauth2',
      flows: { authorizationCode: { authorizationUrl: `${issuerOf(tenant)}/protocol/openid-connect/auth`, tokenUrl: `${issuerOf(tenant)}/protocol/openid-connect/token`, scopes: { user: 'Authenticated user access', read: 'Read tenant data' } } },
    },
  },
  security: [{ oauth2: ['user', TENANT_SCOPE] }],
});

/** A Keycloak access token of `tenant`'s realm for `user`, audience the agent's client, valid for an hour. */
async function accessToken(tenant, u) {
  const now = Math.floor(Date.now() / 1000);
  const sub = `${String(u).padStart(8, '0')}-7e1c-4b7a-9d3e-${String(u * 7919).padStart(12, '0')}`;
  const email = `user${u}@${tenant}.example.com`;
  return new SignJWT({
    typ: 'Bearer',
    azp: 'systemprompt-web',
    sid: `${sub.slice(0, 8)}-session`,
    acr: '1',
    'allowed-origins': ['https://app.example.com'],
    realm_access: { roles: ['default-roles', 'offline_access', 'uma_authorization'] },
    resource_access: { account: { roles: ['manage-account', 'view-profile'] } },
    scope: `openid email profile user ${TENANT_SCOPE}`,
    email_verified: true,
    name: `User ${u}`,
    preferred_username: email,
    given_name: 'User',
    family_name: String(u),
    email,
    tenant_id: tenant,
  })
    .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: KID })
    .setIssuer(issuerOf(tenant))
    .setAudience([AGENT, 'account'])
    .setSubject(sub)
    .setJti(`${sub}-${u}`)
    .setIssuedAt(now)
    .setExpirationTime(now + 3600)
    .sign(privateKey);
}
const tokens = await Promise.all(Array.from({ length: userCount }, (_, u) => accessToken(tenants[u % tenants.length], u)));
const authorizations = tokens.map((t) => `Bearer ${t}`);

// --- The upstream ----------------------------------------------------------------------------
const answer = Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, result: { kind: 'message', role: 'agent', messageId: 'm-1', parts: [{ kind: 'text', text: 'ok' }] } }));
const seen = { direct: 0, gateway: 0 };
const upstream = http.createServer((req, res) => {
  req.on('data', () => {});
  req.on('end', () => {
    if (req.headers['x-systemprompt-tenant']) seen.gateway++;
    else seen.direct++;
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
    res.end(answer);
  });
});
upstream.keepAliveTimeout = 60_000;
await new Promise((r) => upstream.listen(0, '127.0.0.1', r));
const upstreamPort = upstream.address().port;

// --- The gateway, in its own processes -------------------------------------------------------
const gatewayScript = fileURLToPath(new URL('./gateway.js', import.meta.url));
const profDir = parsed['cpu-prof']; // a directory: the gateway process writes a .cpuprofile there
const nodeFlags = parsed['node-flags'].split(' ').filter(Boolean); // e.g. "--perf-basic-prof" for perf(1)
const nodeArgs = [...nodeFlags, ...(profDir ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []), gatewayScript];
const [cmd, argv] = pinned ? ['taskset', ['-c', pinned.gateway, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
const tenantEntry = (t) => [t, { issuer: issuerOf(t), quotas: { requestsPerMinute: 1e12, requestsPerMinutePerUser: 1e12 }, cards: [[AGENT, cardOf(t)]] }];
/**
 * One gateway process (with the two bare proxies), set up over IPC: its ports, and cpu() for its CPU
 * time and GC pauses so far. Several of them: two processes of the same build, measured alike,
 * differ by up to 8% in CPU per request on this machine (where the JIT and memory happen to put
 * things), so a proxy's rounds take the processes in turn and its median spans them.
 */
async function startGateway() {
  const child = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
  let waiting;
  child.on('message', (m) => waiting?.resolve(m));
  child.on('exit', (code) => waiting?.reject(new Error(`the gateway process exited (${code})`)));
  const fromChild = () => new Promise((resolve, reject) => (waiting = { resolve, reject }));
  const listening = fromChild();
  child.send({
    jwks,
    log: accessLog,
    tokenCache,
    issuers: tenants.map((t) => [issuerOf(t), [t]]),
    agents: [[AGENT, { upstream: `http://127.0.0.1:${upstreamPort}`, required: requiredScopes(cardOf(tenants[0])) }]],
    tenants: tenants.map(tenantEntry),
    upstreamPort,
  });
  const { port, barePort, bareUndiciPort, relayPort } = await listening;
  return {
    ports: { gateway: port, bare_proxy: barePort, bare_undici: bareUndiciPort, tcp_relay: relayPort },
    cpu: () => {
      const m = fromChild();
      child.send('cpu');
      return m;
    },
    exit: () => child.send('exit'),
  };
}
const gateways = [];
for (let i = 0; i < processCount; i++) gateways.push(await startGateway());

// --- The load generator ----------------------------------------------------------------------
const body = method === 'GET' ? undefined : Buffer.from(JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'message/send', params: { message: { role: 'user', messageId: 'm-0', parts: [{ kind: 'text', text: 'Hello, agent.' }] } } }));
/** Where each target listens: the upstream, or a port of the gateway process the round uses. */
const targets = {
  direct: { path: '/', portIn: () => upstreamPort },
  tcp_relay: { path: '/', portIn: (g) => g.ports.tcp_relay },
  bare_proxy: { path: '/', portIn: (g) => g.ports.bare_proxy },
  bare_undici: { path: '/', portIn: (g) => g.ports.bare_undici },
  gateway: { path: `/api/v1/agents/${AGENT}`, portIn: (g) => g.ports.gateway },
};
if (only) for (const name of Object.keys(targets)) if (!only.includes(name)) delete targets[name];
let turn = 0;

/** One request on `client` (an undici Client: one keep-alive connection); resolves at the answer's last byte. */
function send(client, target) {
  return new Promise((resolve, reject) => {
    const headers = { authorization: authorizations[turn++ % authorizations.length], accept: 'application/json' };
    if (body) headers['content-type'] = 'application/json';
    let status = 0;
    client.dispatch({ path: target.path, method, headers, body: body ?? null }, {
      onConnect() {},
      onError: reject,
      onHeaders: (code) => ((status = code), true),
      onData: () => true,
      onComplete: () => (status === 200 ? resolve() : reject(new Error(`HTTP ${status} from ${target.path}`))),
    });
  });
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** `conns` keep-alive connections, each sending its next request when the last is answered (and, with `perSecond`, not before its turn). */
async function load(target, gateway, { conns, ms, perSecond }) {
  const latencies = [];
  const agents = Array.from({ length: conns }, () => new Client(`http://127.0.0.1:${target.portIn(gateway)}`, { keepAliveTimeout: 60_000 }));
  const start = performance.now();
  const end = start + ms;
  let last = start;
  const interval = perSecond ? (1000 * conns) / perSecond : 0;
  await Promise.all(agents.map(async (agent, i) => {
    let next = start + (interval * i) / conns;
    while (performance.now() < end) {
      if (interval) {
        const wait = next - performance.now();
        if (wait >= 1) await sleep(wait);
        next = Math.max(next + interval, performance.now() - interval); // behind schedule: no burst to catch up
      }
      const t0 = performance.now();
      await send(agent, target);
      last = performance.now();
      latencies.push(last - t0);
    }
  }));
  await Promise.all(agents.map((a) => a.close()));
  return { latencies, seconds: (last - start) / 1000 };
}

/** Busy and steal time of each CPU so far, in µs (Linux; undefined elsewhere). */
function cpuTimes() {
  try {
    const hz = 100; // USER_HZ
    return Object.fromEntries(readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).map((l) => {
      const [name, user, nice, system, , , irq, softirq, steal] = l.split(/\s+/);
      return [name.slice(3), { busy: ((+user + +nice + +system + +irq + +softirq) * 1e6) / hz, steal: (+steal * 1e6) / hz }];
    }));
  } catch {
    return undefined;
  }
}

/** One round of a phase for one target (in `gateway`'s process, for a proxy), with the CPU time (µs) of that process, of this one, and of everything else on the two cores. */
async function round(target, gateway, opts) {
  const c0 = await gateway.cpu();
  const m0 = process.cpuUsage();
  const s0 = cpuTimes();
  const { latencies, seconds } = await load(target, gateway, opts);
  const s1 = cpuTimes();
  const m1 = process.cpuUsage(m0);
  const c1 = await gateway.cpu();
  const r = {
    latencies,
    seconds,
    proxyCpuMicros: c1.cpuMicros - c0.cpuMicros,
    proxySystemMicros: c1.systemMicros - c0.systemMicros, // of which in the kernel (system calls, loopback TCP)
    gc: { pauses: c1.gc.pauses - c0.gc.pauses, totalMs: c1.gc.totalMs - c0.gc.totalMs, maxMs: c1.gc.maxMs },
    loadCpuMicros: m1.user + m1.system,
  };
  if (pinned && s0 && s1) {
    const [a, b] = [pinned.gateway, pinned.loadAndUpstream];
    // Others = what the CPU did minus what our two processes did on it (each pinned to its own).
    r.others = { proxyCore: s1[a].busy - s0[a].busy - r.proxyCpuMicros, loadCore: s1[b].busy - s0[b].busy - r.loadCpuMicros, steal: s1[a].steal - s0[a].steal + s1[b].steal - s0[b].steal };
  }
  return r;
}

const median = (xs) => {
  const v = [...xs].sort((x, y) => x - y);
  return v.length % 2 ? v[v.length >> 1] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};
const sum = (xs) => xs.reduce((x, y) => x + y, 0);

/**
 * A phase: `rounds` rounds of every target in turn (so that whatever else the machine does falls on
 * all of them alike), a proxy's rounds in the gateway processes in turn. Per target: req/s and CPU
 * per request are the median of its rounds; latency percentiles are over all of its requests.
 */
async function phase(label, opts) {
  const rounds = Object.fromEntries(Object.keys(targets).map((name) => [name, []]));
  for (let i = 0; i < roundCount; i++) {
    for (const [name, target] of Object.entries(targets)) {
      const gateway = gateways[i % gateways.length];
      // A gateway process idle for the other processes' rounds collects more garbage when load
      // resumes (at saturation 200-205 ms per 10 s against 146-168 with this): half a second of the
      // same load first, unmeasured.
      if (name !== 'direct' && gateways.length > 1) await load(target, gateway, { ...opts, ms: Math.min(500, warmupMs) });
      rounds[name].push(await round(target, gateway, { ...opts, ms: durationMs / roundCount }));
    }
  }
  const out = {};
  for (const [name, rs] of Object.entries(rounds)) {
    const latencies = rs.flatMap((r) => r.latencies).sort((x, y) => x - y);
    const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
    const seconds = sum(rs.map((r) => r.seconds));
    out[name] = {
      requests: latencies.length,
      seconds,
      reqPerSec: median(rs.map((r) => r.latencies.length / r.seconds)),
      p50: at(0.5),
      p99: at(0.99),
      p999: at(0.999),
      max: latencies[latencies.length - 1],
      proxyCpuPerReq: median(rs.map((r) => r.proxyCpuMicros / r.latencies.length)),
      proxySystemPerReq: median(rs.map((r) => r.proxySystemMicros / r.latencies.length)),
      proxyCoreBusy: sum(rs.map((r) => r.proxyCpuMicros)) / 1e6 / seconds,
      loadCoreBusy: sum(rs.map((r) => r.loadCpuMicros)) / 1e6 / seconds,
      gc: { pauses: sum(rs.map((r) => r.gc.pauses)), totalMs: sum(rs.map((r) => r.gc.totalMs)), maxMs: Math.max(...rs.map((r) => r.gc.maxMs)) },
      ...(rs[0].others ? { others: { proxyCore: sum(rs.map((r) => r.others.proxyCore)) / 1e6 / seconds, loadCore: sum(rs.map((r) => r.others.loadCore)) / 1e6 / seconds, steal: sum(rs.map((r) => r.others.steal)) / 1e6 / seconds } } : {}),
    };
    progress(`${label} ${name}: ${Math.round(out[name].reqPerSec)} req/s, p50 ${out[name].p50.toFixed(3)} ms, p99 ${out[name].p99.toFixed(3)} ms${name === 'direct' ? '' : `, ${out[name].proxyCpuPerReq.toFixed(0)} µs CPU/req`}`);
  }
  return out;
}

progress(`cores: ${pinned ? `proxies on ${pinned.gateway}, load generator + upstream on ${pinned.loadAndUpstream}` : 'not pinned'}; ${processCount} gateway process(es); warm-up ${warmupMs / 1000} s each; ${roundCount} rounds of each target per phase`);
for (const [name, target] of Object.entries(targets)) for (const g of name === 'direct' ? gateways.slice(0, 1) : gateways) await load(target, g, { conns: saturate, ms: warmupMs });
const throughput = await phase('throughput', { conns: saturate });
const rate = fixedRate !== undefined ? Number(fixedRate) : Math.max(10, Math.round((throughput.gateway ?? Object.values(throughput)[0]).reqPerSec / 4 / 10) * 10);
const latency = await phase('latency', { conns: connections, perSecond: rate });
let jwksFetches = 0;
for (const g of gateways) {
  jwksFetches += (await g.cpu()).jwksFetches;
  g.exit();
}
upstream.closeAllConnections();
upstream.close();

// --- Report ----------------------------------------------------------------------------------
if (only) {
  // Some targets only (for a profile): their figures, no comparison.
  const brief = (r) => ({ req_per_s: Math.round(r.reqPerSec), p50_ms: r.p50, p99_ms: r.p99, proxy_cpu_us_per_req: r.proxyCpuPerReq, proxy_system_us_per_req: r.proxySystemPerReq, proxy_gc: r.gc });
  console.log(JSON.stringify({ throughput: Object.fromEntries(Object.entries(throughput).map(([k, r]) => [k, brief(r)])), latency: Object.fromEntries(Object.entries(latency).map(([k, r]) => [k, brief(r)])) }, null, 2));
  process.exit(0);
}
const ms = (x) => Number(x.toFixed(3));
const two = (x) => Number(x.toFixed(2));
const summary = (r, proxied) => ({
  requests: r.requests,
  req_per_s: Math.round(r.reqPerSec),
  p50_ms: ms(r.p50),
  p99_ms: ms(r.p99),
  p999_ms: ms(r.p999),
  max_ms: ms(r.max),
  ...(proxied
    ? {
        proxy_cpu_us_per_req: Number(r.proxyCpuPerReq.toFixed(1)),
        proxy_system_us_per_req: Number(r.proxySystemPerReq.toFixed(1)),
        proxy_core_busy: two(r.proxyCoreBusy),
        // Garbage-collection pauses of the proxy process during the phase (each holds every request in flight).
        proxy_gc: { pauses: r.gc.pauses, total_ms: ms(r.gc.totalMs), max_ms: ms(r.gc.maxMs) },
      }
    : {}),
  load_core_busy: two(r.loadCoreBusy),
  // How busy other processes kept each core meanwhile (0 on a quiet machine); hypervisor steal of both.
  ...(r.others ? { others_on_proxy_core: two(r.others.proxyCore), others_on_load_core: two(r.others.loadCore), steal: two(r.others.steal) } : {}),
});
const overhead = (a, b) => ({ p50_ms: ms(a.p50 - b.p50), p99_ms: ms(a.p99 - b.p99), ratio_p50: Number((a.p50 / b.p50).toFixed(2)), ratio_p99: Number((a.p99 / b.p99).toFixed(2)) });
/** What one core carries of a proxy, from its CPU time per request (whatever limited req/s in the run). */
const oneCore = (r) => Math.round(1e6 / r.proxyCpuPerReq);
const ratio = (a, b) => Number((a / b).toFixed(2));
const PROXIES = ['tcp_relay', 'bare_proxy', 'bare_undici', 'gateway'];
const result = {
  node: process.version,
  cores: pinned ? { proxies: `cpu ${pinned.gateway} (taskset)`, load_generator_and_upstream: `cpu ${pinned.loadAndUpstream} (taskset)` } : 'not pinned (no taskset or fewer than 2 CPUs)',
  request: { method, body_bytes: body?.length ?? 0, answer_bytes: answer.length, token_bytes: tokens[0].length, users: userCount, tenants: tenantCount, access_log: accessLog ? 'JSON lines to /dev/null' : 'off', verified_token_cache: tokenCache },
  duration_s: durationMs / 1000,
  rounds: roundCount,
  gateway_processes: processCount,
  throughput: {
    load: `${saturate} connections, unpaced (saturation)`,
    direct: summary(throughput.direct, false),
    ...Object.fromEntries(PROXIES.map((name) => [name, summary(throughput[name], true)])),
    ratio_gateway_to_direct: ratio(throughput.gateway.reqPerSec, throughput.direct.reqPerSec),
    ratio_gateway_to_bare_proxy: ratio(throughput.gateway.reqPerSec, throughput.bare_proxy.reqPerSec),
    ratio_gateway_to_bare_undici: ratio(throughput.gateway.reqPerSec, throughput.bare_undici.reqPerSec),
    // What one core carries, from CPU time per request: the load generator's core (it also runs the
    // upstream) limits the req/s measured here to about the direct figure.
    one_core_capacity_req_per_s: Object.fromEntries(PROXIES.map((name) => [name, oneCore(throughput[name])])),
  },
  latency: {
    load: `${connections} connections paced to ${rate} req/s in total${fixedRate === undefined ? " (a quarter of the gateway's saturated req/s)" : ''}`,
    direct: summary(latency.direct, false),
    ...Object.fromEntries(PROXIES.map((name) => [name, summary(latency[name], true)])),
    gateway_overhead: overhead(latency.gateway, latency.direct),
    tcp_relay_overhead: overhead(latency.tcp_relay, latency.direct),
    bare_undici_overhead: overhead(latency.bare_undici, latency.direct),
    gateway_over_tcp_relay: overhead(latency.gateway, latency.tcp_relay),
    gateway_over_bare_undici: overhead(latency.gateway, latency.bare_undici),
  },
  goals: {
    p99_overhead_under_2ms: latency.gateway.p99 - latency.direct.p99 < 2,
    at_least_5000_req_per_s_on_one_core: oneCore(throughput.gateway) >= 5000,
  },
  checks: { upstream_saw_direct_or_bare_proxies: seen.direct, upstream_saw_via_gateway: seen.gateway, jwks_fetches: jwksFetches },
};
// One fetch per realm (each tenant has its own issuer here) and gateway process, during the warm-up; none after.
if (jwksFetches !== tenantCount * processCount) throw new Error(`the gateway processes fetched JWKS ${jwksFetches} times for ${tenantCount} realms in ${processCount}; the keys were meant to stay cached`);

if (json) {
  console.log(JSON.stringify(result, null, 2));
} else {
  const row = (label, r, proxied) => {
    const p = summary(r, proxied);
    const others = p.others_on_proxy_core !== undefined ? `  others busy: cpu ${pinned.gateway} ${p.others_on_proxy_core}, cpu ${pinned.loadAndUpstream} ${p.others_on_load_core}` : '';
    return `  ${label.padEnd(11)} ${String(p.req_per_s).padStart(6)} req/s  p50 ${r.p50.toFixed(3).padStart(7)} ms  p99 ${r.p99.toFixed(3).padStart(7)} ms  p99.9 ${r.p999.toFixed(3).padStart(7)} ms${proxied ? `  ${p.proxy_cpu_us_per_req} µs CPU/req, GC ${p.proxy_gc.pauses}x max ${p.proxy_gc.max_ms} ms` : ''}${others}`;
  };
  const rows = (phases) => [row('direct', phases.direct, false), row('tcp relay', phases.tcp_relay, true), row('bare proxy', phases.bare_proxy, true), row('bare undici', phases.bare_undici, true), row('gateway', phases.gateway, true)];
  const o = result.latency.gateway_overhead;
  const signed = (x) => (x < 0 ? String(x) : `+${x}`);
  const cap = result.throughput.one_core_capacity_req_per_s;
  console.log([
    `node ${process.version}; ${pinned ? `proxies on cpu ${pinned.gateway}, load generator + upstream on cpu ${pinned.loadAndUpstream}` : result.cores}; ${processCount} gateway process(es), ${roundCount} rounds of each target per phase`,
    `${method} ${result.request.body_bytes} B, answer ${answer.length} B, RS256 token ${result.request.token_bytes} B, ${userCount} users / ${tenantCount} tenants, access log ${result.request.access_log}, verified-token cache ${tokenCache ? 'on' : 'off'}`,
    `throughput (${result.throughput.load}, ${durationMs / 1000} s):`,
    ...rows(throughput),
    `  gateway/direct req/s x${result.throughput.ratio_gateway_to_direct}, gateway/bare proxy x${result.throughput.ratio_gateway_to_bare_proxy}, gateway/bare undici x${result.throughput.ratio_gateway_to_bare_undici}`,
    `  one core carries (from CPU time per request): gateway ~${cap.gateway} req/s, bare undici ~${cap.bare_undici}, bare proxy ~${cap.bare_proxy}`,
    `latency (${result.latency.load}, ${durationMs / 1000} s):`,
    ...rows(latency),
    `  gateway overhead: p50 ${signed(o.p50_ms)} ms, p99 ${signed(o.p99_ms)} ms (x${o.ratio_p50} / x${o.ratio_p99}); ${['bare_undici', 'tcp_relay'].map((name) => `${name.replace('_', ' ')}'s: p50 ${signed(result.latency[`${name}_overhead`].p50_ms)} ms, p99 ${signed(result.latency[`${name}_overhead`].p99_ms)} ms`).join('; ')}`,
    `goals: p99 overhead < 2 ms: ${result.goals.p99_overhead_under_2ms ? 'yes' : 'NO'}; >= 5,000 req/s on one core: ${result.goals.at_least_5000_req_per_s_on_one_core ? 'yes' : 'NO'}`,
  ].join('\n'));
}
