import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fetchRevision, syncConfigSource, type ConfigSource } from '../../src/operator/configsource.js';
import { credentialsDir, credentialsFromSecret, type GitCredentials } from '../../src/operator/gitcredentials.js';
import { PROJECT_ROOT } from '../helpers/repo.js';
import { gitWorkTree, selfSignedCert, sshKeygen, startGitHttpsServer, startGitSshServer, type GitHttpsServer, type GitSshServer, type GitWorkTree } from './git-servers.js';
import { applyCrds, kubeHttp, namespaceExists, removeCustomResources, waitFor } from './helpers.js';

/**
 * spec.git.secretRef against real git servers this file starts: HTTPS (self-signed certificate,
 * Basic auth, git-http-backend) and SSH (ssh2, one client key, git-upload-pack). fetchRevision with
 * the credentials a Secret's data gives; then a ConfigSource on the real API server whose Secret is
 * deleted and recreated, synced by syncConfigSource.
 */
const NS = 'sp-cs-cred-it';
const TOKEN = `tok-${randomBytes(16).toString('hex')}`;
const PASSWORD = `pw-${randomBytes(16).toString('hex')}`;
// No tenant or agent files: an operator running on the shared stack would reconcile their objects
// into Keycloak, Kubernetes and PostgreSQL, and this file is about fetching, not reconciling.
const PROJECT = 'tenancy:\n  enabled: true\n';

describe('ConfigSource credentials', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sp-cs-cred-it-'));
  const srv = path.join(root, 'srv'); // the servers' repositories
  const work = path.join(root, 'work');
  const cache = path.join(root, 'cache');
  let tls: { key: string; cert: string };
  let client: { privateKey: string; publicKey: string };
  let httpsServer: GitHttpsServer | undefined;
  let sshServer: GitSshServer | undefined;
  let c1: string;
  const httpsUrl = (): string => `https://127.0.0.1:${httpsServer!.port}/config.git`;
  const sshUrl = (): string => `ssh://git@127.0.0.1:${sshServer!.port}/config.git`;
  const knownHosts = (publicKey: string): string => `[127.0.0.1]:${sshServer!.port} ${publicKey}\n`;

  let repo: GitWorkTree;
  /** Credentials as a Secret with `data` would give them for `url` (the operator's own choice of keys). */
  const creds = (url: string, data: Record<string, string>): GitCredentials => {
    const r = credentialsFromSecret(url, 'it/git', Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')])));
    if (!r.ok) throw new Error(r.message);
    return r.credentials;
  };
  const source = (name: string, url: string): ConfigSource => ({ metadata: { name, namespace: 'it' }, spec: { git: { url, ref: { branch: 'main' } } } });
  const failure = (p: Promise<unknown>): Promise<string> =>
    p.then(
      () => {
        throw new Error('the fetch succeeded');
      },
      (e: unknown) => (e instanceof Error ? e.message : String(e)),
    );
  /** After every fetch, good or bad: only the askpass script is left in the private folder. */
  const onlyAskpassLeft = (dir = cache): void => expect(readdirSync(credentialsDir(dir))).toEqual(['askpass.sh']);

  beforeAll(async () => {
    mkdirSync(srv);
    repo = gitWorkTree(path.join(srv, 'config.git'), work);
    c1 = repo.commit({ 'systemprompt.yaml': PROJECT }, 'first');
    tls = selfSignedCert(root);
    httpsServer = await startGitHttpsServer({ projectRoot: srv, tls, accounts: { 'x-access-token': TOKEN, bob: PASSWORD } });
    client = sshKeygen(root, 'client');
    sshServer = await startGitSshServer({ projectRoot: srv, dir: root, clientPublicKey: client.publicKey });
  });

  afterAll(async () => {
    await httpsServer?.close();
    await sshServer?.close();
    rmSync(root, { recursive: true, force: true });
  });

  describe('HTTPS', () => {
    it('a token (sent as x-access-token) with ca.crt fetches the pushed commit; so do username and password', async () => {
      expect(await fetchRevision(cache, source('token', httpsUrl()), undefined, creds(httpsUrl(), { token: TOKEN, 'ca.crt': tls.cert }))).toBe(c1);
      expect(httpsServer!.users).toContain('x-access-token');
      onlyAskpassLeft();
      expect(await fetchRevision(cache, source('password', httpsUrl()), undefined, creds(httpsUrl(), { username: 'bob', password: PASSWORD, 'ca.crt': tls.cert }))).toBe(c1);
      expect(httpsServer!.users).toContain('bob');
      onlyAskpassLeft();
    });

    it("a wrong token fails with git's message (authentication failed), the token nowhere in it", async () => {
      const wrong = `tok-${randomBytes(16).toString('hex')}`;
      const message = await failure(fetchRevision(cache, source('wrong', httpsUrl()), undefined, creds(httpsUrl(), { token: wrong, 'ca.crt': tls.cert })));
      expect(message).toMatch(/^git fetch: (remote: .*\n)*fatal: Authentication failed for 'https:\/\/127\.0\.0\.1:\d+\/config\.git\/'$/);
      expect(message).not.toContain(wrong);
      expect(message).not.toContain(TOKEN);
      onlyAskpassLeft();
    });

    it('without ca.crt the server certificate is not trusted, the token being right', async () => {
      const message = await failure(fetchRevision(cache, source('noca', httpsUrl()), undefined, creds(httpsUrl(), { token: TOKEN })));
      expect(message).toMatch(/unable to access 'https:\/\/127\.0\.0\.1:\d+\/config\.git\/': .*certificate/i);
      expect(message).not.toContain(TOKEN);
      onlyAskpassLeft();
    });
  });

  describe('SSH', () => {
    it('identity and known_hosts fetch the pushed commit through git-upload-pack', async () => {
      const before = sshServer!.execs.length;
      expect(await fetchRevision(cache, source('ssh', sshUrl()), undefined, creds(sshUrl(), { identity: client.privateKey, known_hosts: knownHosts(sshServer!.hostPublicKey), 'identity.pub': client.publicKey }))).toBe(c1);
      expect(sshServer!.execs.slice(before)).toEqual(["git-upload-pack '/config.git'"]);
      onlyAskpassLeft();
    });

    it('a known_hosts that lists another key for the host fails before anything runs there (host keys are checked)', async () => {
      const before = sshServer!.execs.length;
      const impostor = sshKeygen(root, 'not-the-host-key');
      const message = await failure(fetchRevision(cache, source('ssh-hostkey', sshUrl()), undefined, creds(sshUrl(), { identity: client.privateKey, known_hosts: knownHosts(impostor.publicKey) })));
      expect(message).toMatch(/Host key verification failed/);
      expect(sshServer!.execs.length).toBe(before);
      onlyAskpassLeft();
    });

    it('a key the server does not accept: permission denied', async () => {
      const stranger = sshKeygen(root, 'stranger');
      const message = await failure(fetchRevision(cache, source('ssh-key', sshUrl()), undefined, creds(sshUrl(), { identity: stranger.privateKey, known_hosts: knownHosts(sshServer!.hostPublicKey) })));
      expect(message).toMatch(/Permission denied \(publickey\)/);
      expect(message).not.toContain('PRIVATE KEY');
      onlyAskpassLeft();
    });
  });

  describe('a ConfigSource on the API server', () => {
    const api = '/apis/systemprompt.io/v1alpha1';
    const csPath = `${api}/namespaces/${NS}/configsources/main`;
    const secretPath = `/api/v1/namespaces/${NS}/secrets/git-creds`;
    const condition = (o: any, type: string) => (o.status?.conditions ?? []).find((c: any) => c.type === type);
    const createSecret = () =>
      kubeHttp().request('POST', `/api/v1/namespaces/${NS}/secrets`, {
        body: { apiVersion: 'v1', kind: 'Secret', metadata: { name: 'git-creds', namespace: NS }, type: 'Opaque', stringData: { token: TOKEN, 'ca.crt': tls.cert } },
      });
    // The RBAC objects of deploy/10-rbac.yaml this file created (and deletes again).
    const rbacCreated: string[] = [];

    beforeAll(async () => {
      await applyCrds();
      // What an interrupted earlier run left, its namespace included.
      await removeCustomResources(NS);
      await waitFor(async () => ((await namespaceExists(NS)) ? undefined : true), { timeoutMs: 60_000, intervalMs: 250, what: `namespace ${NS} to be gone`, onTimeout: (w) => new Error(`timed out waiting for ${w}`) });
      await kubeHttp().request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } } });
    });

    afterAll(async () => {
      await removeCustomResources(NS);
      for (const p of rbacCreated) await kubeHttp().request('DELETE', p).catch(() => {});
    });

    it('applies the commit with the Secret holding a token and ca.crt; Stalled SecretNotFound once it is deleted; recovers when it is recreated', async () => {
      await createSecret();
      const cs = await kubeHttp().request<any>('POST', `${api}/namespaces/${NS}/configsources`, {
        body: { apiVersion: 'systemprompt.io/v1alpha1', kind: 'ConfigSource', metadata: { name: 'main', namespace: NS }, spec: { git: { url: httpsUrl(), ref: { branch: 'main' }, secretRef: { name: 'git-creds' } }, interval: '1m' } },
      });
      const opCache = path.join(root, 'operator-cache');
      const logs: string[] = [];
      // One sync of the ConfigSource as the operator's loop runs it each interval; its status afterwards.
      const sync = async (): Promise<any> => {
        const got = await kubeHttp().request<ConfigSource>('GET', csPath);
        await syncConfigSource(got, { api: kubeHttp(), cacheRoot: opCache, log: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })) });
        return kubeHttp().request<any>('GET', csPath);
      };

      const s1 = await sync();
      expect(s1.metadata.uid).toBe(cs.metadata.uid);
      expect(s1.status).toMatchObject({ observedGeneration: 1, lastAttemptedRevision: c1, lastAppliedRevision: c1, diagnostics: [] });
      expect(condition(s1, 'Ready')).toMatchObject({ status: 'True', reason: 'Applied', message: `revision ${c1} applied` });
      onlyAskpassLeft(opCache);

      // The Secret goes, a commit comes: Stalled, naming the Secret; the applied revision stays.
      await kubeHttp().request('DELETE', secretPath);
      const c2 = repo.commit({ 'systemprompt.yaml': `# the second revision\n${PROJECT}` }, 'second');
      const s2 = await sync();
      expect(condition(s2, 'Stalled')).toMatchObject({ status: 'True', reason: 'SecretNotFound', message: `Secret ${NS}/git-creds (spec.git.secretRef) not found; it is read again every interval` });
      expect(condition(s2, 'Ready')).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
      expect(s2.status).toMatchObject({ lastAttemptedRevision: c1, lastAppliedRevision: c1 });

      // Recreated: the next sync fetches and applies the new commit, with no restart.
      await createSecret();
      const s3 = await sync();
      expect(s3.status).toMatchObject({ lastAttemptedRevision: c2, lastAppliedRevision: c2 });
      expect(condition(s3, 'Ready')).toMatchObject({ status: 'True', reason: 'Applied' });
      expect(condition(s3, 'Stalled')?.status).toBe('False');
      onlyAskpassLeft(opCache);

      for (const text of [JSON.stringify([s1, s2, s3]), logs.join('\n')]) {
        expect(text).not.toContain(TOKEN);
        expect(text).not.toContain('BEGIN CERTIFICATE');
      }
      expect(logs.some((l) => l.includes('"reason":"SecretNotFound"'))).toBe(true);
    });

    it("deploy/10-rbac.yaml lets the operator's service account get that Secret (and another account may not)", async () => {
      const docs = parseAllDocuments(readFileSync(path.join(PROJECT_ROOT, 'deploy/10-rbac.yaml'), 'utf8')).map((d) => d.toJSON() as { kind: string; metadata: { name: string } });
      for (const o of docs.filter((d) => d.kind === 'ClusterRole' || d.kind === 'ClusterRoleBinding')) {
        const p = `/apis/rbac.authorization.k8s.io/v1/${o.kind === 'ClusterRole' ? 'clusterroles' : 'clusterrolebindings'}/${o.metadata.name}`;
        const existed = await kubeHttp().request('GET', p).then(
          () => true,
          (e: { code?: number }) => (e.code === 404 ? false : Promise.reject(e)),
        );
        await kubeHttp().request('PATCH', p, { query: { fieldManager: 'systemprompt-tests', force: 'true' }, contentType: 'application/apply-patch+yaml', body: o });
        if (!existed) rbacCreated.push(p);
      }
      const mayGet = async (user: string): Promise<boolean> => {
        const review = await kubeHttp().request<{ status: { allowed: boolean } }>('POST', '/apis/authorization.k8s.io/v1/subjectaccessreviews', {
          body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SubjectAccessReview', spec: { user, groups: ['system:serviceaccounts', 'system:authenticated'], resourceAttributes: { namespace: NS, verb: 'get', resource: 'secrets', name: 'git-creds' } } },
        });
        return review.status.allowed;
      };
      expect(await mayGet('system:serviceaccount:systemprompt-system:systemprompt-operator')).toBe(true);
      expect(await mayGet(`system:serviceaccount:${NS}:default`)).toBe(false);
    });
  });
});
