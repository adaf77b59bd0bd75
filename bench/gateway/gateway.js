// The gateway under test, as its own process (bench/gateway/run.js starts it, pinned to one core).
// It is wired as `systemprompt gateway` wires it (src/commands/gateway.ts): TokenVerifier over a
// JwksCache, MemoryRateLimiter, one JSON access-log line per request on stdout (run.js points
// stdout at /dev/null; with --no-log, no log); only the JWKS fetcher is local instead of HTTP.
// The setup (JWKS, issuers, agents, tenants, log and verified-token cache on or off) comes from
// run.js over the IPC channel; the reply is the ports listened on: the gateway's and that of a bare
// pass-through proxy (the reference for what any node:http proxy costs on this core). Then it
// answers `cpu` messages with its CPU time so far (user + system, all threads).
import http from 'node:http';
import { JwksCache } from '../../dist/gateway/jwks.js';
import { MemoryRateLimiter } from '../../dist/gateway/ratelimit.js';
import { createGateway } from '../../dist/gateway/server.js';
import { TokenVerifier } from '../../dist/gateway/tokens.js';

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
  server.listen(0, '127.0.0.1', () => bare.listen(0, '127.0.0.1', () => {
    process.send({ port: server.address().port, barePort: bare.address().port });
    process.on('message', (m) => {
      if (m === 'cpu') {
        const { user, system } = process.cpuUsage();
        process.send({ cpuMicros: user + system, jwksFetches: fetches });
      } else if (m === 'exit') {
        process.exit(0);
      }
    });
  }));
});
