import { readFile, readdir, readlink } from 'node:fs/promises';
import { createServer } from 'node:net';
import { UsageError } from '../errors.js';

/** The loopback ports of the local stack, each overridable. */
export interface StackPorts {
  readonly postgres: number;
  /** The second PostgreSQL server (postgres.servers); by default the port after `postgres`. */
  readonly postgres2: number;
  readonly keycloakHttp: number;
  readonly keycloakManagement: number;
  readonly etcdClient: number;
  readonly etcdPeer: number;
  readonly apiserver: number;
  /** The stack's Redis (the gateway's shared rate-limit counters). */
  readonly redis: number;
}

export type PortName = keyof StackPorts;

export const DEFAULT_PORTS: StackPorts = {
  postgres: 15432,
  postgres2: 15433,
  keycloakHttp: 18080,
  keycloakManagement: 19000,
  etcdClient: 12379,
  etcdPeer: 12380,
  apiserver: 16443,
  redis: 16379,
};

/** Names accepted in `--ports` / `SYSTEMPROMPT_DEV_PORTS` (kebab-case of the fields). */
const PORT_KEYS: Record<string, PortName> = {
  postgres: 'postgres',
  'postgres-2': 'postgres2',
  keycloak: 'keycloakHttp',
  'keycloak-http': 'keycloakHttp',
  'keycloak-management': 'keycloakManagement',
  'etcd-client': 'etcdClient',
  'etcd-peer': 'etcdPeer',
  etcd: 'etcdClient',
  apiserver: 'apiserver',
  redis: 'redis',
};

export const PORT_LABELS: Record<PortName, string> = {
  postgres: 'postgres',
  postgres2: 'postgres-2',
  keycloakHttp: 'keycloak-http',
  keycloakManagement: 'keycloak-management',
  etcdClient: 'etcd-client',
  etcdPeer: 'etcd-peer',
  apiserver: 'apiserver',
  redis: 'redis',
};

/** Parses one port number; 1024..65535 (the stack never needs a privileged port). */
export function parsePort(text: string, what: string): number {
  const t = text.trim();
  if (!/^\d{1,5}$/.test(t)) throw new UsageError(`${what}: "${text}" is not a port number`, { hint: 'use a number between 1024 and 65535' });
  const n = Number(t);
  if (n < 1024 || n > 65535) throw new UsageError(`${what}: port ${n} is out of range`, { hint: 'use a number between 1024 and 65535' });
  return n;
}

/**
 * Parses `name=port,name=port` (from `--ports` or `SYSTEMPROMPT_DEV_PORTS`) over the defaults.
 * Unknown names, bad numbers and two services on one port are usage errors.
 */
export function parsePortOverrides(spec: string | undefined, base: Partial<StackPorts> = DEFAULT_PORTS, source = '--ports'): StackPorts {
  const ports: Record<PortName, number> = { ...DEFAULT_PORTS, ...base };
  const given = new Set<PortName>();
  for (const item of (spec ?? '').split(',').map((s) => s.trim()).filter(Boolean)) {
    const eq = item.indexOf('=');
    if (eq < 0) throw new UsageError(`${source}: "${item}" is not NAME=PORT`, { hint: `names: ${Object.keys(PORT_KEYS).join(', ')}` });
    const name = item.slice(0, eq).trim().toLowerCase();
    const key = PORT_KEYS[name];
    if (!key) throw new UsageError(`${source}: unknown port name "${name}"`, { hint: `names: ${Object.keys(PORT_KEYS).join(', ')}` });
    ports[key] = parsePort(item.slice(eq + 1), `${source} ${name}`);
    given.add(key);
  }
  // The second PostgreSQL server follows the first unless named: with postgres moved (or a stack
  // recorded before it had a second server), it takes the next port.
  if (!given.has('postgres2') && (given.has('postgres') || base.postgres2 === undefined)) ports.postgres2 = ports.postgres + 1;
  if (ports.postgres2 > 65535) throw new UsageError(`${source}: postgres-2 would take port ${ports.postgres2}`, { hint: 'set postgres-2=<port> too' });
  const seen = new Map<number, PortName>();
  for (const [k, v] of Object.entries(ports) as [PortName, number][]) {
    const other = seen.get(v);
    if (other) throw new UsageError(`${source}: ${PORT_LABELS[other]} and ${PORT_LABELS[k]} both use port ${v}`);
    seen.set(v, k);
  }
  return ports;
}

/** True when nothing listens on 127.0.0.1:port (we can bind it ourselves). */
export function isPortFree(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const srv = createServer();
    srv.once('error', () => resolvePromise(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolvePromise(true)));
  });
}

/** Parses /proc/net/tcp{,6} text: socket inodes of sockets in LISTEN state on `port`. */
export function listeningInodes(procNetTcp: string, port: number): string[] {
  const inodes: string[] = [];
  for (const line of procNetTcp.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10) continue;
    const local = f[1] ?? '';
    const state = f[3];
    const portHex = local.slice(local.lastIndexOf(':') + 1);
    if (state === '0A' && parseInt(portHex, 16) === port && f[9] && f[9] !== '0') inodes.push(f[9]);
  }
  return inodes;
}

/** The pids of processes listening on a TCP port (Linux /proc; empty when unknown or not visible). */
export async function listeningPids(port: number): Promise<number[]> {
  const inodes = new Set<string>();
  for (const f of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await readFile(f, 'utf8').catch(() => '');
    for (const i of listeningInodes(text, port)) inodes.add(i);
  }
  if (inodes.size === 0) return [];
  const pids: number[] = [];
  const procs = await readdir('/proc').catch(() => [] as string[]);
  for (const p of procs) {
    if (!/^\d+$/.test(p)) continue;
    const fds = await readdir(`/proc/${p}/fd`).catch(() => [] as string[]);
    for (const fd of fds) {
      const target = await readlink(`/proc/${p}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(target);
      if (m && inodes.has(m[1]!)) {
        pids.push(Number(p));
        break;
      }
    }
  }
  return pids;
}
