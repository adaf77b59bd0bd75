import { homedir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One PostgreSQL cluster of the stack. */
export interface PostgresPaths {
  readonly dir: string;
  readonly dataDir: string;
  readonly socketDir: string;
  /** The product's admin login (`systemprompt`, not a superuser). */
  readonly passwordFile: string;
  /** The cluster's bootstrap superuser, used only by `dev up` to set up the admin login. */
  readonly superuserPasswordFile: string;
}

/** Every file and folder of the local stack. Pure: derived from the environment, no I/O. */
export interface StackPaths {
  /** Root of the stack's data: state file, secrets, logs, databases. */
  readonly stackDir: string;
  /** Downloads and builds shared by every stack on this machine. */
  readonly cacheDir: string;
  readonly stateFile: string;
  readonly lockFile: string;
  readonly secretsDir: string;
  readonly logsDir: string;
  readonly binDir: string;
  readonly postgres: PostgresPaths;
  /** The second PostgreSQL server, set up like the first (its own cluster, logins and passwords). */
  readonly postgres2: PostgresPaths;
  readonly keycloak: { readonly dir: string; readonly dbDir: string; readonly txLogDir: string; readonly passwordFile: string };
  /** The stack's Redis: its working folder (nothing is persisted there), its 0600 config file (which holds the password) and the password file. */
  readonly redis: { readonly dir: string; readonly configFile: string; readonly passwordFile: string };
  readonly kube: { readonly dir: string; readonly pkiDir: string; readonly etcdDir: string; readonly certDir: string; readonly kubeconfig: string; readonly controllerManagerKubeconfig: string };
}

function absolute(dir: string, cwd: string): string {
  return isAbsolute(dir) ? dir : resolve(cwd, dir);
}

/** `$SYSTEMPROMPT_STACK_DIR`, else `$XDG_STATE_HOME/systemprompt/stack`, else `~/.local/state/systemprompt/stack`. */
export function stackDirFrom(env: NodeJS.ProcessEnv, home = homedir(), cwd = process.cwd()): string {
  if (env.SYSTEMPROMPT_STACK_DIR) return absolute(env.SYSTEMPROMPT_STACK_DIR, cwd);
  const state = env.XDG_STATE_HOME ? absolute(env.XDG_STATE_HOME, cwd) : join(home, '.local', 'state');
  return join(state, 'systemprompt', 'stack');
}

/** `$SYSTEMPROMPT_CACHE_DIR`, else `$XDG_CACHE_HOME/systemprompt`, else `~/.cache/systemprompt`. */
export function cacheDirFrom(env: NodeJS.ProcessEnv, home = homedir(), cwd = process.cwd()): string {
  if (env.SYSTEMPROMPT_CACHE_DIR) return absolute(env.SYSTEMPROMPT_CACHE_DIR, cwd);
  const cache = env.XDG_CACHE_HOME ? absolute(env.XDG_CACHE_HOME, cwd) : join(home, '.cache');
  return join(cache, 'systemprompt');
}

export function stackPaths(env: NodeJS.ProcessEnv, home = homedir(), cwd = process.cwd()): StackPaths {
  const stackDir = stackDirFrom(env, home, cwd);
  const secretsDir = join(stackDir, 'secrets');
  const pg = join(stackDir, 'postgres');
  const kc = join(stackDir, 'keycloak');
  const kube = join(stackDir, 'kube');
  const pki = join(kube, 'pki');
  return {
    stackDir,
    cacheDir: cacheDirFrom(env, home, cwd),
    stateFile: join(stackDir, 'stack.json'),
    lockFile: join(stackDir, 'stack.lock'),
    secretsDir,
    logsDir: join(stackDir, 'logs'),
    binDir: join(stackDir, 'bin'),
    postgres: postgresPaths(pg, secretsDir, 'postgres'),
    postgres2: postgresPaths(join(stackDir, 'postgres-2'), secretsDir, 'postgres-2'),
    keycloak: { dir: kc, dbDir: join(kc, 'h2'), txLogDir: join(kc, 'transaction-logs'), passwordFile: join(secretsDir, 'keycloak-admin-password') },
    redis: { dir: join(stackDir, 'redis'), configFile: join(stackDir, 'redis', 'redis.conf'), passwordFile: join(secretsDir, 'redis-password') },
    kube: {
      dir: kube,
      pkiDir: pki,
      etcdDir: join(kube, 'etcd'),
      certDir: join(kube, 'apiserver-certs'),
      kubeconfig: join(pki, 'admin.kubeconfig'),
      controllerManagerKubeconfig: join(pki, 'controller-manager.kubeconfig'),
    },
  };
}

function postgresPaths(dir: string, secretsDir: string, prefix: string): PostgresPaths {
  return {
    dir,
    dataDir: join(dir, 'data'),
    socketDir: join(dir, 'run'),
    passwordFile: join(secretsDir, `${prefix}-admin-password`),
    superuserPasswordFile: join(secretsDir, `${prefix}-superuser-password`),
  };
}

/** The Go sources of the control plane, shipped with the package (`stack/kube`). */
export function kubeSourceDir(): string {
  return fileURLToPath(new URL('../../stack/kube/', import.meta.url));
}
