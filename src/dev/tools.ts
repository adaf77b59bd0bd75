import { access, readdir, readFile, realpath } from 'node:fs/promises';
import { constants } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { MissingToolError } from '../errors.js';
import { run } from './process.js';

/** The first executable named `name` on PATH, or undefined. */
export async function which(name: string, env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    const p = join(dir, name);
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** Major version from a JDK `release` file (`JAVA_VERSION="25.0.1"`, `"1.8.0_392"`). */
export function javaMajorFromRelease(release: string): number | undefined {
  const m = /^JAVA_VERSION="([^"]+)"/m.exec(release);
  if (!m) return undefined;
  const parts = m[1]!.split(/[.+_-]/);
  const first = Number(parts[0]);
  if (first === 1) return Number(parts[1]);
  return Number.isFinite(first) ? first : undefined;
}

export interface Jdk {
  home: string;
  major: number;
}

async function jdkAt(home: string): Promise<Jdk | undefined> {
  try {
    await access(join(home, 'bin', 'java'), constants.X_OK);
    const major = javaMajorFromRelease(await readFile(join(home, 'release'), 'utf8'));
    return major === undefined ? undefined : { home, major };
  } catch {
    return undefined;
  }
}

/**
 * A JDK of at least `minMajor`: $JAVA_HOME if it qualifies, then the newest under /usr/lib/jvm,
 * then the one `java` on PATH belongs to.
 */
export async function findJdk(minMajor: number, env: NodeJS.ProcessEnv = process.env, jvmRoot = '/usr/lib/jvm'): Promise<Jdk> {
  const candidates: Jdk[] = [];
  if (env.JAVA_HOME) {
    const j = await jdkAt(env.JAVA_HOME);
    if (j && j.major >= minMajor) return j;
  }
  for (const d of await readdir(jvmRoot).catch(() => [] as string[])) {
    const j = await jdkAt(join(jvmRoot, d));
    if (j) candidates.push(j);
  }
  const onPath = await which('java', env);
  if (onPath) {
    const j = await jdkAt(dirname(dirname(await realpath(onPath))));
    if (j) candidates.push(j);
  }
  const best = candidates.filter((c) => c.major >= minMajor).sort((a, b) => b.major - a.major)[0];
  if (best) return best;
  const found = candidates.map((c) => `${c.home} (${c.major})`).join(', ') || 'none';
  throw new MissingToolError(`Keycloak needs a JDK ${minMajor} or newer; found: ${found}`, {
    hint: `install one (e.g. Debian: apt-get install openjdk-${minMajor}-jdk-headless, or a Temurin ${minMajor}+ JDK) or set JAVA_HOME to it`,
  });
}

/** Parses `go version` output: [major, minor]. */
export function parseGoVersion(text: string): [number, number] | undefined {
  const m = /go(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** The `go` command, at least 1.24 (the control plane module's `go` line). */
export async function findGo(env: NodeJS.ProcessEnv = process.env): Promise<{ path: string; version: string }> {
  const path = (await which('go', env)) ?? (await access('/usr/local/go/bin/go', constants.X_OK).then(() => '/usr/local/go/bin/go', () => undefined));
  const hint = 'install Go 1.24 or newer (https://go.dev/doc/install, or Debian: apt-get install golang-go if recent enough) and put `go` on PATH';
  if (!path) throw new MissingToolError('building the Kubernetes control plane needs Go, and `go` is not on PATH', { hint });
  const r = await run(path, ['version'], { env });
  const v = parseGoVersion(r.stdout);
  if (!v || v[0] < 1 || (v[0] === 1 && v[1] < 24)) throw new MissingToolError(`Go 1.24 or newer is needed; ${path} says: ${r.stdout.trim() || r.stderr.trim()}`, { hint });
  return { path, version: r.stdout.trim() };
}

/** The `mvn` command (needed once, to download Keycloak). */
export async function findMaven(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const path = await which('mvn', env);
  if (!path) {
    throw new MissingToolError('downloading Keycloak needs Maven, and `mvn` is not on PATH', {
      hint: 'install Maven (Debian: apt-get install maven); it is needed only for the first download',
    });
  }
  return path;
}

/** Compares dotted numeric versions. */
function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/** The `redis-server` command (Debian's `redis-server` package: /usr/bin/redis-server). */
export async function findRedisServer(env: NodeJS.ProcessEnv = process.env): Promise<string> {
  const path = (await which('redis-server', env)) ?? (await access('/usr/bin/redis-server', constants.X_OK).then(() => '/usr/bin/redis-server', () => undefined));
  if (!path) {
    throw new MissingToolError('the local stack runs a Redis, and `redis-server` was not found', {
      hint: 'install it: `bash scripts/install-system-deps.sh` (Debian: apt-get install redis-server)',
    });
  }
  return path;
}

/** PostgreSQL server binaries (initdb, pg_ctl, postgres): the newest /usr/lib/postgresql/N/bin, else PATH. */
export async function findPostgresBin(env: NodeJS.ProcessEnv = process.env, root = '/usr/lib/postgresql'): Promise<string> {
  const versions = (await readdir(root).catch(() => [] as string[])).filter((v) => /^\d+(\.\d+)*$/.test(v)).sort(compareVersions).reverse();
  for (const v of versions) {
    const dir = join(root, v, 'bin');
    const ok = await access(join(dir, 'initdb'), constants.X_OK).then(() => true, () => false);
    if (ok) return dir;
  }
  const initdb = await which('initdb', env);
  if (initdb) return dirname(await realpath(initdb));
  throw new MissingToolError('PostgreSQL server binaries (initdb, pg_ctl) were not found', {
    hint: 'install them: `bash scripts/install-system-deps.sh` (Debian: apt-get install postgresql postgresql-client)',
  });
}
