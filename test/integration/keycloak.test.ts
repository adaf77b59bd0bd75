import { createRemoteJWKSet, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeRepo, resetTargets, sp, spJson, writeRepo } from './helpers.js';
import { KC, admin, assistantAgent, login, scopes, setPassword } from './oidc.js';


const tenantA = (aliceScopes: string) => `name: kc-a
users:
  - email: alice@a.example.com
    scopes: [${aliceScopes}]
  - email: bob@a.example.com
    scopes: [user, read]
`;
const files = (aliceScopes = 'user, read, write'): Record<string, string> => ({
  'systemprompt.yaml': 'tenancy:\n  default_tenant: kc-a\n',
  'services/agents/assistant.yaml': assistantAgent,
  'tenants/kc-a.yaml': tenantA(aliceScopes),
  'tenants/kc-b.yaml': 'name: kc-b\nusers:\n  - email: carol@b.example.com\n    scopes: [user, read, write]\n',
});

describe('Keycloak: realms, clients, users, and tokens that carry only what a user holds', () => {
  // Leave the stack as a user would find it: nothing of ours but retained databases.
  afterAll(async () => {
    await resetTargets();
    await (await admin()).realms.del({ realm: 'handmade' });
  });

  let repo: string;

  beforeAll(async () => {
    const kc = await admin();
    if (!(await kc.realms.findOne({ realm: 'handmade' }))) await kc.realms.create({ realm: 'handmade', enabled: true, displayName: 'made by hand' });
    repo = makeRepo(files());
    const r = await sp(repo, 'apply', '--auto-approve', '--allow-destroy');
    expect(r.code, r.stderr + r.stdout).toBe(0);
    for (const [realm, user] of [['kc-a', 'alice@a.example.com'], ['kc-a', 'bob@a.example.com'], ['kc-b', 'carol@b.example.com']] as const) await setPassword(realm, user);
  });

  it('creates each tenant realm with its client, scopes and users, and the next plan is empty', async () => {
    const kc = await admin();
    const clients = await kc.clients.find({ realm: 'kc-a', clientId: 'assistant' });
    expect(clients[0]?.attributes?.['pkce.code.challenge.method']).toBe('S256');
    expect(clients[0]?.publicClient).toBe(false);
    const users = await kc.users.find({ realm: 'kc-a', briefRepresentation: true });
    expect(users.map((u) => u.username).sort()).toEqual(['alice@a.example.com', 'bob@a.example.com']);
    expect((await sp(repo, 'plan', '--detailed-exitcode')).code).toBe(0);
  });

  it('issues tokens from the tenant realm with tenant_id, and only the scopes the user holds', async () => {
    const alice = await login('kc-a', 'alice@a.example.com', 'openid read write');
    expect(alice.claims.iss).toBe(`${KC}/realms/kc-a`);
    expect(alice.claims.tenant_id).toBe('kc-a');
    expect(scopes(alice.claims)).toEqual(expect.arrayContaining(['read', 'write', 'tenant:kc-a']));
    expect(alice.claims.aud).toContain('assistant');

    const bob = await login('kc-a', 'bob@a.example.com', 'openid read write');
    expect(scopes(bob.claims)).toContain('read');
    expect(scopes(bob.claims)).not.toContain('write');
    expect(bob.claims.tenant_id).toBe('kc-a');
  });

  it("refuses tenant A's token at tenant B: issuer, keys and userinfo", async () => {
    const alice = await login('kc-a', 'alice@a.example.com', 'openid read');
    const bKeys = createRemoteJWKSet(new URL(`${KC}/realms/kc-b/protocol/openid-connect/certs`));
    await expect(jwtVerify(alice.access, bKeys, { issuer: `${KC}/realms/kc-b` })).rejects.toThrow();
    const aKeys = createRemoteJWKSet(new URL(`${KC}/realms/kc-a/protocol/openid-connect/certs`));
    await expect(jwtVerify(alice.access, aKeys, { issuer: `${KC}/realms/kc-a` })).resolves.toBeTruthy();
    const userinfo = await fetch(`${KC}/realms/kc-b/protocol/openid-connect/userinfo`, { headers: { authorization: `Bearer ${alice.access}` } });
    expect(userinfo.status).toBe(401);
    const carol = await login('kc-b', 'carol@b.example.com', 'openid read');
    expect(carol.claims.tenant_id).toBe('kc-b');
  });

  it('removing a scope in YAML removes it from the next token, with only that user\'s writes', async () => {
    writeRepo(repo, files('user, read'));
    const { json: plan } = await spJson(repo, 'plan');
    // Alice moves to the grant role of her remaining scopes; no user holds her old one any more.
    expect(plan.changes.map((c: any) => `${c.action} ${c.kind} ${c.name}`).sort()).toEqual(['delete RealmRole kc-a/member:read+user+write', 'update User kc-a/alice@a.example.com']);
    const { code, json } = await spJson(repo, 'apply', '--auto-approve');
    expect(code).toBe(0);
    expect(json.result.writes).toBe(3); // grant the new role, revoke the old one, delete it
    const alice = await login('kc-a', 'alice@a.example.com', 'openid read write');
    expect(scopes(alice.claims)).toContain('read');
    expect(scopes(alice.claims)).not.toContain('write');
    expect((await sp(repo, 'plan', '--detailed-exitcode')).code).toBe(0);
  });

  it('plans a removed tenant\'s realm as destructive, refuses without --allow-destroy, and never touches a hand-made realm', async () => {
    const { ['tenants/kc-b.yaml']: _b, ...rest } = files('user, read');
    writeRepo(repo, rest);
    const { json: plan } = await spJson(repo, 'plan');
    expect(plan.changes.filter((c: any) => c.destructive).map((c: any) => `${c.kind} ${c.name}`).sort()).toEqual(['Namespace tenant-kc-b', 'Realm kc-b']);
    expect(JSON.stringify(plan)).not.toContain('handmade');
    const refused = await sp(repo, 'apply', '--auto-approve');
    expect(refused.code).toBe(1);
    const kc = await admin();
    expect(await kc.realms.findOne({ realm: 'kc-b' })).toBeTruthy();
    expect((await sp(repo, 'apply', '--auto-approve', '--allow-destroy')).code).toBe(0);
    expect(await kc.realms.findOne({ realm: 'kc-b' })).toBeFalsy();
    const handmade = await kc.realms.findOne({ realm: 'handmade' });
    expect(handmade?.displayName).toBe('made by hand');
  });
});
