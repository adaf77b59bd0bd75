import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import { gatewaySetup } from '../../src/gateway/config.js';
import { filesOf, mustLoad, PROJECT_ROOT } from '../helpers/repo.js';

/** The example repository with an upstream on the assistant and a per-user rate for customer-a. */
function repoWithGatewayFields(upstream: string) {
  const files = filesOf(PROJECT_ROOT);
  const text = (f: string): string => Buffer.from(files.get(f)!).toString('utf8');
  files.set('services/agents/assistant.yaml', Buffer.from(text('services/agents/assistant.yaml').replace('tenant_aware: true\n', `tenant_aware: true\nupstream: "${upstream}"\n`)));
  files.set('tenants/customer-a.yaml', Buffer.from(text('tenants/customer-a.yaml').replace('  requests_per_minute: 600\n', '  requests_per_minute: 600\n  requests_per_minute_per_user: 60\n')));
  return mustLoad(files);
}

describe('gateway configuration from a compiled repository', () => {
  it("takes each agent's scope requirement from its card and proxies only agents with an upstream", () => {
    const { config } = gatewaySetup(compile(repoWithGatewayFields('http://127.0.0.1:9001')));
    expect([...config.agents]).toEqual([['assistant', { upstream: 'http://127.0.0.1:9001', required: [['user']] }]]);
  });

  it('renders {{tenant_id}} in an upstream for each tenant', () => {
    const desired = compile(repoWithGatewayFields('http://assistant.tenant-{{tenant_id}}.svc:8080'));
    const upstreams = desired.tenants.map((t) => [t.name, t.agents.find((a) => a.name === 'assistant')?.upstream]);
    expect(upstreams).toEqual([
      ['customer-a', 'http://assistant.tenant-customer-a.svc:8080'],
      ['customer-b', 'http://assistant.tenant-customer-b.svc:8080'],
      ['default', 'http://assistant.tenant-default.svc:8080'],
    ]);
    // The gateway sends each tenant's calls to its own rendering, never the first tenant's.
    const { config } = gatewaySetup(desired);
    expect(config.tenants.get('customer-b')!.upstreams!.get('assistant')).toBe('http://assistant.tenant-customer-b.svc:8080');
    expect(config.tenants.get('customer-a')!.upstreams!.get('assistant')).toBe('http://assistant.tenant-customer-a.svc:8080');
  });

  it("gives each tenant its realm, its request quotas and its agents' cards, and each realm only its own tenant", () => {
    const { config, issuers } = gatewaySetup(compile(repoWithGatewayFields('http://127.0.0.1:9001')), { baseDomain: 'gw.test' });
    const a = config.tenants.get('customer-a')!;
    expect(a.issuer).toBe('http://localhost:8080/realms/customer-a');
    expect(a.quotas).toEqual({ requestsPerMinute: 600, requestsPerMinutePerUser: 60 });
    expect([...a.cards.keys()].sort()).toEqual(['assistant', 'welcome']);
    expect(config.tenants.get('customer-b')!.quotas).toEqual({ requestsPerMinute: 120 });
    expect(issuers.get('http://localhost:8080/realms/customer-a')).toEqual(new Set(['customer-a']));
    expect([...issuers.values()].every((s) => s.size === 1)).toBe(true);
    expect(config.baseDomain).toBe('gw.test');
  });

  it('refuses an upstream that is not an http(s) URL, with the file and line', () => {
    const files = filesOf(PROJECT_ROOT);
    const text = Buffer.from(files.get('services/agents/assistant.yaml')!).toString('utf8');
    files.set('services/agents/assistant.yaml', Buffer.from(text.replace('tenant_aware: true\n', 'tenant_aware: true\nupstream: "ftp://x"\n')));
    expect(() => mustLoad(files)).toThrow(/services\/agents\/assistant\.yaml:4:11 SP013 "ftp:\/\/x" does not match/);
  });
});
