import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import { gatewaySetup } from '../../src/gateway/config.js';
import { exampleRepo } from '../helpers/repo.js';

describe('gateway configuration from a compiled repository', () => {
  const desired = compile(exampleRepo());

  it("takes each agent's scope requirement from its card and proxies only agents with an upstream", () => {
    const { config } = gatewaySetup(desired, { upstreams: new Map([['assistant', 'http://127.0.0.1:9001']]) });
    expect([...config.agents]).toEqual([['assistant', { upstream: 'http://127.0.0.1:9001', required: [['user']] }]]);
  });

  it("gives each tenant its realm, its request quota and its agents' cards, and each realm only its own tenant", () => {
    const { config, issuers } = gatewaySetup(desired, { upstreams: new Map(), perUserLimits: new Map([['customer-a', 60]]), baseDomain: 'gw.test' });
    const a = config.tenants.get('customer-a')!;
    expect(a.issuer).toBe('http://localhost:8080/realms/customer-a');
    expect(a.quotas).toEqual({ requestsPerMinute: 600, requestsPerMinutePerUser: 60 });
    expect([...a.cards.keys()].sort()).toEqual(['assistant', 'welcome']);
    expect(config.tenants.get('customer-b')!.quotas).toEqual({ requestsPerMinute: 120 });
    expect(issuers.get('http://localhost:8080/realms/customer-a')).toEqual(new Set(['customer-a']));
    expect([...issuers.values()].every((s) => s.size === 1)).toBe(true);
    expect(config.baseDomain).toBe('gw.test');
  });
});
