import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseAllDocuments } from 'yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { fetchRevision, syncConfigSource, type ConfigSource, type ConfigSourceStatus } from '../../src/operator/configsource.js';
import {
  ASKPASS_PASSWORD_ENV,
  ASKPASS_USERNAME_ENV,
  credentialsDir,
  credentialsFromSecret,
  gitAuthPlan,
  gitScheme,
  scrubSecrets,
  shellQuote,
  withGitAuth,
  type GitCredentials,
} from '../../src/operator/gitcredentials.js';
import type { CrApi } from '../../src/operator/resources.js';
import { PROJECT_ROOT } from '../helpers/repo.js';

const b64 = (data: Record<string, string>): Record<string, string> => Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
const TOKEN = 'ghp_unitTestToken0123456789';
const PASSWORD = 'correct horse battery staple';
const CA = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n';
const KEY = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAAfakeKeyMaterial\n-----END OPENSSH PRIVATE KEY-----\n';
const KNOWN = '[git.example]:2222 ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeHostKey\n';
const HTTPS = 'https://git.example/platform/config.git';
const SSH = 'ssh://git@git.example:2222/platform/config.git';

describe('git credentials: the URL scheme', () => {
  it('tells https, ssh:// and scp-like SSH, file:// and the rest apart', () => {
    expect(gitScheme('https://git.example/a.git')).toBe('https');
    expect(gitScheme('HTTPS://git.example/a.git')).toBe('https');
    expect(gitScheme('ssh://git@git.example/a.git')).toBe('ssh');
    expect(gitScheme('git@github.com:org/repo.git')).toBe('ssh');
    expect(gitScheme('file:///srv/a.git')).toBe('file');
    expect(gitScheme('http://git.example/a.git')).toBe('other');
    expect(gitScheme('/srv/a.git')).toBe('other');
    expect(gitScheme('./a:b')).toBe('other');
  });
});

describe('git credentials: choosing them from a Secret by the URL scheme', () => {
  const from = (url: string, data: Record<string, string>) => credentialsFromSecret(url, 'platform/git', b64(data));

  it('https: a token alone is the password of x-access-token; with `username`, of that user', () => {
    expect(from(HTTPS, { token: TOKEN })).toEqual({ ok: true, credentials: { kind: 'https', basic: { username: 'x-access-token', password: TOKEN } } });
    expect(from(HTTPS, { token: TOKEN, username: 'oauth2' })).toEqual({ ok: true, credentials: { kind: 'https', basic: { username: 'oauth2', password: TOKEN } } });
  });

  it('https: username + password, with an optional ca.crt; ca.crt alone trusts a CA for a public repository; SSH keys are ignored', () => {
    expect(from(HTTPS, { username: 'bob', password: PASSWORD, 'ca.crt': CA })).toEqual({ ok: true, credentials: { kind: 'https', basic: { username: 'bob', password: PASSWORD }, caCert: CA } });
    expect(from(HTTPS, { 'ca.crt': CA })).toEqual({ ok: true, credentials: { kind: 'https', caCert: CA } });
    expect(from(HTTPS, { token: TOKEN, identity: KEY })).toMatchObject({ ok: true, credentials: { kind: 'https' } });
  });

  it('decodes base64 and drops the final newline a --from-file value brings; an empty value counts as missing', () => {
    expect(from(HTTPS, { token: `${TOKEN}\n` })).toMatchObject({ credentials: { basic: { password: TOKEN } } });
    expect(from(HTTPS, { token: '', 'ca.crt': CA })).toEqual({ ok: true, credentials: { kind: 'https', caCert: CA } });
  });

  it('ssh (ssh:// and scp-like): identity and known_hosts; identity.pub is ignored', () => {
    const ok = { ok: true, credentials: { kind: 'ssh', identity: KEY, knownHosts: KNOWN } };
    expect(from(SSH, { identity: KEY, known_hosts: KNOWN, 'identity.pub': 'ssh-ed25519 AAAA' })).toEqual(ok);
    expect(from('git@git.example:platform/config.git', { identity: KEY, known_hosts: KNOWN })).toEqual(ok);
  });

  it('ssh without known_hosts (or with only comments): MissingKnownHosts, saying host keys are always checked', () => {
    for (const data of [{ identity: KEY }, { identity: KEY, known_hosts: '# nothing\n\n' }] as Array<Record<string, string>>) {
      const r = from(SSH, data);
      expect(r).toMatchObject({ ok: false, reason: 'MissingKnownHosts' });
      expect(!r.ok && r.message).toMatch(/Secret platform\/git has no `known_hosts`: host keys are always checked/);
    }
  });

  it('the wrong key set for the scheme: InvalidSecret naming the keys expected and the keys present (never a value)', () => {
    const https = from(HTTPS, { identity: KEY, known_hosts: KNOWN });
    expect(https).toMatchObject({ ok: false, reason: 'InvalidSecret' });
    expect(!https.ok && https.message).toBe(
      'Secret platform/git holds no credentials for an https:// URL: it needs `username` and `password`, or `token` (with an optional `username`), and optionally `ca.crt`; the Secret has `identity`, `known_hosts`',
    );
    const ssh = from(SSH, { token: TOKEN });
    expect(ssh).toMatchObject({ ok: false, reason: 'InvalidSecret' });
    expect(!ssh.ok && ssh.message).toBe('Secret platform/git has no `identity`: an SSH URL needs `identity` (a private key) and `known_hosts`; the Secret has `token`');
    expect(!ssh.ok && ssh.message).not.toContain(TOKEN);
    expect(credentialsFromSecret(HTTPS, 'platform/git', undefined)).toMatchObject({ ok: false, reason: 'InvalidSecret', message: expect.stringContaining('the Secret has no keys') });
  });

  it('half a pair, both password and token, or a value of the wrong kind: InvalidSecret saying which', () => {
    const message = (url: string, data: Record<string, string>): string => {
      const r = from(url, data);
      if (r.ok) throw new Error('expected a problem');
      expect(r.reason).toBe('InvalidSecret');
      for (const v of Object.values(data)) expect(r.message).not.toContain(v);
      return r.message;
    };
    expect(message(HTTPS, { username: 'bob' })).toMatch(/has `username` but neither `password` nor `token`/);
    expect(message(HTTPS, { password: PASSWORD })).toMatch(/has `password` but no `username`/);
    expect(message(HTTPS, { username: 'bob', password: PASSWORD, token: TOKEN })).toMatch(/has both `password` and `token`; keep one/);
    expect(message(HTTPS, { token: TOKEN, 'ca.crt': 'not a certificate' })).toMatch(/`ca.crt` of Secret platform\/git is not a PEM certificate/);
    expect(message(SSH, { identity: 'ssh-ed25519 AAAA public key', known_hosts: KNOWN })).toMatch(/`identity` of Secret platform\/git is not a PEM or OpenSSH private key/);
    expect(message(SSH, { identity: '-----BEGIN ENCRYPTED PRIVATE KEY-----\nxx\n-----END ENCRYPTED PRIVATE KEY-----\n', known_hosts: KNOWN })).toMatch(/is encrypted/);
  });

  it('file:// and other URLs take no credentials: SecretRefNotApplicable', () => {
    expect(from('file:///srv/config.git', { token: TOKEN })).toMatchObject({ ok: false, reason: 'SecretRefNotApplicable', message: expect.stringContaining('not to file:// URL') });
  });
});

describe('git credentials: what git is given', () => {
  const where = { askpass: '/cache/.credentials/askpass.sh', dir: "/cache/.credentials/fetch-a b'c" };
  const https: GitCredentials = { kind: 'https', basic: { username: 'bob', password: PASSWORD }, caCert: CA };
  const ssh: GitCredentials = { kind: 'ssh', identity: KEY, knownHosts: KNOWN };

  it('https: askpass and the values in environment variables only; ca.crt as a file in GIT_SSL_CAINFO; no credential helper', () => {
    const { auth, files } = gitAuthPlan(https, where);
    expect(auth.args).toEqual(['-c', 'credential.helper=']);
    expect(auth.env).toEqual({ GIT_ASKPASS: where.askpass, [ASKPASS_USERNAME_ENV]: 'bob', [ASKPASS_PASSWORD_ENV]: PASSWORD, GIT_SSL_CAINFO: `${where.dir}/ca.crt` });
    expect(files).toEqual([{ path: `${where.dir}/ca.crt`, content: CA }]);
  });

  it('ssh: GIT_SSH_COMMAND names the files (quoted), checks host keys strictly and never prompts; the key is only in a file', () => {
    const { auth, files } = gitAuthPlan(ssh, where);
    expect(auth.env.GIT_SSH_COMMAND).toBe(
      `ssh -F /dev/null -i '/cache/.credentials/fetch-a b'\\''c/identity' -o IdentitiesOnly=yes -o UserKnownHostsFile='/cache/.credentials/fetch-a b'\\''c/known_hosts' -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes`,
    );
    expect(files.map((f) => f.path)).toEqual([`${where.dir}/identity`, `${where.dir}/known_hosts`]);
    expect(files[0]!.content).toBe(KEY);
    // A key without its final newline gets one (ssh refuses it otherwise).
    expect(gitAuthPlan({ ...ssh, identity: KEY.trimEnd() }, where).files[0]!.content).toBe(KEY);
  });

  it('no secret value is in any argument, nor in an environment variable other than the askpass ones', () => {
    for (const creds of [https, ssh, { kind: 'https', basic: { username: 'x-access-token', password: TOKEN } } as GitCredentials]) {
      const { auth } = gitAuthPlan(creds, where);
      const argv = [...auth.args, auth.env.GIT_SSH_COMMAND ?? ''].join(' ');
      const others = Object.entries(auth.env).filter(([k]) => k !== ASKPASS_PASSWORD_ENV && k !== ASKPASS_USERNAME_ENV);
      for (const secret of [PASSWORD, TOKEN, 'fakeKeyMaterial', CA.split('\n')[1]!]) {
        expect(argv).not.toContain(secret);
        for (const [, v] of others) expect(v).not.toContain(secret);
      }
    }
  });

  it('shell-quotes a path with spaces and quotes so the shell reads it as one word', () => {
    const p = "/tmp/a b/it's";
    expect(execFileSync('sh', ['-c', `printf '%s' ${shellQuote(p)}`], { encoding: 'utf8' })).toBe(p);
  });

  it('scrubs a password or key that git might echo from an error message', () => {
    expect(scrubSecrets(`fatal: bad ${PASSWORD} here`, https)).toBe('fatal: bad *** here');
    expect(scrubSecrets('fatal: nothing', undefined)).toBe('fatal: nothing');
  });
});

describe('git credentials: files on disk', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sp-gitcred-unit-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));
  const mode = (p: string): number => statSync(p).mode & 0o777;

  it('writes the askpass script once (0700, in a 0700 folder) and the fetch files 0600 in a fresh 0700 folder, deleted afterwards even on failure', async () => {
    const cache = path.join(root, 'cache1');
    const base = credentialsDir(cache);
    let seen: { dir: string; files: Array<[string, number]> } | undefined;
    await withGitAuth(cache, { kind: 'ssh', identity: KEY, knownHosts: KNOWN }, async (auth) => {
      const key = /-i '([^']+)'/.exec(auth.env.GIT_SSH_COMMAND!)![1]!;
      const dir = path.dirname(key);
      seen = { dir, files: readdirSync(dir).sort().map((f) => [f, mode(path.join(dir, f))]) };
      expect(mode(dir)).toBe(0o700);
      expect(readFileSync(key, 'utf8')).toBe(KEY);
    });
    expect(seen!.files).toEqual([['identity', 0o600], ['known_hosts', 0o600]]);
    expect(existsSync(seen!.dir)).toBe(false);
    expect(mode(base)).toBe(0o700);
    expect(mode(path.join(base, 'askpass.sh'))).toBe(0o700);
    const written = statSync(path.join(base, 'askpass.sh')).mtimeMs;

    let failedDir = '';
    await expect(
      withGitAuth(cache, { kind: 'https', basic: { username: 'u', password: PASSWORD }, caCert: CA }, async (auth) => {
        failedDir = path.dirname(auth.env.GIT_SSL_CAINFO!);
        expect(mode(auth.env.GIT_SSL_CAINFO!)).toBe(0o600);
        throw new Error('fetch failed');
      }),
    ).rejects.toThrow('fetch failed');
    expect(existsSync(failedDir)).toBe(false);
    expect(readdirSync(base)).toEqual(['askpass.sh']);
    expect(statSync(path.join(base, 'askpass.sh')).mtimeMs).toBe(written);
  });

  it('the askpass script answers git\'s username and password prompts from its environment', async () => {
    const cache = path.join(root, 'cache2');
    await withGitAuth(cache, { kind: 'https', basic: { username: 'bob', password: PASSWORD } }, async (auth) => {
      const env = { PATH: process.env.PATH, ...auth.env };
      expect(execFileSync(auth.env.GIT_ASKPASS!, ["Username for 'https://git.example': "], { env, encoding: 'utf8' })).toBe('bob\n');
      expect(execFileSync(auth.env.GIT_ASKPASS!, ["Password for 'https://bob@git.example': "], { env, encoding: 'utf8' })).toBe(`${PASSWORD}\n`);
    });
  });

  it('a fetch runs git with no secret in its argv or in GIT_SSH_COMMAND (ssh\'s), the password only in the askpass variable, the rest in 0600 files', async () => {
    // A `git` first on PATH that records what it was run with, then runs the real one.
    const bin = path.join(root, 'bin');
    const log = path.join(root, 'git.log');
    const cache = path.join(root, 'cache3');
    const realGit = execFileSync('sh', ['-c', 'command -v git'], { encoding: 'utf8' }).trim();
    execFileSync('mkdir', ['-p', bin]);
    writeFileSync(
      path.join(bin, 'git'),
      `#!/bin/sh\n{ printf 'ARGV'; for a in "$@"; do printf ' %s' "$a"; done; printf '\\n'; env | grep -E '^(GIT_|SYSTEMPROMPT_)' | sed 's/^/ENV /'; find ${shellQuote(credentialsDir(cache))} -printf 'FILE %m %P\\n' 2>/dev/null; } >> ${shellQuote(log)}\nexec ${shellQuote(realGit)} "$@"\n`,
    );
    chmodSync(path.join(bin, 'git'), 0o755);
    const savedPath = process.env.PATH;
    process.env.PATH = `${bin}:${savedPath}`;
    try {
      const source = (url: string): ConfigSource => ({ metadata: { name: 'cs', namespace: 'ns' }, spec: { git: { url, ref: { branch: 'main' } } } });
      // Nothing listens on port 9: both fetches fail, after git was run with everything.
      await expect(fetchRevision(cache, source('https://127.0.0.1:9/config.git'), undefined, { kind: 'https', basic: { username: 'x-access-token', password: TOKEN }, caCert: CA })).rejects.toThrow(/git/);
      await expect(fetchRevision(cache, source('ssh://git@127.0.0.1:9/config.git'), undefined, { kind: 'ssh', identity: KEY, knownHosts: KNOWN })).rejects.toThrow(/git/);
    } finally {
      process.env.PATH = savedPath;
    }
    const lines = readFileSync(log, 'utf8').split('\n');
    const argv = lines.filter((l) => l.startsWith('ARGV')).join('\n');
    expect(argv).toMatch(/ARGV -c protocol.ext.allow=never -c credential.helper= --git-dir \S+ fetch .* -- https:\/\/127.0.0.1:9\/config.git/);
    for (const secret of [TOKEN, 'fakeKeyMaterial', 'MIIBfake']) expect(argv).not.toContain(secret);
    const env = lines.filter((l) => l.startsWith('ENV'));
    expect(env).toContain(`ENV ${ASKPASS_PASSWORD_ENV}=${TOKEN}`);
    expect(env.filter((l) => l.includes(TOKEN))).toHaveLength(1);
    for (const secret of ['fakeKeyMaterial', 'MIIBfake']) expect(env.join('\n')).not.toContain(secret); // keys and certificates only in files
    expect(env.some((l) => /^ENV GIT_SSH_COMMAND=ssh .*StrictHostKeyChecking=yes/.test(l))).toBe(true);
    // While git ran: the fetch's files 0600 in a 0700 folder; afterwards only the askpass script is left.
    const files = lines.filter((l) => l.startsWith('FILE'));
    expect(files).toEqual(expect.arrayContaining(['FILE 700 askpass.sh', expect.stringMatching(/^FILE 700 fetch-\w+$/), expect.stringMatching(/^FILE 600 fetch-\w+\/ca.crt$/), expect.stringMatching(/^FILE 600 fetch-\w+\/identity$/), expect.stringMatching(/^FILE 600 fetch-\w+\/known_hosts$/)]));
    expect(readdirSync(credentialsDir(cache))).toEqual(['askpass.sh']);
  });
});

describe('ConfigSource sync: spec.git.secretRef', () => {
  const root = mkdtempSync(path.join(os.tmpdir(), 'sp-gitcred-sync-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  /** An API server fake: one Secret (or none, or a status code), and the status patches written. */
  function fakeApi(secret: Record<string, string> | number | undefined) {
    const reads: string[] = [];
    const statuses: ConfigSourceStatus[] = [];
    const api: CrApi = {
      request: async <T,>(method: string, p: string, opts: { body?: unknown } = {}): Promise<T> => {
        if (method === 'GET' && p.startsWith('/api/v1/namespaces/')) {
          reads.push(p);
          if (typeof secret === 'number') throw Object.assign(new Error(`HTTP ${secret}`), { code: secret });
          if (!secret) throw Object.assign(new Error('HTTP 404'), { code: 404 });
          return { data: b64(secret) } as T;
        }
        if (method === 'PATCH' && p.endsWith('/status')) {
          statuses.push((opts.body as { status: ConfigSourceStatus }).status);
          return {} as T;
        }
        throw new Error(`unexpected ${method} ${p}`);
      },
    };
    return { api, reads, statuses };
  }
  const source = (url: string): ConfigSource => ({ metadata: { name: 'main', namespace: 'platform', uid: 'u1', generation: 1 }, spec: { git: { url, ref: { branch: 'main' }, secretRef: { name: 'git-creds' } } } });
  const run = async (url: string, secret: Record<string, string> | number | undefined) => {
    const f = fakeApi(secret);
    const logs: string[] = [];
    await syncConfigSource(source(url), { api: f.api, cacheRoot: path.join(root, 'cache'), log: (level, msg, fields) => logs.push(JSON.stringify({ level, msg, ...fields })) });
    const s = f.statuses[0]!;
    return { ...f, logs, status: s, ready: s.conditions.find((c) => c.type === 'Ready')!, stalled: s.conditions.find((c) => c.type === 'Stalled')! };
  };

  it('reads the Secret in the ConfigSource\'s own namespace; not found: Stalled SecretNotFound, naming it', async () => {
    const r = await run(HTTPS, undefined);
    expect(r.reads).toEqual(['/api/v1/namespaces/platform/secrets/git-creds']);
    expect(r.stalled).toMatchObject({ status: 'True', reason: 'SecretNotFound', message: 'Secret platform/git-creds (spec.git.secretRef) not found; it is read again every interval' });
    expect(r.ready).toMatchObject({ status: 'False', reason: 'SecretNotFound' });
  });

  it('forbidden: Stalled SecretForbidden; the wrong keys: InvalidSecret; no known_hosts: MissingKnownHosts', async () => {
    expect((await run(HTTPS, 403)).stalled).toMatchObject({ status: 'True', reason: 'SecretForbidden' });
    expect((await run(HTTPS, { identity: KEY })).stalled).toMatchObject({ status: 'True', reason: 'InvalidSecret', message: expect.stringContaining('`username` and `password`, or `token`') });
    expect((await run(SSH, { identity: KEY })).stalled).toMatchObject({ status: 'True', reason: 'MissingKnownHosts' });
  });

  it('another API error is a failed sync, retried (not Stalled)', async () => {
    const r = await run(HTTPS, 500);
    expect(r.stalled.status).toBe('False');
    expect(r.ready).toMatchObject({ status: 'False', reason: 'SyncFailed' });
  });

  it('a failing fetch with credentials: FetchFailed, with the token in neither status nor log', async () => {
    const r = await run('https://127.0.0.1:9/config.git', { token: TOKEN });
    expect(r.ready).toMatchObject({ status: 'False', reason: 'FetchFailed' });
    expect(r.stalled.status).toBe('False');
    expect(JSON.stringify(r.status)).not.toContain(TOKEN);
    expect(r.logs.join('\n')).not.toContain(TOKEN);
  });
});

describe('deploy/10-rbac.yaml: the operator may read the Secret a ConfigSource names', () => {
  it('its ClusterRole, bound cluster-wide to its service account, has get on secrets in every namespace', () => {
    const docs = parseAllDocuments(readFileSync(path.join(PROJECT_ROOT, 'deploy/10-rbac.yaml'), 'utf8')).map((d) => d.toJSON() as any);
    const role = docs.find((d) => d.kind === 'ClusterRole' && d.metadata.name === 'systemprompt-operator');
    expect(role.rules.some((r: any) => r.apiGroups.includes('') && r.resources.includes('secrets') && r.verbs.includes('get') && !r.resourceNames)).toBe(true);
    const binding = docs.find((d) => d.kind === 'ClusterRoleBinding' && d.roleRef.name === 'systemprompt-operator');
    expect(binding.roleRef.kind).toBe('ClusterRole');
    expect(binding.subjects).toContainEqual({ kind: 'ServiceAccount', name: 'systemprompt-operator', namespace: 'systemprompt-system' });
  });
});
