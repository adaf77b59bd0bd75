import type { DesiredState } from '../compile/desired.js';
import { requiredScopes } from './scopes.js';
import type { GatewayAgent, GatewayConfig, GatewayTenant } from './server.js';

export interface GatewaySetup {
  config: GatewayConfig;
  /** For TokenVerifier: issuer → the tenants it issues tokens for (one per realm; all of a shared realm's). */
  issuers: Map<string, Set<string>>;
}

/**
 * The gateway's view of a compiled repository (pure). Agents without an upstream are not proxied
 * (their cards are still served). An agent's scope requirement comes from its card's `security`;
 * the cards of one agent differ per tenant only in URLs and offered scopes, so the first is used.
 * `upstreams` and `perUserLimits` stand in for the agent field `upstream` and the quota key
 * `requests_per_minute_per_user` until the schemas carry them.
 */
export function gatewaySetup(desired: DesiredState, opts: { upstreams: ReadonlyMap<string, string>; perUserLimits?: ReadonlyMap<string, number>; baseDomain?: string }): GatewaySetup {
  const agents = new Map<string, GatewayAgent>();
  const tenants = new Map<string, GatewayTenant>();
  const issuers = new Map<string, Set<string>>();
  for (const t of desired.tenants) {
    const cards = new Map<string, Record<string, unknown>>();
    for (const a of t.agents) {
      cards.set(a.clientId, a.card);
      const upstream = opts.upstreams.get(a.name);
      if (upstream !== undefined && !agents.has(a.clientId)) agents.set(a.clientId, { upstream, required: requiredScopes(a.card) });
    }
    const quotas: GatewayTenant['quotas'] = {};
    if (t.quotas.requestsPerMinute !== undefined) quotas.requestsPerMinute = t.quotas.requestsPerMinute;
    const perUser = opts.perUserLimits?.get(t.name);
    if (perUser !== undefined) quotas.requestsPerMinutePerUser = perUser;
    tenants.set(t.name, { issuer: t.issuer, quotas, cards });
    let served = issuers.get(t.issuer);
    if (!served) issuers.set(t.issuer, (served = new Set()));
    served.add(t.name);
  }
  return { config: { ...(opts.baseDomain ? { baseDomain: opts.baseDomain } : {}), agents, tenants }, issuers };
}
