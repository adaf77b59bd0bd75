import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { CrApi } from './resources.js';

/**
 * Credentials for a ConfigSource's git repository: the Secret its `spec.git.secretRef` names (the
 * keys of Flux's GitRepository), which keys a URL's scheme needs, and how one git process gets
 * them without their reaching an argv (visible in `ps`), a log line or status:
 *
 * - HTTPS: `username` + `password`, or `token` (the password; username `username` if given, else
 *   `x-access-token`), answered by a GIT_ASKPASS script from variables set on that git process only;
 *   `ca.crt` through GIT_SSL_CAINFO.
 * - SSH: `identity` and `known_hosts` (required: host keys are always checked), as files named in
 *   GIT_SSH_COMMAND.
 *
 * Files are 0600 in a fresh 0700 folder under `<cacheRoot>/.credentials`, deleted after every fetch.
 */

export type GitScheme = 'https' | 'ssh' | 'file' | 'other';

/** The transport of a git URL: `https://`, SSH (`ssh://` or scp-like `user@host:path`), `file://`, or something else. */
export function gitScheme(url: string): GitScheme {
  const m = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url);
  if (m) {
    const s = m[1]!.toLowerCase();
    if (s === 'https') return 'https';
    if (s === 'ssh' || s === 'git+ssh' || s === 'ssh+git') return 'ssh';
    return s === 'file' ? 'file' : 'other';
  }
  // git's rule for scp-like syntax: a colon with no slash before it.
  const colon = url.indexOf(':');
  return colon > 0 && !url.slice(0, colon).includes('/') ? 'ssh' : 'other';
}

export type GitCredentials =
  | { kind: 'https'; basic?: { username: string; password: string }; caCert?: string }
  | { kind: 'ssh'; identity: string; knownHosts: string };

/** Why a ConfigSource's credentials cannot be used; `reason` is the Stalled condition's. */
export interface CredentialsProblem {
  ok: false;
  reason: 'SecretNotFound' | 'SecretForbidden' | 'InvalidSecret' | 'MissingKnownHosts' | 'SecretRefNotApplicable';
  message: string;
}
export type CredentialsResult = { ok: true; credentials: GitCredentials } | CredentialsProblem;

/** The username sent with a `token` when the Secret names none (GitHub's convention; GitLab and Gitea accept any). */
export const TOKEN_USERNAME = 'x-access-token';

const HTTPS_KEYS = '`username` and `password`, or `token` (with an optional `username`), and optionally `ca.crt`';
const SSH_KEYS = '`identity` (a private key) and `known_hosts`';

/**
 * The credentials in a Secret's `data` (base64 values) for `url`, or what is wrong with them.
 * `secret` (namespace/name) is only for messages, which name keys and never show a value.
 */
export function credentialsFromSecret(url: string, secret: string, data: Record<string, string> | undefined): CredentialsResult {
  const raw = data ?? {};
  const decoded = (k: string): string | undefined => {
    const v = raw[k];
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
  };
  // A value written with `--from-file` often ends in a newline that is no part of a password.
  const line = (k: string): string | undefined => decoded(k)?.replace(/\r?\n$/, '') || undefined;
  const text = (k: string): string | undefined => (decoded(k)?.trim() ? decoded(k) : undefined);
  const has = `the Secret has ${Object.keys(raw).length ? Object.keys(raw).sort().map((k) => `\`${k}\``).join(', ') : 'no keys'}`;
  const bad = (reason: CredentialsProblem['reason'], message: string): CredentialsProblem => ({ ok: false, reason, message });

  const scheme = gitScheme(url);
  if (scheme === 'https') {
    const username = line('username');
    const password = line('password');
    const token = line('token');
    const caCert = text('ca.crt');
    if (password !== undefined && token !== undefined) return bad('InvalidSecret', `Secret ${secret} has both \`password\` and \`token\`; keep one (an https:// URL needs ${HTTPS_KEYS})`);
    if (password !== undefined && username === undefined) return bad('InvalidSecret', `Secret ${secret} has \`password\` but no \`username\` (an https:// URL needs ${HTTPS_KEYS})`);
    if (username !== undefined && password === undefined && token === undefined) return bad('InvalidSecret', `Secret ${secret} has \`username\` but neither \`password\` nor \`token\` (an https:// URL needs ${HTTPS_KEYS})`);
    if (caCert !== undefined && !/-----BEGIN CERTIFICATE-----/.test(caCert)) return bad('InvalidSecret', `\`ca.crt\` of Secret ${secret} is not a PEM certificate`);
    const secretPart = password ?? token;
    if (secretPart === undefined && caCert === undefined) return bad('InvalidSecret', `Secret ${secret} holds no credentials for an https:// URL: it needs ${HTTPS_KEYS}; ${has}`);
    return {
      ok: true,
      credentials: {
        kind: 'https',
        ...(secretPart !== undefined ? { basic: { username: username ?? TOKEN_USERNAME, password: secretPart } } : {}),
        ...(caCert !== undefined ? { caCert } : {}),
      },
    };
  }
  if (scheme === 'ssh') {
    const identity = text('identity');
    const knownHosts = text('known_hosts');
    if (identity === undefined) return bad('InvalidSecret', `Secret ${secret} has no \`identity\`: an SSH URL needs ${SSH_KEYS}; ${has}`);
    if (!/-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----/.test(identity)) return bad('InvalidSecret', `\`identity\` of Secret ${secret} is not a PEM or OpenSSH private key`);
    if (/ENCRYPTED/.test(identity.split('\n').slice(0, 3).join('\n'))) return bad('InvalidSecret', `\`identity\` of Secret ${secret} is encrypted; use a key without a passphrase`);
    if (knownHosts === undefined || !knownHosts.split('\n').some((l) => l.trim() !== '' && !l.trim().startsWith('#'))) {
      return bad('MissingKnownHosts', `Secret ${secret} has no \`known_hosts\`: host keys are always checked, so add the server's keys (e.g. from \`ssh-keyscan HOST\`, checked against what the host publishes) as \`known_hosts\``);
    }
    return { ok: true, credentials: { kind: 'ssh', identity, knownHosts } };
  }
  return bad('SecretRefNotApplicable', `spec.git.secretRef (Secret ${secret}) applies to https:// and SSH URLs only, not to ${scheme === 'file' ? 'file://' : 'this'} URL`);
}

/** The credentials of `spec.git.secretRef` from the API server: NotFound and Forbidden are problems to show; other errors throw. */
export async function gitCredentialsFor(api: CrApi, namespace: string, secretName: string, url: string): Promise<CredentialsResult> {
  const secret = `${namespace}/${secretName}`;
  let got: { data?: Record<string, string> };
  try {
    got = await api.request<{ data?: Record<string, string> }>('GET', `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(secretName)}`);
  } catch (e) {
    const code = (e as { code?: unknown }).code;
    if (code === 404) return { ok: false, reason: 'SecretNotFound', message: `Secret ${secret} (spec.git.secretRef) not found; it is read again every interval` };
    if (code === 403) return { ok: false, reason: 'SecretForbidden', message: `the operator may not get Secret ${secret} (403 Forbidden); its ClusterRole needs get on secrets` };
    throw e;
  }
  return credentialsFromSecret(url, secret, got.data);
}

// ---------------------------------------------------------------------------------------------
// handing them to git

/** What one git process gets on top of its usual environment and arguments. */
export interface GitAuth {
  env: Record<string, string>;
  /** `-c` options, placed before the subcommand; never a secret. */
  args: string[];
}

/** The variables the askpass script answers from. */
export const ASKPASS_USERNAME_ENV = 'SYSTEMPROMPT_GIT_USERNAME';
export const ASKPASS_PASSWORD_ENV = 'SYSTEMPROMPT_GIT_PASSWORD';

/** git runs GIT_ASKPASS with the prompt ("Username for 'https://…': ", "Password for …") as its one argument. */
export const ASKPASS_SCRIPT = `#!/bin/sh
# systemprompt: answers git's credential prompts from variables set on that one git process.
case "$1" in
  Username*) printf '%s\\n' "$${ASKPASS_USERNAME_ENV}" ;;
  *) printf '%s\\n' "$${ASKPASS_PASSWORD_ENV}" ;;
esac
`;

/** A path as one word of a POSIX shell command line (GIT_SSH_COMMAND is run by the shell). */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/**
 * The files, environment and `-c` options that give one git process `creds` (pure: nothing is
 * written). `askpass` is the script's path, `dir` the fresh private folder for this fetch's files.
 */
export function gitAuthPlan(creds: GitCredentials, where: { askpass: string; dir: string }): { auth: GitAuth; files: Array<{ path: string; content: string }> } {
  // No credential helper from a HOME config may answer for, or store, what the Secret holds.
  const args = ['-c', 'credential.helper='];
  if (creds.kind === 'https') {
    const files: Array<{ path: string; content: string }> = [];
    const env: Record<string, string> = {};
    if (creds.basic) {
      env.GIT_ASKPASS = where.askpass;
      env[ASKPASS_USERNAME_ENV] = creds.basic.username;
      env[ASKPASS_PASSWORD_ENV] = creds.basic.password;
    }
    if (creds.caCert !== undefined) {
      const ca = path.join(where.dir, 'ca.crt');
      files.push({ path: ca, content: withNewline(creds.caCert) });
      env.GIT_SSL_CAINFO = ca;
    }
    return { auth: { env, args }, files };
  }
  const identity = path.join(where.dir, 'identity');
  const knownHosts = path.join(where.dir, 'known_hosts');
  const ssh = [
    'ssh',
    '-F', '/dev/null', // no ssh_config from the machine or HOME
    '-i', shellQuote(identity),
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${shellQuote(knownHosts)}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
  ].join(' ');
  return {
    auth: { env: { GIT_SSH_COMMAND: ssh, GIT_SSH_VARIANT: 'ssh' }, args },
    files: [
      { path: identity, content: withNewline(creds.identity) }, // ssh refuses a key without its final newline
      { path: knownHosts, content: withNewline(creds.knownHosts) },
    ],
  };
}

const withNewline = (s: string): string => (s.endsWith('\n') ? s : `${s}\n`);

/** The private folder under the cache root: the askpass script, and each fetch's temporary folder. */
export const credentialsDir = (cacheRoot: string): string => path.join(cacheRoot, '.credentials');

/**
 * Run `fetch` with `creds` handed to git (or with nothing extra when there are none); the fetch's
 * files are deleted afterwards, whether it succeeded or not.
 */
export async function withGitAuth<T>(cacheRoot: string, creds: GitCredentials | undefined, fetch: (auth: GitAuth) => Promise<T>): Promise<T> {
  if (!creds) return fetch({ env: {}, args: [] });
  const base = credentialsDir(cacheRoot);
  await mkdir(base, { recursive: true, mode: 0o700 });
  await chmod(base, 0o700);
  const askpass = path.join(base, 'askpass.sh');
  await ensureFile(askpass, ASKPASS_SCRIPT, 0o700);
  const dir = await mkdtemp(path.join(base, 'fetch-')); // 0700
  try {
    const { auth, files } = gitAuthPlan(creds, { askpass, dir });
    for (const f of files) await writeFile(f.path, f.content, { mode: 0o600, flag: 'wx' });
    return await fetch(auth);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Write `content` at `file` with `mode` unless it is there already; through a rename, so no reader sees half a file. */
async function ensureFile(file: string, content: string, mode: number): Promise<void> {
  const same = await readFile(file, 'utf8').then((c) => c === content, () => false);
  if (same && ((await stat(file)).mode & 0o777) === mode) return;
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, content, { mode });
  await chmod(tmp, mode);
  await rename(tmp, file);
}

/** `text` with every secret value of `creds` replaced (should git ever echo one). */
export function scrubSecrets(text: string, creds: GitCredentials | undefined): string {
  if (!creds) return text;
  const values = creds.kind === 'https' ? [creds.basic?.password] : [creds.identity.trim()];
  let out = text;
  for (const v of values) if (v && v.length >= 4) out = out.split(v).join('***');
  return out;
}
