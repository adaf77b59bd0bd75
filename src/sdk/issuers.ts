import { isDnsLabel } from '../compile/names.js';
import { renderTemplate, usesVariable } from '../compile/templates.js';

/** Issuer URL (exactly as in the tokens' `iss`) → the tenants whose tokens it issues. */
export type Issuers = Readonly<Record<string, readonly string[]>>;

/** The environment variable read when `issuers` is not passed: a JSON object of that shape. */
export const ISSUERS_ENV = 'SYSTEMPROMPT_ISSUERS';

/**
 * The issuers of realms named by a template (per-tenant isolation, default naming: the realm is
 * the tenant's name): `realmIssuers('https://kc.example.com', ['acme'])` →
 * `{ 'https://kc.example.com/realms/acme': ['acme'] }`. `keycloakUrl` is Keycloak's public URL
 * (`keycloak.public_url`), as it appears in the tokens.
 */
export function realmIssuers(keycloakUrl: string, tenants: readonly string[], realm = '{{tenant_id}}'): Record<string, string[]> {
  if (!usesVariable(realm, 'tenant_id')) throw new Error('systemprompt: the realm template must contain {{tenant_id}}');
  const base = keycloakUrl.replace(/\/+$/, '');
  const out: Record<string, string[]> = {};
  for (const t of tenants) (out[`${base}/realms/${renderTemplate(realm, { tenant_id: t })}`] ??= []).push(t);
  return out;
}

/** `issuers`, else the JSON of SYSTEMPROMPT_ISSUERS, checked; throws on anything unusable. */
export function resolveIssuers(issuers: Issuers | undefined, env: Record<string, string | undefined>): Map<string, Set<string>> {
  let raw: unknown = issuers;
  let where = 'options.issuers';
  if (raw === undefined) {
    const text = env[ISSUERS_ENV];
    if (text === undefined || text.trim() === '') throw new Error(`systemprompt: no issuers: pass \`issuers\` or set ${ISSUERS_ENV} to a JSON object {"<issuer URL>": ["<tenant>", ...]}`);
    where = ISSUERS_ENV;
    try {
      raw = JSON.parse(text);
    } catch {
      throw new Error(`systemprompt: ${ISSUERS_ENV} is not JSON`);
    }
  }
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new Error(`systemprompt: ${where} must be an object {"<issuer URL>": ["<tenant>", ...]}`);
  const out = new Map<string, Set<string>>();
  for (const [issuer, tenants] of Object.entries(raw)) {
    let url: URL;
    try {
      url = new URL(issuer);
    } catch {
      throw new Error(`systemprompt: ${where}: issuer ${JSON.stringify(issuer)} is not a URL`);
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw new Error(`systemprompt: ${where}: issuer ${JSON.stringify(issuer)} is not http(s)`);
    if (!Array.isArray(tenants) || tenants.length === 0) throw new Error(`systemprompt: ${where}: issuer ${issuer} needs a non-empty list of tenants`);
    for (const t of tenants) if (typeof t !== 'string' || !isDnsLabel(t)) throw new Error(`systemprompt: ${where}: ${JSON.stringify(t)} is not a tenant name`);
    out.set(issuer, new Set(tenants as string[]));
  }
  if (out.size === 0) throw new Error(`systemprompt: ${where} names no issuer`);
  return out;
}
