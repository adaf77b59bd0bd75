import { stringify } from 'yaml';
import { appendTo } from '../collections.js';
import { isSecretRef, type DesiredResource, type Json, type JsonObject } from '../model/resource.js';
import type { DesiredState, TenantDesired } from './desired.js';
import { quoteIdent } from './names.js';
import { pgComment } from '../model/ownership.js';

/**
 * DesiredState -> files (relative path -> text), for `systemprompt build`. Pure.
 * Secrets stay references (`${secret:postgres-password}`, psql variables): no value is ever written.
 */
export function buildArtifacts(state: DesiredState): Map<string, string> {
  const files = new Map<string, string>();
  // Grouped once (in the compiler's order), not filtered anew for every tenant.
  const byTenant = new Map<string | undefined, DesiredResource[]>();
  for (const r of state.resources) appendTo(byTenant, r.tenant, r);
  const placed = new Map((state.placements ?? []).map((p) => [p.tenant, p.server]));
  for (const t of state.tenants) {
    const mine = byTenant.get(t.name) ?? [];
    files.set(`${t.name}/keycloak-realm.json`, `${JSON.stringify(realmRepresentation(t, mine), null, 2)}\n`);
    files.set(`${t.name}/kubernetes.yaml`, kubernetesYaml(mine));
    files.set(`${t.name}/postgres.sql`, postgresSql(t, placed.get(t.name)));
    for (const a of t.agents) files.set(`${t.name}/agents/${a.name}.card.json`, `${JSON.stringify(a.card, null, 2)}\n`);
  }
  return files;
}

const of = (rs: DesiredResource[], target: string, kind: string): DesiredResource[] => rs.filter((r) => r.target === target && r.kind === kind);
const leaf = (name: string): string => name.slice(name.indexOf('/') + 1);

/** A Keycloak RealmRepresentation (importable with `kc.sh import`); client secrets are generated on import. */
export function realmRepresentation(t: TenantDesired, rs: DesiredResource[]): JsonObject {
  const realm = of(rs, 'keycloak', 'Realm')[0]!;
  const scopes = of(rs, 'keycloak', 'ClientScope');
  return {
    realm: t.realm,
    ...realm.spec,
    roles: { realm: of(rs, 'keycloak', 'RealmRole').map((r) => ({ name: leaf(r.name), ...r.spec })) },
    clientScopes: scopes.map((s) => {
      const { roleScopeMappings: _r, ...rest } = s.spec;
      return { name: leaf(s.name), ...rest };
    }),
    scopeMappings: scopes
      .filter((s) => (s.spec.roleScopeMappings as string[]).length > 0)
      .map((s) => ({ clientScope: leaf(s.name), roles: s.spec.roleScopeMappings as Json })),
    clients: of(rs, 'keycloak', 'Client').map((c) => ({ clientId: leaf(c.name), ...c.spec })),
    users: of(rs, 'keycloak', 'User').map((u) => ({ username: leaf(u.name), ...u.spec })),
  };
}

function kubernetesYaml(rs: DesiredResource[]): string {
  return rs
    .filter((r) => r.target === 'kubernetes')
    .map((r) => stringify(withSecretPlaceholders(r.spec), { lineWidth: 0, sortMapEntries: false }))
    .join('---\n');
}

/** `{secretRef: x, format: "a{}b"}` -> `a${secret:x}b`. */
export function withSecretPlaceholders(v: Json): Json {
  if (isSecretRef(v)) {
    const ph = `\${secret:${v.secretRef}}`;
    return typeof v.format === 'string' ? v.format.replace('{}', ph) : ph;
  }
  if (Array.isArray(v)) return v.map(withSecretPlaceholders);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, withSecretPlaceholders(x)]));
  return v;
}

/** The tenant's role and database as SQL; `server`: the server of postgres.servers it is placed on. */
function postgresSql(t: TenantDesired, server?: string): string {
  const role = quoteIdent(t.dbRole);
  const db = quoteIdent(t.database);
  const comment = (s: string): string => `'${s.replace(/'/g, "''")}'`;
  const marker = pgComment(t.name, t.deletionPolicy);
  return [
    `-- Tenant ${t.name}: one login role and one database it owns. Run with psql:`,
    ...(server === undefined ? [] : [`-- on PostgreSQL server ${server} (postgres.servers; placed as against empty servers: \`systemprompt plan\` shows the live placement):`]),
    `--   psql "$ADMIN_URL" -v postgres_password="$PASSWORD" -f postgres.sql`,
    `-- The password is a psql variable: it is never written here.`,
    `CREATE ROLE ${role} LOGIN PASSWORD :'postgres_password';`,
    `COMMENT ON ROLE ${role} IS ${comment(marker)};`,
    `CREATE DATABASE ${db} OWNER ${role};`,
    `REVOKE CONNECT ON DATABASE ${db} FROM PUBLIC;`,
    `GRANT CONNECT ON DATABASE ${db} TO ${role};`,
    `COMMENT ON DATABASE ${db} IS ${comment(pgComment(t.name, t.deletionPolicy, server))};`,
    '',
  ].join('\n');
}
