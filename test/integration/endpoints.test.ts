import KcAdminClient from '@keycloak/keycloak-admin-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { bufferIo } from '../helpers/io.js';
import { endpoints, makeRepo, resetTargets, targetEnv } from './helpers.js';

/** How the product logs in to its targets, beyond the dev stack's admin user. */
describe('target logins', () => {
  const clientId = `sp-automation-${Date.now()}`;
  let secret = '';
  let kc: KcAdminClient;
  let internalId = '';

  beforeAll(async () => {
    await resetTargets();
    kc = new KcAdminClient({ baseUrl: endpoints.keycloak.url, realmName: 'master' });
    await kc.auth({ grantType: 'password', clientId: 'admin-cli', username: endpoints.keycloak.username!, password: endpoints.keycloak.password! });
    // A confidential client with a service account holding master's `admin` role, as a platform
    // team would give a CI job instead of a person's password.
    const created = await kc.clients.create({ realm: 'master', clientId, publicClient: false, serviceAccountsEnabled: true, standardFlowEnabled: false, directAccessGrantsEnabled: false });
    internalId = created.id;
    secret = (await kc.clients.getClientSecret({ realm: 'master', id: internalId })).value!;
    const sa = await kc.clients.getServiceAccountUser({ realm: 'master', id: internalId });
    const admin = await kc.roles.findOneByName({ realm: 'master', name: 'admin' });
    await kc.users.addRealmRoleMappings({ realm: 'master', id: sa.id!, roles: [{ id: admin!.id!, name: 'admin' }] });
  });

  afterAll(async () => {
    await kc.clients.del({ realm: 'master', id: internalId }).catch(() => {});
    await resetTargets();
  });

  it('applies with a Keycloak confidential client (client credentials) instead of an admin user', async () => {
    const dir = makeRepo({ 'tenants/login.yaml': 'name: login\nusers:\n  - email: ann@example.com\n    scopes: [user]\n' });
    const env = { ...targetEnv(), SYSTEMPROMPT_KEYCLOAK_USER: '', SYSTEMPROMPT_KEYCLOAK_PASSWORD: '', SYSTEMPROMPT_KEYCLOAK_CLIENT_ID: clientId, SYSTEMPROMPT_KEYCLOAK_CLIENT_SECRET: secret };
    const cli = async (...args: string[]) => {
      const io = bufferIo(dir, env);
      const code = await run(['node', 'systemprompt', ...args, '--dir', dir], io);
      return { code, stdout: io.stdout, stderr: io.stderr };
    };
    const applied = await cli('apply', '--auto-approve');
    expect(applied.code, applied.stderr + applied.stdout).toBe(0);
    expect((await kc.realms.findOne({ realm: 'login' }))?.realm).toBe('login');
    expect((await cli('plan', '--detailed-exitcode')).code).toBe(0);
    expect(applied.stdout + applied.stderr).not.toContain(secret);
    // a wrong secret is refused with a hint naming the client variables
    const io = bufferIo(dir, { ...env, SYSTEMPROMPT_KEYCLOAK_CLIENT_SECRET: 'wrong' });
    expect(await run(['node', 'systemprompt', 'plan', '--dir', dir], io)).toBe(1);
    expect(io.stderr).toMatch(/admin login refused \(401\)/);
    expect(io.stderr).toMatch(/SYSTEMPROMPT_KEYCLOAK_CLIENT_ID/);
  });
});
