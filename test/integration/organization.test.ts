import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRepo, resetTargets, sp, spJson, writeRepo } from './helpers.js';
import { KC, LoginRefused, admin, assistantAgent, login, scopes, setPassword } from './oidc.js';

/**
 * Organization isolation against the real Keycloak: two tenants in one shared realm, each an
 * Organization; real logins through the shared agent client.
 */
const REALM = 'sp-org-it';
const acme = (users: string) => `name: org-acme\nusers:\n${users}`;
const ANN = '  - email: ann@acme.example.com\n    scopes: [user, read]\n';
const AL = '  - email: al@acme.example.com\n    scopes: [user]\n';
const files = (acmeUsers = ANN + AL): Record<string, string> => ({
  'systemprompt.yaml': `tenancy:\n  isolation: organization\n  realm: ${REALM}\n  default_tenant: org-acme\n`,
  'services/agents/assistant.yaml': assistantAgent,
  'tenants/org-acme.yaml': acme(acmeUsers),
  'tenants/org-globex.yaml': 'name: org-globex\nusers:\n  - email: gus@globex.example.com\n    scopes: [user, read, write]\n',
});

describe('organization isolation: one shared realm, a tenant per Organization', () => {
  afterAll(async () => {
    await resetTargets();
  });

  let repo: string;

  beforeAll(async () => {
    repo = makeRepo(files());
    const r = await sp(repo, 'apply', '--auto-approve', '--allow-destroy');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    for (const user of ['ann@acme.example.com', 'al@acme.example.com', 'gus@globex.example.com']) await setPassword(REALM, user);
  });

  it('makes one realm with an organization per tenant, each user a member of its own, and the next plan is empty', async () => {
    const kc = await admin();
    const realm = await kc.realms.findOne({ realm: REALM });
    expect(realm?.organizationsEnabled).toBe(true);
    expect(await kc.realms.findOne({ realm: 'org-acme' })).toBeFalsy();
    const orgs = await kc.organizations.find({ realm: REALM });
    expect(orgs.map((o) => o.alias).sort()).toEqual(['org-acme', 'org-globex']);
    const acmeOrg = orgs.find((o) => o.alias === 'org-acme')!;
    const members = await kc.organizations.listMembers({ realm: REALM, orgId: acmeOrg.id! });
    expect(members.map((m) => m.username).sort()).toEqual(['al@acme.example.com', 'ann@acme.example.com']);
    expect((await kc.clients.find({ realm: REALM, clientId: 'assistant' })).length).toBe(1);
    const plan = await sp(repo, 'plan', '--detailed-exitcode');
    expect(plan.code, plan.stdout).toBe(0);
  });

  it('gives a signed token with tenant_id from the organization and only the scopes the user holds', async () => {
    const ann = await login(REALM, 'ann@acme.example.com', 'openid organization:org-acme read write', 'org-acme');
    const { payload } = await jwtVerify(ann.access, createRemoteJWKSet(new URL(`${KC}/realms/${REALM}/protocol/openid-connect/certs`)), { issuer: `${KC}/realms/${REALM}` });
    expect(payload.tenant_id).toBe('org-acme');
    expect(payload.aud === 'assistant' || (Array.isArray(payload.aud) && payload.aud.includes('assistant'))).toBe(true);
    const granted = scopes(ann.claims);
    expect(granted).toContain('read');
    expect(granted).toContain('tenant:org-acme');
    expect(granted).not.toContain('write'); // asked for, not held
    expect(granted).not.toContain('tenant:org-globex');

    const gus = await login(REALM, 'gus@globex.example.com', 'openid organization:org-globex read write', 'org-globex');
    expect(gus.claims.tenant_id).toBe('org-globex');
    expect(scopes(gus.claims)).toEqual(expect.arrayContaining(['read', 'write', 'tenant:org-globex']));
    expect(scopes(gus.claims)).not.toContain('tenant:org-acme');
  });

  it("refuses a user of organization A at B's agent (a login naming B's organization)", async () => {
    await expect(login(REALM, 'ann@acme.example.com', 'openid organization:org-globex read', 'org-globex')).rejects.toThrow(/not a member of the organization org-globex/);
  });

  it('takes access away from a member removed in the YAML', async () => {
    expect((await login(REALM, 'al@acme.example.com', 'openid organization:org-acme', 'org-acme')).claims.tenant_id).toBe('org-acme');
    writeRepo(repo, files(ANN));
    const plan = await spJson<{ changes: Array<{ action: string; kind: string; name: string }> }>(repo, 'plan', '-o', 'json');
    // Al goes, and the grant role only Al held.
    expect(plan.json.changes.map((c) => `${c.action} ${c.kind} ${c.name}`).sort()).toEqual([`delete RealmRole ${REALM}/member:org-acme:user`, `delete User ${REALM}/al@acme.example.com`]);
    const r = await sp(repo, 'apply', '--auto-approve');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const refused = await login(REALM, 'al@acme.example.com', 'openid organization:org-acme', 'org-acme').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(refused, String(refused)).toBeInstanceOf(LoginRefused);
    // ann, still a member, still signs in
    expect((await login(REALM, 'ann@acme.example.com', 'openid organization:org-acme', 'org-acme')).claims.tenant_id).toBe('org-acme');
    expect((await sp(repo, 'plan', '--detailed-exitcode')).code).toBe(0);
  });

  it('puts a membership removed by hand back, and the login works again', async () => {
    const kc = await admin();
    const [org] = await kc.organizations.find({ realm: REALM, search: 'org-acme', exact: true });
    const [ann] = await kc.users.find({ realm: REALM, username: 'ann@acme.example.com', exact: true });
    await kc.organizations.delMember({ realm: REALM, orgId: org!.id!, userId: ann!.id! });
    await expect(login(REALM, 'ann@acme.example.com', 'openid organization:org-acme', 'org-acme')).rejects.toThrow(LoginRefused);
    const plan = await spJson<{ changes: Array<{ action: string; kind: string; name: string; diff: Array<{ path: string }> }> }>(repo, 'plan', '-o', 'json');
    expect(plan.json.changes.map((c) => `${c.action} ${c.kind} ${c.name} ${c.diff.map((d) => d.path).join(',')}`)).toEqual([`update User ${REALM}/ann@acme.example.com organization`]);
    expect((await sp(repo, 'apply', '--auto-approve')).code).toBe(0);
    expect((await login(REALM, 'ann@acme.example.com', 'openid organization:org-acme', 'org-acme')).claims.tenant_id).toBe('org-acme');
  });

  it('removes a tenant: its organization, users and own scope go; the other tenant keeps working', async () => {
    const { 'tenants/org-globex.yaml': _gone, ...rest } = files(ANN);
    writeRepo(repo, rest);
    const r = await sp(repo, 'apply', '--auto-approve', '--allow-destroy');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    const kc = await admin();
    expect((await kc.organizations.find({ realm: REALM })).map((o) => o.alias)).toEqual(['org-acme']);
    expect(await kc.users.find({ realm: REALM, username: 'gus@globex.example.com', exact: true })).toEqual([]);
    expect((await kc.clientScopes.find({ realm: REALM })).map((s) => s.name)).not.toContain('tenant:org-globex');
    expect((await sp(repo, 'plan', '--detailed-exitcode')).code).toBe(0);
    expect((await login(REALM, 'ann@acme.example.com', 'openid organization:org-acme read', 'org-acme')).claims.tenant_id).toBe('org-acme');
  });
});
