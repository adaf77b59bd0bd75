// The gateway under test, as its own process (bench/gateway/run.js starts it, pinned to one core).
// It is wired as `systemprompt gateway` wires it (src/commands/gateway.ts): V8's pretenuring off
// (tuneHeapForRequests), TokenVerifier over a JwksCache, MemoryRateLimiter, one JSON access-log line per request on stdout (run.js points
// stdout at /dev/null; with --no-log, no log); only the JWKS fetcher is local instead of HTTP.
// The setup (JWKS, issuers, agents, tenants, log and verified-token cache on or off) comes from
// run.js over the IPC channel; the reply is the ports listened on: the gateway's, that of a bare
// pass-through proxy (the reference for what any node:http proxy costs on this core), that of the
// same on undici, the gateway's upstream client, and that of a TCP relay (bytes passed on, no HTTP:
// the floor any proxy pays here, its hops between the cores). Then it answers `cpu` messages with
// its CPU time so far (user + system, all threads; system apart) and its garbage-collection pauses.
import http from 'node:http';
import net from 'node:net';
import { PerformanceObserver } from 'node:perf_hooks';
import { Pool } from 'undici';
import { tuneHeapForRequests } from '../../dist/gateway/heap.js';
import { JwksCache } from '../../dist/gateway/jwks.js';
import { MemoryRateLimiter } from '../../dist/gateway/ratelimit.js';
import { createGateway } from '../../dist/gateway/server.js';
import { TokenVerifier } from '../../dist/gateway/tokens.js';

// Garbage-collection pauses of this process (each stops every request in flight): for the latency figures.
const gc = { pauses: 0, totalMs: 0, maxMs: 0 };
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) {
    gc.pauses++;
    gc.totalMs += e.duration;
    gc.maxMs = Math.max(gc.maxMs, e.duration);
  }
}).observe({ entryTypes: ['gc'] });

tuneHeapForRequests();
process.once('message', (setup) => {
  const issuers = new Map(setup.issuers.map(([iss, tenants]) => [iss, new Set(tenants)]));
  const config = {
    agents: new Map(setup.agents),
    tenants: new Map(setup.tenants.map(([name, t]) => [name, { ...t, cards: new Map(t.cards) }])),
  };
  let fetches = 0;
  const keys = new JwksCache({ fetchJwks: async () => (fetches++, setup.jwks) });
  const server = createGateway({
    config: () => config,
    verifier: new TokenVerifier({ issuers, keys, ...(setup.tokenCache ? {} : { verifiedCacheSize: 0 }) }),
    limiter: new MemoryRateLimiter(),
    ...(setup.log ? {} : { log: () => {} }),
  });
  // The reference: a bare node:http pass-through proxy to the same upstream, no checks, no log.
  const agent = new http.Agent({ keepAlive: true });
  const bare = http.createServer((req, res) => {
    const up = http.request({ host: '127.0.0.1', port: setup.upstreamPort, path: req.url, method: req.method, headers: req.headers, agent }, (r) => {
      res.writeHead(r.statusCode ?? 502, r.headers);
      r.pipe(res);
    });
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  bare.keepAliveTimeout = 60_000;
  // The same on undici's Pool, as the gateway sends upstream: the body read whole, the answer streamed.
  // No checks either: the floor for the gateway's way of proxying.
  const pool = new Pool(`http://127.0.0.1:${setup.upstreamPort}`);
  const bareUndici = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const headers = {};
      for (const [k, v] of Object.entries(req.headers)) if (k !== 'connection' && k !== 'content-length' && k !== 'host') headers[k] = v;
      const body = chunks.length ? Buffer.concat(chunks) : null;
      pool.dispatch({ path: req.url, method: req.method, headers, body }, {
        onConnect() {},
        onError: () => res.destroy(),
        onHeaders(status, raw) {
          const list = [];
          for (let i = 0; i < raw.length; i += 2) {
            const name = raw[i].toString('latin1').toLowerCase();
            if (name !== 'connection' && name !== 'keep-alive') list.push(name, raw[i + 1].toString('latin1'));
          }
          res.writeHead(status, list);
          return true;
        },
        onData: (chunk) => res.write(chunk),
        onComplete: () => res.end(),
      });
    });
  });
  bareUndici.keepAliveTimeout = 60_000;
  // The floor: a TCP relay, one upstream connection per client connection, bytes passed on as they
  // come (no parsing, no HTTP). What is left of a proxy's overhead is the path through its process.
  const relay = net.createServer({ noDelay: true }, (client) => {
    const up = net.connect({ port: setup.upstreamPort, host: '127.0.0.1', noDelay: true });
    client.pipe(up).on('error', () => client.destroy());
    up.pipe(client).on('error', () => up.destroy());
    client.on('close', () => up.destroy());
    up.on('close', () => client.destroy());
  });
  const listening = [server, bare, bareUndici, relay].map((s) => new Promise((resolve) => s.listen(0, '127.0.0.1', resolve)));
  Promise.all(listening).then(() => {
    const port = (s) => s.address().port;
    process.send({ port: port(server), barePort: port(bare), bareUndiciPort: port(bareUndici), relayPort: port(relay) });
    process.on('message', (m) => {
      if (m === 'cpu') {
        const { user, system } = process.cpuUsage();
        process.send({ cpuMicros: user + system, systemMicros: system, jwksFetches: fetches, gc: { ...gc } });
        gc.maxMs = 0; // the next answer's max is that since this one
      } else if (m === 'exit') {
        process.exit(0);
      }
    });
  });
});
