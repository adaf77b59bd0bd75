import type { DesiredState } from '../compile/desired.js';
import { requiredScopes } from './scopes.js';
import type { GatewayAgent, GatewayConfig, GatewayTenant } from './server.js';

export interface GatewaySetup {
  config: GatewayConfig;
  /** For TokenVerifier: issuer → the tenants it issues tokens for (one per realm; all of a shared realm's). */
  issuers: Map<string, Set<string>>;
  /** Tenant → its namespace (where its database Secret is), for usage and audit. */
  namespaces: Map<string, string>;
}

/**
 * The gateway's view of a compiled repository (pure). Agents without an upstream are not proxied
 * (their cards are still served). An agent's scope requirement comes from its card's `security`;
 * the cards of one agent differ per tenant only in URLs and offered scopes, so the first is used.
 * Each tenant's calls go to the agent's `upstream` as rendered for that tenant (`{{tenant_id}}`).
 */
export function gatewaySetup(desired: DesiredState, opts: { baseDomain?: string } = {}): GatewaySetup {
  const agents = new Map<string, GatewayAgent>();
  const tenants = new Map<string, GatewayTenant>();
  const issuers = new Map<string, Set<string>>();
  const namespaces = new Map<string, string>();
  for (const t of desired.tenants) {
    namespaces.set(t.name, t.namespace);
    const cards = new Map<string, Record<string, unknown>>();
    const upstreams = new Map<string, string>();
    for (const a of t.agents) {
      cards.set(a.clientId, a.card);
      if (a.upstream === undefined) continue;
      upstreams.set(a.clientId, a.upstream);
      if (!agents.has(a.clientId)) agents.set(a.clientId, { upstream: a.upstream, required: requiredScopes(a.card) });
    }
    const quotas: GatewayTenant['quotas'] = {};
    if (t.quotas.requestsPerMinute !== undefined) quotas.requestsPerMinute = t.quotas.requestsPerMinute;
    if (t.quotas.requestsPerMinutePerUser !== undefined) quotas.requestsPerMinutePerUser = t.quotas.requestsPerMinutePerUser;
    tenants.set(t.name, { issuer: t.issuer, quotas, cards, upstreams });
    let served = issuers.get(t.issuer);
    if (!served) issuers.set(t.issuer, (served = new Set()));
    served.add(t.name);
  }
  return { config: { ...(opts.baseDomain ? { baseDomain: opts.baseDomain } : {}), agents, tenants }, issuers, namespaces };
}
