import type { DesiredState, Placement, TenantDesired } from '../compile/desired.js';
import { DATABASE_SECRET, databaseSecret } from '../compile/kubernetes.js';
import { pgResourceName, postgresResources, splitPgResourceName } from '../compile/postgres.js';
import { ConflictError } from '../errors.js';
import { POSTGRES_SERVER_ANNOTATION } from '../model/ownership.js';
import { resourceKey, type DesiredResource, type LiveResource } from '../model/resource.js';
import { computePlan, type LiveState, type Plan } from './plan.js';

/**
 * The live kind a PostgreSQL target reports once per server it read (with several servers):
 * `spec.databases` is how many of our databases the server holds, whatever the read's scope.
 */
export const PG_SERVER_KIND = 'Server';

/** Placing databases would move, lose or duplicate data: plan refuses, and nothing is changed. */
export class PlacementError extends ConflictError {
  constructor(readonly problems: string[], hint: string) {
    super(`cannot place the tenants' databases:\n${problems.map((p) => `  - ${p}`).join('\n')}`, { hint });
  }
}

export interface PlacementOptions {
  /**
   * Whether the live state holds the PostgreSQL servers' objects (read, or offline: known empty).
   * Without them (`--target` without postgres), only what the tenants' Secrets record is known.
   */
  postgresRead: boolean;
}

/**
 * Puts each tenant's database on one of `postgres.servers`. Pure: a function of the desired state
 * and the live state of every server, applied before the plan is computed (DESIGN §9).
 *
 * - A database that exists on a server stays there; pinned elsewhere, it is an error (never moved).
 * - One that does not exist goes to the tenant's pinned server, else to the server its Secret
 *   records (it was there: made again where its workloads look), else to the server holding the
 *   fewest of our databases, counting those placed earlier in this plan; ties go to the server
 *   listed first. Tenants are placed in name order, so the same inputs give the same placement.
 * - A recorded server no longer listed, or a database found on two servers, is an error.
 *
 * Placed resources get their server in their names (`second/tenant_a`), the database's comment
 * (`server=second`) and the tenant's database Secret (DATABASE_URL and PGHOST/PGPORT of that
 * server, POSTGRES_SERVER, an annotation). With one implicit server nothing changes, but a Secret
 * that records a server is checked against it.
 */
export function placeDatabases(desired: DesiredState, live: LiveState, opts: PlacementOptions): DesiredState {
  if (desired.placements) throw new Error('internal: databases placed twice');
  const recorded = recordedServers(desired, live.resources);
  if (!desired.postgresServers) {
    checkSingleServer(desired, live.resources, recorded, opts);
    return desired;
  }
  const servers = desired.postgresServers;
  const listed = new Map(servers.map((s, i) => [s.name, i]));
  const load = new Map(servers.map((s) => [s.name, 0]));
  const found = new Map<string, string[]>(); // database -> servers holding a managed database of that name
  for (const r of live.resources) {
    if (r.target !== 'postgres') continue;
    if (r.kind === PG_SERVER_KIND && load.has(r.name)) load.set(r.name, Number(r.spec.databases ?? 0));
    if (r.kind === 'Database' && r.managed) {
      const { server, name } = splitPgResourceName(r.name);
      if (server === undefined) continue;
      const list = found.get(name);
      if (list) list.push(server);
      else found.set(name, [server]);
    }
  }

  const needed = tenantsToPlace(desired);
  const placements: Placement[] = [];
  const problems: string[] = [];
  for (const t of desired.tenants) {
    if (!needed.has(t.name)) continue;
    const where = [...new Set(found.get(t.database) ?? [])].sort((a, b) => listed.get(a)! - listed.get(b)!);
    const secretName = `${t.namespace}/${DATABASE_SECRET}`;
    if (where.length > 1) {
      problems.push(`tenant ${t.name}: its database ${t.database} exists on PostgreSQL servers ${where.join(' and ')}; a tenant has one database`);
      continue;
    }
    if (where.length === 1) {
      const server = where[0]!;
      if (t.postgresServer !== undefined && t.postgresServer !== server) {
        problems.push(`tenant ${t.name}: pinned to PostgreSQL server ${t.postgresServer} (postgres.server), but its database ${t.database} exists on ${server}; a database is never moved`);
        continue;
      }
      placements.push({ tenant: t.name, database: t.database, server, new: false, reason: 'exists' });
      continue;
    }
    const record = recorded.get(t.name);
    if (record !== undefined && !listed.has(record)) {
      problems.push(`tenant ${t.name}: its database ${t.database} is on PostgreSQL server ${record} (recorded on Secret ${secretName}), which postgres.servers no longer lists`);
      continue;
    }
    let server: string;
    let reason: Placement['reason'];
    if (t.postgresServer !== undefined) [server, reason] = [t.postgresServer, 'pinned'];
    else if (record !== undefined) [server, reason] = [record, 'recorded'];
    else if (!opts.postgresRead) {
      problems.push(`tenant ${t.name}: its database ${t.database} has no server yet, and placing it needs the PostgreSQL servers' live state`);
      continue;
    } else [server, reason] = [leastLoaded(servers.map((s) => s.name), load), 'least-loaded'];
    // Without the servers' live state, whether the database exists is not known: it is not new.
    placements.push({ tenant: t.name, database: t.database, server, new: opts.postgresRead, reason });
    if (opts.postgresRead) load.set(server, load.get(server)! + 1);
  }
  if (problems.length) {
    throw new PlacementError(
      problems,
      'databases are never moved between servers, nor dropped because a server left the list: put a removed server back in postgres.servers (with its URL), pin a tenant to the server that holds its database, or move the data yourself (pg_dump / pg_restore) and drop the old copy; with --target, include postgres',
    );
  }
  return withPlacements(desired, placements);
}

/** The server with the fewest databases; ties go to the one listed first. */
function leastLoaded(names: string[], load: ReadonlyMap<string, number>): string {
  let best = names[0]!;
  for (const n of names) if (load.get(n)! < load.get(best)!) best = n;
  return best;
}

/** Tenants with a database resource or a database Secret in the desired state (`--target` may leave out both). */
function tenantsToPlace(desired: DesiredState): Set<string> {
  const out = new Set<string>();
  for (const r of desired.resources) if (isPlaced(r)) out.add(r.tenant);
  return out;
}

const isPlaced = (r: DesiredResource): boolean =>
  (r.target === 'postgres' && (r.kind === 'Role' || r.kind === 'Database')) || (r.target === 'kubernetes' && r.kind === 'Secret' && r.name.endsWith(`/${DATABASE_SECRET}`));

/** tenant -> the server its live database Secret records (an annotation we wrote). */
function recordedServers(desired: DesiredState, live: LiveResource[]): Map<string, string> {
  const secretOf = new Map(desired.tenants.map((t) => [`${t.namespace}/${DATABASE_SECRET}`, t.name]));
  const out = new Map<string, string>();
  for (const r of live) {
    if (r.target !== 'kubernetes' || r.kind !== 'Secret' || !r.managed) continue;
    const tenant = secretOf.get(r.name);
    const meta = r.spec.metadata;
    const annotations = meta && typeof meta === 'object' && !Array.isArray(meta) ? meta.annotations : undefined;
    const v = annotations && typeof annotations === 'object' && !Array.isArray(annotations) ? annotations[POSTGRES_SERVER_ANNOTATION] : undefined;
    if (tenant !== undefined && typeof v === 'string') out.set(tenant, v);
  }
  return out;
}

/** One implicit server: a Secret that records a server (postgres.servers was set) must find its database here. */
function checkSingleServer(desired: DesiredState, live: LiveResource[], recorded: ReadonlyMap<string, string>, opts: PlacementOptions): void {
  if (recorded.size === 0 || !opts.postgresRead) return;
  const here = new Set(live.filter((r) => r.target === 'postgres' && r.kind === 'Database' && r.managed).map((r) => r.name));
  const problems: string[] = [];
  for (const t of desired.tenants) {
    const record = recorded.get(t.name);
    if (record === undefined || here.has(t.database)) continue;
    problems.push(`tenant ${t.name}: its database ${t.database} is on PostgreSQL server ${record} (recorded on Secret ${t.namespace}/${DATABASE_SECRET}), and the server of SYSTEMPROMPT_POSTGRES_URL does not hold it`);
  }
  if (problems.length) throw new PlacementError(problems, 'list the servers again under postgres.servers in systemprompt.yaml; databases are never moved between servers');
}

/** The desired state with each placed tenant's role, database and database Secret on its server. */
function withPlacements(desired: DesiredState, placements: Placement[]): DesiredState {
  const byTenant = new Map(placements.map((p) => [p.tenant, p]));
  const tenants = new Map(desired.tenants.map((t) => [t.name, t]));
  const servers = new Map(desired.postgresServers!.map((s) => [s.name, s]));
  // Keys that change: the tenant's role and database get their server in their names.
  const renamed = new Map<string, string>();
  for (const p of placements) {
    const t = tenants.get(p.tenant)!;
    for (const kind of ['Role', 'Database']) {
      const name = kind === 'Role' ? t.dbRole : t.database;
      renamed.set(resourceKey({ target: 'postgres', kind, name }), resourceKey({ target: 'postgres', kind, name: pgResourceName(name, p.server) }));
    }
  }
  const rekey = (keys: string[]): string[] => keys.map((k) => renamed.get(k) ?? k);
  // Each placed tenant's resources compiled for its server, once (by target and kind).
  const compiled = new Map<string, Map<string, DesiredResource>>();
  const placedOf = (t: TenantDesired, server: string): Map<string, DesiredResource> => {
    let m = compiled.get(t.name);
    if (!m) {
      const s = servers.get(server)!;
      m = new Map([...postgresResources(t, server), databaseSecret(t, s.host, s.port, server)].map((r) => [`${r.target}:${r.kind}`, r]));
      compiled.set(t.name, m);
    }
    return m;
  };
  const resources = desired.resources.map((r) => {
    const p = isPlaced(r) ? byTenant.get(r.tenant) : undefined;
    if (!p) return r.dependsOn.some((k) => renamed.has(k)) ? { ...r, dependsOn: rekey(r.dependsOn) } : r;
    const placed = placedOf(tenants.get(p.tenant)!, p.server).get(`${r.target}:${r.kind}`)!;
    // The compiled resource with the placed name and spec; its dependencies as `--target` left them.
    return { ...r, name: placed.name, spec: placed.spec, dependsOn: rekey(r.dependsOn) };
  });
  return { ...desired, resources, ...(desired.ignored ? { ignored: rekey(desired.ignored) } : {}), placements };
}

/**
 * The plan step: place the databases against the live state, then plan. Returns the placed desired
 * state too: apply writes its specs. Offline, the live state is known empty.
 */
export function placeAndPlan(desired: DesiredState, live: LiveState, opts: { offline?: boolean } = {}): { plan: Plan; desired: DesiredState } {
  const placed = placeDatabases(desired, live, { postgresRead: !!opts.offline || live.requests.postgres !== undefined });
  return { plan: computePlan(placed, live, opts), desired: placed };
}
