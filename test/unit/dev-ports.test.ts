import { createServer, type Server } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageError } from '../../src/errors.js';
import { DEFAULT_PORTS, isPortFree, listeningInodes, parsePort, parsePortOverrides } from '../../src/dev/ports.js';

describe('parsePort', () => {
  it('accepts unprivileged ports', () => {
    expect(parsePort(' 15432 ', 'x')).toBe(15432);
  });
  it.each(['', 'abc', '80', '70000', '1.5', '-1', '123456'])('rejects %j', (text) => {
    expect(() => parsePort(text, 'x')).toThrow(UsageError);
  });
});

describe('parsePortOverrides', () => {
  it('returns the defaults for no spec', () => {
    expect(parsePortOverrides(undefined)).toEqual(DEFAULT_PORTS);
    expect(parsePortOverrides('')).toEqual(DEFAULT_PORTS);
  });
  it('overrides by name, case-insensitively, over a base', () => {
    const p = parsePortOverrides('Postgres=25432, keycloak=28080,keycloak-management=29000,apiserver=26443,etcd-client=22379,etcd-peer=22380');
    expect(p).toEqual({ postgres: 25432, postgres2: 25433, keycloakHttp: 28080, keycloakManagement: 29000, apiserver: 26443, etcdClient: 22379, etcdPeer: 22380, redis: 16379 });
    expect(parsePortOverrides('postgres=25432', { ...DEFAULT_PORTS, apiserver: 26443 }).apiserver).toBe(26443);
  });
  it('puts the second PostgreSQL server on the port after the first unless it is named', () => {
    expect(DEFAULT_PORTS.postgres2).toBe(15433);
    expect(parsePortOverrides('postgres=25432').postgres2).toBe(25433);
    expect(parsePortOverrides('postgres=25432,postgres-2=25500').postgres2).toBe(25500);
    expect(parsePortOverrides('postgres-2=25500').postgres).toBe(15432);
    // A recorded stack keeps its second server's port; one recorded before it had one gets the next port.
    expect(parsePortOverrides(undefined, { ...DEFAULT_PORTS, postgres: 25432, postgres2: 25999 }).postgres2).toBe(25999);
    const { postgres2: _, ...older } = { ...DEFAULT_PORTS, postgres: 25432 };
    expect(parsePortOverrides(undefined, older).postgres2).toBe(25433);
    expect(() => parsePortOverrides('postgres=18079')).toThrow(/both use port 18080/);
  });
  it('rejects unknown names and malformed items with the accepted names in the hint', () => {
    expect(() => parsePortOverrides('pg=1')).toThrow(/unknown port name "pg"/);
    expect(() => parsePortOverrides('postgres')).toThrow(/not NAME=PORT/);
    try {
      parsePortOverrides('memcached=11211');
    } catch (e) {
      expect((e as UsageError).hint).toContain('keycloak-management');
    }
  });
  it("gives the stack's Redis a port of its own, never the system Redis' 6379, and lets it move", () => {
    expect(DEFAULT_PORTS.redis).toBe(16379);
    expect(parsePortOverrides('Redis=26379').redis).toBe(26379);
    // A stack recorded before it had a Redis gets the default.
    const { redis: _, ...older } = DEFAULT_PORTS;
    expect(parsePortOverrides(undefined, older).redis).toBe(16379);
    expect(() => parsePortOverrides('redis=15432')).toThrow(/postgres and redis both use port 15432/);
  });
  it('rejects two services on one port', () => {
    expect(() => parsePortOverrides('postgres=18080')).toThrow(/keycloak-http and postgres both use port 18080|postgres and keycloak-http both use port 18080/);
  });
});

describe('listeningInodes', () => {
  const text = [
    '  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode',
    '   0: 0100007F:3C28 00000000:0000 0A 00000000:00000000 00:00000000 00000000   101        0 4242 1 0000000000000000 100 0 0 10 0',
    '   1: 0100007F:3C28 0100007F:D431 01 00000000:00000000 00:00000000 00000000   101        0 4343 1 0000000000000000 20 4 30 10 -1',
    '   2: 00000000:46A0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0000000000000000 100 0 0 10 0',
  ].join('\n');
  it('finds sockets listening on a port, not established ones', () => {
    expect(listeningInodes(text, 15400)).toEqual(['4242']);
    expect(listeningInodes(text, 18080)).toEqual(['777']);
    expect(listeningInodes(text, 1)).toEqual([]);
  });
});

describe('isPortFree', () => {
  let server: Server | undefined;
  afterEach(async () => {
    await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
    server = undefined;
  });
  it('sees a port taken by a listener', async () => {
    server = createServer();
    const port = await new Promise<number>((r) => server!.listen(0, '127.0.0.1', () => r((server!.address() as { port: number }).port)));
    expect(await isPortFree(port)).toBe(false);
    await new Promise<void>((r) => server!.close(() => r()));
    server = undefined;
    expect(await isPortFree(port)).toBe(true);
  });
});
