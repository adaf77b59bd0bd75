import type { AgentConfig } from '../config/model.js';

export const A2A_PROTOCOL_VERSION = '0.3.0';
/** Where an agent is served when its card names no url (SystemPrompt's API layout). */
export const DEFAULT_AGENT_BASE_URL = 'http://localhost:8080/api/v1/agents';

/**
 * The A2A AgentCard a tenant serves for an agent: the card as written, completed with the fields
 * A2A requires, and every OAuth 2.0 flow pointed at the tenant realm's real endpoints.
 */
export function buildCard(agent: AgentConfig, ctx: { issuer: string; tenantScopes: string[] }): Record<string, unknown> {
  const written = structuredClone(agent.card ?? {}) as Record<string, unknown>;
  const authorizationUrl = `${ctx.issuer}/protocol/openid-connect/auth`;
  const tokenUrl = `${ctx.issuer}/protocol/openid-connect/token`;
  const tenantScopeMap = Object.fromEntries(ctx.tenantScopes.map((s) => [s, `Access as tenant ${s.split(':').pop() ?? s}`]));

  let schemes = (written.securitySchemes ?? undefined) as Record<string, Record<string, unknown>> | undefined;
  let security = written.security as Array<Record<string, string[]>> | undefined;
  if (!schemes) {
    schemes = {
      oauth2: {
        type: 'oauth2',
        description: 'OAuth 2.0 authorization code flow with PKCE, issued by the tenant realm',
        flows: { authorizationCode: { authorizationUrl, tokenUrl, scopes: tenantScopeMap } },
      },
    };
    security ??= [{ oauth2: [] }];
  } else {
    for (const scheme of Object.values(schemes)) {
      if (scheme.type !== 'oauth2') continue;
      const flows = (scheme.flows ?? {}) as Record<string, Record<string, unknown>>;
      for (const [kind, flow] of Object.entries(flows)) {
        if (kind === 'authorizationCode' || kind === 'implicit') flow.authorizationUrl = authorizationUrl;
        if (kind !== 'implicit') flow.tokenUrl = tokenUrl;
        if (flow.refreshUrl !== undefined) flow.refreshUrl = tokenUrl;
        flow.scopes = { ...(flow.scopes as Record<string, string> | undefined), ...tenantScopeMap };
      }
    }
  }

  const card: Record<string, unknown> = {
    protocolVersion: A2A_PROTOCOL_VERSION,
    name: written.name ?? agent.displayName ?? agent.name,
    description: written.description ?? agent.description ?? `The ${agent.name} agent`,
    url: written.url ?? `${DEFAULT_AGENT_BASE_URL}/${agent.name}`,
    preferredTransport: written.preferredTransport ?? 'JSONRPC',
    version: written.version ?? '1.0.0',
    capabilities: written.capabilities ?? {},
    defaultInputModes: written.defaultInputModes ?? ['text/plain'],
    defaultOutputModes: written.defaultOutputModes ?? ['text/plain'],
    skills: written.skills ?? [],
    securitySchemes: schemes,
  };
  if (security) card.security = security;
  for (const k of ['additionalInterfaces', 'iconUrl', 'provider', 'documentationUrl', 'supportsAuthenticatedExtendedCard'] as const) {
    if (written[k] !== undefined) card[k] = written[k];
  }
  return card;
}
