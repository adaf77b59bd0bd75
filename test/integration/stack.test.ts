import KcAdminClient from '@keycloak/keycloak-admin-client';
import { ApiException, AuthorizationV1Api, CoreV1Api, KubeConfig, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { createClient } from 'redis';
import { describe, expect, inject, it } from 'vitest';
import { waitFor } from '../../src/dev/process.js';
import { redisUrl } from './helpers.js';

const endpoints = inject('endpoints');
const suffix = () => randomBytes(4).toString('hex');
const timeout = (what: string) => new Error(`timed out waiting for ${what}`);

describe('Keycloak', () => {
  it('creates and deletes a realm through the admin API', async () => {
    const kc = new KcAdminClient({ baseUrl: endpoints.keycloak.url, realmName: 'master' });
    await kc.auth({ grantType: 'password', clientId: 'admin-cli', username: endpoints.keycloak.username, password: endpoints.keycloak.password });
    const realm = `it-${suffix()}`;
    await kc.realms.create({ realm, enabled: true, displayName: 'integration test' });
    try {
      const found = await kc.realms.findOne({ realm });
      expect(found?.realm).toBe(realm);
      expect(found?.enabled).toBe(true);
      const discovery = await fetch(`${endpoints.keycloak.url}/realms/${realm}/.well-known/openid-configuration`);
      expect(discovery.status).toBe(200);
      expect(((await discovery.json()) as { issuer: string }).issuer).toBe(`${endpoints.keycloak.url}/realms/${realm}`);
    } finally {
      await kc.realms.del({ realm });
    }
    expect(await kc.realms.findOne({ realm })).toBeFalsy();
  });
});

function kubeConfig(): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(endpoints.kubeconfigPath!);
  if (endpoints.context) kc.setCurrentContext(endpoints.context);
  return kc;
}

/** A client that authenticates as a service account with a bearer token, nothing else. */
function tokenConfig(admin: KubeConfig, token: string): KubeConfig {
  const cluster = admin.getCurrentCluster()!;
  const kc = new KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'c', server: cluster.server, caData: cluster.caData, caFile: cluster.caFile, skipTLSVerify: false }],
    users: [{ name: 'sa', token }],
    contexts: [{ name: 'sa', cluster: 'c', user: 'sa' }],
    currentContext: 'sa',
  });
  return kc;
}

function status(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

describe('Kubernetes', () => {
  it('runs namespaces, quotas, RBAC and service-account tokens for real', async () => {
    const kc = kubeConfig();
    const core = kc.makeApiClient(CoreV1Api);
    const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
    const authz = kc.makeApiClient(AuthorizationV1Api);
    const ns = `it-${suffix()}`;
    const other = `it-other-${suffix()}`;
    const labels = { 'app.kubernetes.io/managed-by': 'systemprompt-tests' };

    await core.createNamespace({ body: { metadata: { name: ns, labels } } });
    await core.createNamespace({ body: { metadata: { name: other, labels } } });
    try {
      // ResourceQuota: the resourcequota controller computes its status.
      await core.createNamespacedResourceQuota({ namespace: ns, body: { metadata: { name: 'quota' }, spec: { hard: { pods: '5', 'requests.cpu': '2' } } } });
      const quota = await waitFor(
        async () => {
          const q = await core.readNamespacedResourceQuota({ name: 'quota', namespace: ns });
          return q.status?.hard?.pods ? q : undefined;
        },
        { timeoutMs: 60_000, what: 'quota status', onTimeout: timeout },
      );
      expect(quota.status?.hard?.pods).toBe('5');
      expect(quota.status?.used?.pods).toBe('0');

      // A service account allowed to read secrets in its own namespace only.
      await core.createNamespacedServiceAccount({ namespace: ns, body: { metadata: { name: 'app' } } });
      await rbac.createNamespacedRole({
        namespace: ns,
        body: { metadata: { name: 'secret-reader' }, rules: [{ apiGroups: [''], resources: ['secrets'], verbs: ['get', 'list'] }] },
      });
      await rbac.createNamespacedRoleBinding({
        namespace: ns,
        body: {
          metadata: { name: 'app-secret-reader' },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'secret-reader' },
          subjects: [{ kind: 'ServiceAccount', name: 'app', namespace: ns }],
        },
      });
      const user = `system:serviceaccount:${ns}:app`;
      const groups = ['system:serviceaccounts', `system:serviceaccounts:${ns}`, 'system:authenticated'];
      const review = async (namespace: string) =>
        (await authz.createSubjectAccessReview({ body: { spec: { user, groups, resourceAttributes: { namespace, verb: 'list', resource: 'secrets' } } } })).status;
      expect((await review(ns))?.allowed).toBe(true);
      const denied = await review(other);
      expect(denied?.allowed).toBe(false);

      // The same with a real token from the TokenRequest API.
      const tr = await core.createNamespacedServiceAccountToken({ name: 'app', namespace: ns, body: { spec: { audiences: [], expirationSeconds: 600 } } });
      const asApp = tokenConfig(kc, tr.status!.token).makeApiClient(CoreV1Api);
      const own = await asApp.listNamespacedSecret({ namespace: ns });
      expect(Array.isArray(own.items)).toBe(true);
      const err = await asApp.listNamespacedSecret({ namespace: other }).catch((e: unknown) => e);
      expect(status(err)).toBe(403);

      // Controllers at work: the default service account and the root CA config map appear.
      await waitFor(
        async () => {
          const sas = await core.listNamespacedServiceAccount({ namespace: ns });
          const cms = await core.listNamespacedConfigMap({ namespace: ns });
          return sas.items.some((s) => s.metadata?.name === 'default') && cms.items.some((c) => c.metadata?.name === 'kube-root-ca.crt') ? true : undefined;
        },
        { timeoutMs: 60_000, what: 'default service account and kube-root-ca.crt', onTimeout: timeout },
      );
    } finally {
      await core.deleteNamespace({ name: other }).catch(() => undefined);
      await core.deleteNamespace({ name: ns });
    }
    // The namespace controller finishes the deletion: poll until it is gone.
    for (const name of [ns, other]) {
      await waitFor(
        async () => {
          try {
            await core.readNamespace({ name });
            return undefined;
          } catch (e) {
            if (status(e) === 404) return true;
            throw e;
          }
        },
        { timeoutMs: 120_000, intervalMs: 200, what: `namespace ${name} to be deleted`, onTimeout: timeout },
      );
    }
  });
});

describe('PostgreSQL', () => {
  it('creates a database and a login role, which connects with its own password only', async () => {
    const admin = new pg.Client({ connectionString: endpoints.postgresUrl });
    await admin.connect();
    const role = `it_role_${suffix()}`;
    const db = `it-db ${suffix()}`; // needs quoting: a space and a dash
    const password = randomBytes(18).toString('base64url');
    const ddl = async (template: string, ...args: string[]) => {
      const { rows } = await admin.query<{ sql: string }>(`SELECT format(${template}) AS sql`, args);
      await admin.query(rows[0]!.sql);
    };
    const url = new URL(endpoints.postgresUrl);
    const connectAs = (user: string, pw: string, database: string) =>
      new pg.Client({ host: url.hostname, port: Number(url.port), user, password: pw, database, connectionTimeoutMillis: 5000 });
    try {
      await ddl(`'CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text`, role, password);
      // The admin is not a superuser (as on managed PostgreSQL): it must join a role to give it a database.
      await ddl(`'GRANT %I TO CURRENT_USER', $1::text`, role);
      await ddl(`'CREATE DATABASE %I OWNER %I', $1::text, $2::text`, db, role);
      await ddl(`'REVOKE CONNECT ON DATABASE %I FROM PUBLIC', $1::text`, db);

      const client = connectAs(role, password, db);
      await client.connect();
      try {
        const { rows } = await client.query<{ user: string; db: string }>('SELECT current_user AS user, current_database() AS db');
        expect(rows[0]).toEqual({ user: role, db });
        await client.query('CREATE TABLE notes (id int PRIMARY KEY, body text)');
        await client.query('INSERT INTO notes VALUES ($1, $2)', [1, "it's real"]);
        expect((await client.query('SELECT body FROM notes WHERE id = $1', [1])).rows[0]).toEqual({ body: "it's real" });
      } finally {
        await client.end();
      }

      // scram-sha-256: a wrong password is refused (28P01).
      const wrong = connectAs(role, `${password}x`, db);
      wrong.on('error', () => undefined);
      const err = (await wrong.connect().catch((e: unknown) => e)) as { code?: string };
      expect(err.code).toBe('28P01');
    } finally {
      await ddl(`'DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text`, db);
      await ddl(`'DROP ROLE IF EXISTS %I', $1::text`, role);
      await admin.end();
    }
  });
});

describe('Redis', () => {
  it("answers only with its password, listens on loopback only and persists nothing (the stack's own redis-server)", async () => {
    const url = new URL(redisUrl());
    const client = createClient({ url: url.toString() });
    client.on('error', () => undefined);
    await client.connect();
    try {
      expect(await client.ping()).toBe('PONG');
      const config = async (name: string) => Object.values(await client.configGet(name))[0];
      expect(await config('bind')).toBe('127.0.0.1');
      expect(await config('protected-mode')).toBe('yes');
      expect(await config('save')).toBe('');
      expect(await config('appendonly')).toBe('no');
      expect(String(await config('dir'))).not.toMatch(/^\/var\//);
    } finally {
      client.destroy();
    }
    // Without the password: refused.
    const anonymous = new URL(url);
    anonymous.username = '';
    anonymous.password = '';
    const stranger = createClient({ url: anonymous.toString(), socket: { reconnectStrategy: false } });
    stranger.on('error', () => undefined);
    await stranger.connect();
    try {
      await expect(stranger.ping()).rejects.toThrow(/NOAUTH/);
    } finally {
      stranger.destroy();
    }
  });
});
