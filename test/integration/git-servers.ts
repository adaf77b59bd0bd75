import { execFileSync, spawn } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import ssh2, { type Connection, type ParsedKey } from 'ssh2';

/**
 * Real git servers for the ConfigSource credentials test, on 127.0.0.1 with random ports:
 * HTTPS (a self-signed certificate, Basic auth in front of git-http-backend as CGI) and SSH
 * (ssh2, one accepted client key, `git-upload-pack` on exec). Both serve the bare repositories
 * under `projectRoot`, by path: `https://127.0.0.1:PORT/config.git`, `ssh://git@127.0.0.1:PORT/config.git`.
 */

const HTTP_BACKEND = '/usr/lib/git-core/git-http-backend';

/** A bare repository at `origin` (created) and a clone of it at `work`, on branch main: commit files, push, get the revision. */
export interface GitWorkTree {
  /** git in the work tree. */
  git(...args: string[]): string;
  /** Write `files` (path relative to the work tree -> text), commit them all, push; the new revision. */
  commit(files: Record<string, string>, message: string): string;
}

export function gitWorkTree(origin: string, work: string): GitWorkTree {
  execFileSync('git', ['init', '--quiet', '--bare', '--initial-branch=main', origin], { stdio: 'pipe' });
  execFileSync('git', ['clone', '--quiet', origin, work], { stdio: 'pipe' });
  const git = (...args: string[]): string => execFileSync('git', ['-c', 'user.name=t', '-c', 'user.email=t@example.com', ...args], { cwd: work, encoding: 'utf8', stdio: 'pipe' }).trim();
  git('symbolic-ref', 'HEAD', 'refs/heads/main');
  return {
    git,
    commit(files, message) {
      for (const [rel, text] of Object.entries(files)) {
        mkdirSync(path.dirname(path.join(work, rel)), { recursive: true });
        writeFileSync(path.join(work, rel), text);
      }
      git('add', '.');
      git('commit', '--quiet', '-m', message);
      git('push', '--quiet', 'origin', 'main');
      return git('rev-parse', 'HEAD');
    },
  };
}

/** A self-signed certificate for IP 127.0.0.1 (it is its own CA), made with the openssl CLI in `dir`. */
export function selfSignedCert(dir: string, name = 'server'): { key: string; cert: string } {
  const key = path.join(dir, `${name}.key`);
  const cert = path.join(dir, `${name}.crt`);
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'pipe' });
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

/** An ed25519 key pair made with ssh-keygen in `dir`: the private key (OpenSSH format) and the `.pub` line. */
export function sshKeygen(dir: string, name: string): { privateKey: string; publicKey: string } {
  const file = path.join(dir, name);
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', name, '-f', file], { stdio: 'pipe' });
  return { privateKey: readFileSync(file, 'utf8'), publicKey: readFileSync(`${file}.pub`, 'utf8').trim() };
}

export interface GitHttpsServer {
  port: number;
  /** The users that sent Basic credentials, one per request that carried them (right or wrong). */
  users: string[];
  close(): Promise<void>;
}

/** HTTPS with Basic auth for `accounts` (user -> password); git-http-backend behind it. */
export async function startGitHttpsServer(opts: { projectRoot: string; tls: { key: string; cert: string }; accounts: Record<string, string> }): Promise<GitHttpsServer> {
  const users: string[] = [];
  const server = https.createServer({ key: opts.tls.key, cert: opts.tls.cert }, (req, res) => {
    const basic = /^Basic (\S+)$/.exec(req.headers.authorization ?? '');
    const [user, ...rest] = basic ? Buffer.from(basic[1]!, 'base64').toString('utf8').split(':') : [];
    if (user !== undefined) users.push(user);
    const expected = user === undefined ? undefined : opts.accounts[user];
    if (expected === undefined || !sameText(rest.join(':'), expected)) {
      req.resume();
      res.writeHead(401, { 'WWW-Authenticate': 'Basic realm="git"', 'Content-Type': 'text/plain' }).end('authentication required\n');
      return;
    }
    const url = new URL(req.url ?? '/', 'https://127.0.0.1');
    const header = (name: string): Record<string, string> => {
      const v = req.headers[name];
      return typeof v === 'string' ? { [`HTTP_${name.toUpperCase().replace(/-/g, '_')}`]: v } : {};
    };
    const cgi = spawn(HTTP_BACKEND, [], {
      env: {
        PATH: process.env.PATH,
        GIT_PROJECT_ROOT: opts.projectRoot,
        GIT_HTTP_EXPORT_ALL: '1',
        PATH_INFO: decodeURIComponent(url.pathname),
        QUERY_STRING: url.search.replace(/^\?/, ''),
        REQUEST_METHOD: req.method ?? 'GET',
        CONTENT_TYPE: req.headers['content-type'] ?? '',
        ...(req.headers['content-length'] ? { CONTENT_LENGTH: req.headers['content-length'] } : {}),
        REMOTE_USER: user!,
        REMOTE_ADDR: req.socket.remoteAddress ?? '',
        ...header('git-protocol'),
        ...header('content-encoding'),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let stderr = '';
    cgi.stdout.on('data', (b: Buffer) => out.push(b));
    cgi.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    cgi.stdin.on('error', () => {}); // the backend may answer before reading everything
    cgi.on('error', (e) => res.writeHead(500).end(String(e)));
    cgi.on('close', (code) => {
      const all = Buffer.concat(out);
      const m = /\r?\n\r?\n/.exec(all.toString('latin1'));
      if (!m) {
        res.writeHead(500, { 'Content-Type': 'text/plain' }).end(`git-http-backend exited ${code}: ${stderr}`);
        return;
      }
      let status = 200;
      const headers: Record<string, string> = {};
      for (const line of all.subarray(0, m.index).toString('latin1').split(/\r?\n/)) {
        const colon = line.indexOf(':');
        if (colon < 0) continue;
        const name = line.slice(0, colon).trim();
        const value = line.slice(colon + 1).trim();
        if (name.toLowerCase() === 'status') status = Number.parseInt(value, 10);
        else headers[name] = value;
      }
      res.writeHead(status, headers).end(all.subarray(m.index + m[0].length));
    });
    req.pipe(cgi.stdin);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    users,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export interface GitSshServer {
  port: number;
  /** The host key's public line (`ssh-ed25519 AAAA… comment`). */
  hostPublicKey: string;
  /** The commands clients asked to run, after authenticating. */
  execs: string[];
  close(): Promise<void>;
}

/** SSH as user `git` with the one `clientPublicKey`; runs `git-upload-pack '<path>'` on the repositories under `projectRoot`. */
export async function startGitSshServer(opts: { projectRoot: string; dir: string; clientPublicKey: string }): Promise<GitSshServer> {
  const host = sshKeygen(opts.dir, 'ssh_host_ed25519_key');
  const allowed = onlyKey(ssh2.utils.parseKey(opts.clientPublicKey));
  const execs: string[] = [];
  const clients = new Set<Connection>();
  const server = new ssh2.Server({ hostKeys: [host.privateKey] }, (client) => {
    clients.add(client);
    client.on('close', () => clients.delete(client));
    client.on('error', () => {}); // a client that gives up (a host key it does not trust) resets the connection
    client.on('authentication', (ctx) => {
      const key = ctx.key;
      const ok =
        ctx.method === 'publickey' &&
        ctx.username === 'git' &&
        key !== undefined &&
        key.algo === allowed.type &&
        sameBytes(key.data, allowed.getPublicSSH()) &&
        (!ctx.signature || (ctx.blob !== undefined && allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true));
      if (ok) ctx.accept();
      else ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        let gitProtocol: string | undefined;
        session.on('env', (accept, _reject, info) => {
          if (info.key === 'GIT_PROTOCOL') gitProtocol = info.val;
          accept?.();
        });
        session.on('exec', (accept, reject, info) => {
          execs.push(info.command);
          const m = /^git-upload-pack '([^']+)'$/.exec(info.command);
          const repo = m ? path.join(opts.projectRoot, path.normalize(`/${m[1]}`)) : undefined;
          if (!repo) return reject();
          const channel = accept();
          const child = spawn('git-upload-pack', ['--strict', repo], { env: { PATH: process.env.PATH, ...(gitProtocol ? { GIT_PROTOCOL: gitProtocol } : {}) }, stdio: ['pipe', 'pipe', 'pipe'] });
          child.stdin.on('error', () => {});
          channel.on('error', () => {});
          channel.pipe(child.stdin);
          child.stdout.pipe(channel, { end: false });
          child.stderr.pipe(channel.stderr, { end: false });
          child.on('close', (code) => {
            channel.exit(code ?? 1);
            channel.end();
          });
        });
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: server.address().port,
    hostPublicKey: host.publicKey,
    execs,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of clients) c.end();
        server.close(() => resolve());
      }),
  };
}

function onlyKey(k: ParsedKey | ParsedKey[] | Error): ParsedKey {
  if (k instanceof Error) throw k;
  const key = Array.isArray(k) ? k[0] : k;
  if (!key) throw new Error('no key parsed');
  return key;
}

const sameBytes = (a: Buffer, b: Buffer): boolean => a.length === b.length && timingSafeEqual(a, b);
const sameText = (a: string, b: string): boolean => sameBytes(Buffer.from(a), Buffer.from(b));
