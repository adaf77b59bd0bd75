import { isDnsLabel } from '../compile/names.js';

/**
 * Which of the gateway's endpoints a request is for (pure: no configuration lookups). The tenant a
 * URL names comes from the host `<tenant>.<baseDomain>` when a base domain is configured (then
 * only from there), else from a `tenant` query parameter. For the OAuth endpoints it picks the realm;
 * for an agent's API it is only a claim the token's `tenant_id` must match.
 *
 * - `/api/v1/core/oauth/authorize`, `/api/v1/core/oauth/token`: the tenant's realm endpoints.
 * - `/api/v1/agents/<agent>/.well-known/agent-card.json`: the agent's A2A card for the tenant
 *   (A2A's well-known name, under the agent's base URL, which is where the compiled card's `url`
 *   points: `.../api/v1/agents/<agent>`). Never proxied.
 * - `/api/v1/agents/<agent>` and anything under it: proxied to the agent's upstream; `path` is
 *   the rest of the path (`/` at least) with the query as sent.
 * - `/healthz`: the gateway's own liveness (for a Deployment's probes).
 */
export type Route =
  | { kind: 'oauth'; endpoint: 'authorize' | 'token'; tenant: string | undefined }
  | { kind: 'card'; agent: string; tenant: string | undefined }
  | { kind: 'agent'; agent: string; tenant: string | undefined; path: string }
  | { kind: 'health' }
  | { kind: 'not_found' }
  | { kind: 'bad_request'; reason: BadRequest };

export type BadRequest = 'bad_path' | 'bad_agent_name' | 'bad_tenant' | 'ambiguous_tenant';

export interface RouteOptions {
  /** e.g. `gw.example.com`: tenants are then served at `<tenant>.gw.example.com`. */
  baseDomain?: string;
}

const OAUTH_PREFIX = '/api/v1/core/oauth/';
const AGENTS_PREFIX = '/api/v1/agents/';
export const CARD_PATH = '/.well-known/agent-card.json';

/** `url` is the request target as received (`req.url`: path and query, origin-form). */
export function route(host: string | undefined, url: string, opts: RouteOptions = {}): Route {
  if (!url.startsWith('/') || url.startsWith('//')) return { kind: 'bad_request', reason: 'bad_path' };
  const q = url.indexOf('?');
  const path = q < 0 ? url : url.slice(0, q);
  const query = q < 0 ? '' : url.slice(q);
  if (!safePath(path)) return { kind: 'bad_request', reason: 'bad_path' };

  const tenant = urlTenant(host, query, opts);
  if (tenant.kind === 'bad_request') return tenant;

  if (path === '/healthz') return { kind: 'health' };
  if (path === `${OAUTH_PREFIX}authorize` || path === `${OAUTH_PREFIX}token`) {
    return { kind: 'oauth', endpoint: path.endsWith('token') ? 'token' : 'authorize', tenant: tenant.tenant };
  }
  if (path.startsWith(AGENTS_PREFIX)) {
    const rest = path.slice(AGENTS_PREFIX.length);
    const slash = rest.indexOf('/');
    const agent = slash < 0 ? rest : rest.slice(0, slash);
    const sub = slash < 0 ? '/' : rest.slice(slash);
    if (!isDnsLabel(agent)) return { kind: 'bad_request', reason: 'bad_agent_name' };
    if (sub === CARD_PATH) return { kind: 'card', agent, tenant: tenant.tenant };
    return { kind: 'agent', agent, tenant: tenant.tenant, path: sub + query };
  }
  return { kind: 'not_found' };
}

/**
 * No `.`/`..` segments (raw or percent-encoded), no encoded `/` or `\`, no empty segments, only
 * visible ASCII (no controls, spaces or raw non-ASCII bytes; percent-encode them): what reaches the
 * upstream is the path the gateway matched, not something a server behind it would normalise into
 * another agent's or the card's path.
 */
function safePath(path: string): boolean {
  if (/[^\x21-\x5b\x5d-\x7e]/.test(path)) return false; // controls, space, `\`, DEL, non-ASCII
  if (path.includes('//')) return false; // an empty segment (a trailing `/` is not one)
  // Without `%`, a segment is `.` or `..` only as written.
  if (!path.includes('%')) return !/\/\.\.?(?:\/|$)/.test(path);
  if (/%(2f|5c|00)/i.test(path)) return false;
  for (const seg of path.split('/')) {
    let decoded: string;
    try {
      decoded = decodeURIComponent(seg);
    } catch {
      return false;
    }
    if (decoded === '.' || decoded === '..') return false;
  }
  return true;
}

function urlTenant(host: string | undefined, query: string, opts: RouteOptions): { kind: 'ok'; tenant: string | undefined } | { kind: 'bad_request'; reason: BadRequest } {
  if (opts.baseDomain) {
    const name = hostName(host);
    const base = opts.baseDomain.toLowerCase().replace(/\.$/, '');
    if (name === undefined || !name.endsWith(`.${base}`)) return { kind: 'ok', tenant: undefined };
    const label = name.slice(0, -(base.length + 1));
    return isDnsLabel(label) ? { kind: 'ok', tenant: label } : { kind: 'bad_request', reason: 'bad_tenant' };
  }
  if (query === '') return { kind: 'ok', tenant: undefined };
  const values = new URLSearchParams(query).getAll('tenant');
  if (values.length === 0) return { kind: 'ok', tenant: undefined };
  if (values.length > 1) return { kind: 'bad_request', reason: 'ambiguous_tenant' };
  return isDnsLabel(values[0]!) ? { kind: 'ok', tenant: values[0]! } : { kind: 'bad_request', reason: 'bad_tenant' };
}

/** The host name of a `Host` header, lowercased, without port or trailing dot; undefined for an IP literal. */
export function hostName(host: string | undefined): string | undefined {
  if (!host || host.startsWith('[')) return undefined;
  const name = host.replace(/:\d*$/, '').replace(/\.$/, '').toLowerCase();
  return /^[a-z0-9.-]+$/.test(name) ? name : undefined;
}

/** `name[:port]` of a `Host` header when its name is a plain host name (see hostName); undefined otherwise. */
export function hostAndPort(host: string | undefined): string | undefined {
  const name = hostName(host);
  if (name === undefined) return undefined;
  const port = /:(\d{1,5})$/.exec(host!)?.[1];
  return port ? `${name}:${port}` : name;
}
