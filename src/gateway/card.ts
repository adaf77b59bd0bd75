/**
 * An agent's A2A card as the gateway serves it: the tenant's compiled card with the gateway's own
 * URLs in place of the realm's and the agent's (the client talks to the gateway, never past it).
 * `base` is what the client reached (`http://acme.gw.example.com`, or `http://localhost:8080`);
 * without a per-tenant host name, every URL carries `?tenant=<tenant>`.
 */
export function gatewayCard(card: Record<string, unknown>, at: { base: string; tenant: string; agent: string; tenantInHost: boolean }): Record<string, unknown> {
  const base = at.base.replace(/\/+$/, '');
  const q = at.tenantInHost ? '' : `?tenant=${encodeURIComponent(at.tenant)}`;
  const out = structuredClone(card);
  out.url = `${base}/api/v1/agents/${at.agent}${q}`;
  const schemes = (out.securitySchemes && typeof out.securitySchemes === 'object' ? out.securitySchemes : {}) as Record<string, Record<string, unknown>>;
  for (const scheme of Object.values(schemes)) {
    if (scheme?.type !== 'oauth2' || !scheme.flows || typeof scheme.flows !== 'object') continue;
    for (const [kind, flow] of Object.entries(scheme.flows as Record<string, Record<string, unknown>>)) {
      if (kind === 'authorizationCode' || kind === 'implicit') flow.authorizationUrl = `${base}/api/v1/core/oauth/authorize${q}`;
      if (kind !== 'implicit') flow.tokenUrl = `${base}/api/v1/core/oauth/token${q}`;
      if (flow.refreshUrl !== undefined) flow.refreshUrl = `${base}/api/v1/core/oauth/token${q}`;
    }
  }
  return out;
}
