import { describe, expect, it } from 'vitest';
import { hostAndPort, hostName, route } from '../../src/gateway/route.js';

describe('gateway routing', () => {
  it('routes the OAuth endpoints to the tenant of the tenant parameter without a base domain', () => {
    expect(route('localhost:8080', '/api/v1/core/oauth/authorize?tenant=acme&client_id=assistant&response_type=code')).toEqual({ kind: 'oauth', endpoint: 'authorize', tenant: 'acme' });
    expect(route('localhost:8080', '/api/v1/core/oauth/token?tenant=acme')).toEqual({ kind: 'oauth', endpoint: 'token', tenant: 'acme' });
    expect(route('localhost:8080', '/api/v1/core/oauth/token')).toEqual({ kind: 'oauth', endpoint: 'token', tenant: undefined });
  });

  it('takes the tenant only from the host name when a base domain is configured', () => {
    const opts = { baseDomain: 'gw.example.com' };
    expect(route('acme.gw.example.com', '/api/v1/core/oauth/authorize?tenant=globex', opts)).toEqual({ kind: 'oauth', endpoint: 'authorize', tenant: 'acme' });
    expect(route('ACME.GW.example.com.:443', '/api/v1/core/oauth/token', opts)).toMatchObject({ tenant: 'acme' });
    expect(route('gw.example.com', '/api/v1/core/oauth/token?tenant=acme', opts)).toMatchObject({ tenant: undefined });
    expect(route('acme.gw.example.com.evil.test', '/api/v1/core/oauth/token', opts)).toMatchObject({ tenant: undefined });
    expect(route('a.b.gw.example.com', '/api/v1/core/oauth/token', opts)).toEqual({ kind: 'bad_request', reason: 'bad_tenant' });
    expect(route('xgw.example.com', '/api/v1/core/oauth/token', opts)).toMatchObject({ tenant: undefined });
  });

  it('validates tenant names with the DNS-label rule and refuses two tenant parameters', () => {
    expect(route(undefined, '/api/v1/core/oauth/token?tenant=Acme')).toEqual({ kind: 'bad_request', reason: 'bad_tenant' });
    expect(route(undefined, '/api/v1/core/oauth/token?tenant=-acme')).toEqual({ kind: 'bad_request', reason: 'bad_tenant' });
    expect(route(undefined, `/api/v1/core/oauth/token?tenant=${'a'.repeat(64)}`)).toEqual({ kind: 'bad_request', reason: 'bad_tenant' });
    expect(route(undefined, '/api/v1/core/oauth/token?tenant=acme&tenant=globex')).toEqual({ kind: 'bad_request', reason: 'ambiguous_tenant' });
  });

  it("serves an agent's card at its well-known path under the agent's base URL", () => {
    expect(route(undefined, '/api/v1/agents/assistant/.well-known/agent-card.json?tenant=acme')).toEqual({ kind: 'card', agent: 'assistant', tenant: 'acme' });
  });

  it('proxies everything else under an agent, keeping the rest of the path and the query', () => {
    expect(route(undefined, '/api/v1/agents/assistant')).toEqual({ kind: 'agent', agent: 'assistant', tenant: undefined, path: '/' });
    expect(route(undefined, '/api/v1/agents/assistant/')).toEqual({ kind: 'agent', agent: 'assistant', tenant: undefined, path: '/' });
    expect(route(undefined, '/api/v1/agents/assistant/v1/message:send?x=1&y=%20')).toEqual({ kind: 'agent', agent: 'assistant', tenant: undefined, path: '/v1/message:send?x=1&y=%20' });
    expect(route('acme.gw.test', '/api/v1/agents/assistant/tasks', { baseDomain: 'gw.test' })).toMatchObject({ kind: 'agent', tenant: 'acme' });
  });

  it('refuses agent names that are not DNS labels', () => {
    for (const a of ['Assistant', 'as%73istant', 'a_b', 'x'.repeat(64)]) {
      expect(route(undefined, `/api/v1/agents/${a}/x`)).toEqual({ kind: 'bad_request', reason: 'bad_agent_name' });
    }
    expect(route(undefined, '/api/v1/agents/')).toEqual({ kind: 'bad_request', reason: 'bad_agent_name' });
  });

  it('refuses paths a server behind could normalise into another path', () => {
    for (const p of [
      '/api/v1/agents/assistant/../billing/x',
      '/api/v1/agents/assistant/%2e%2e/billing',
      '/api/v1/agents/assistant/%2E/x',
      '/api/v1/agents/assistant/a%2Fb',
      '/api/v1/agents/assistant/a%5cb',
      '/api/v1/agents/assistant/a\\b',
      '/api/v1/agents/assistant//x',
      '/api/v1/agents/assistant/%zz',
      '//evil.test/api/v1/agents/assistant',
      'http://evil.test/api/v1/agents/assistant',
      '/api/v1/agents/assistant/./x',
      '/api/v1/agents/assistant/x/..',
      '/api/v1/agents/assistant/caf\u00e9',
      '/api/v1/agents/assistant/a b',
      '/api/v1/agents/assistant/a\x7fb',
    ]) {
      expect(route(undefined, p), p).toEqual({ kind: 'bad_request', reason: 'bad_path' });
    }
  });

  it('keeps dots that are not whole segments, and percent-encoded bytes that decode to no dot segment', () => {
    for (const p of ['/api/v1/agents/assistant/v1.2/x', '/api/v1/agents/assistant/.well-known/other.json', '/api/v1/agents/assistant/...', '/api/v1/agents/assistant/caf%C3%A9']) {
      expect(route(undefined, p), p).toMatchObject({ kind: 'agent', agent: 'assistant' });
    }
  });

  it('answers not found for anything else', () => {
    expect(route(undefined, '/')).toEqual({ kind: 'not_found' });
    expect(route(undefined, '/healthz')).toEqual({ kind: 'health' });
    expect(route(undefined, '/healthz/x')).toEqual({ kind: 'not_found' });
    expect(route(undefined, '/api/v1/core/oauth/userinfo')).toEqual({ kind: 'not_found' });
    expect(route(undefined, '/api/v1/agentsx/assistant')).toEqual({ kind: 'not_found' });
  });

  it('reads host names without port, trailing dot or letter case, and not IP literals in brackets', () => {
    expect(hostName('Acme.GW.test:8080')).toBe('acme.gw.test');
    expect(hostName('[::1]:8080')).toBeUndefined();
    expect(hostName('bad host')).toBeUndefined();
    expect(hostName(undefined)).toBeUndefined();
    expect(hostAndPort('Acme.GW.test:8080')).toBe('acme.gw.test:8080');
    expect(hostAndPort('acme.gw.test')).toBe('acme.gw.test');
    expect(hostAndPort('evil.test/x?:80')).toBeUndefined();
  });
});
