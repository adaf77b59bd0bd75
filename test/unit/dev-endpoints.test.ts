import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SystemPromptError } from '../../src/errors.js';
import { devStackEndpoints } from '../../src/dev/endpoints.js';
import { postgresServerUrls, postgresUrlVariable, resolveEndpoints as resolve, withPassword, type Endpoints } from '../../src/targets/endpoints.js';

const resolveEndpoints = (env: NodeJS.ProcessEnv, deps: Parameters<typeof devStackEndpoints>[1] = {}): Promise<Endpoints> => resolve(env, (e) => devStackEndpoints(e, deps));
import { stackPaths } from '../../src/dev/paths.js';
import { DEFAULT_PORTS } from '../../src/dev/ports.js';
import { writeSecret } from '../../src/dev/secrets.js';
import { writeState } from '../../src/dev/state.js';

const fullEnv = {
  SYSTEMPROMPT_KEYCLOAK_URL: 'https://kc.example',
  SYSTEMPROMPT_KEYCLOAK_USER: 'root',
  SYSTEMPROMPT_KEYCLOAK_PASSWORD: 'pw',
  KUBECONFIG: '/k/config',
  SYSTEMPROMPT_POSTGRES_URL: 'postgres://a:b@db/postgres',
};

describe('resolveEndpoints', () => {
  it('takes the environment when its variables are set', async () => {
    const e = await resolveEndpoints(fullEnv);
    expect(e).toEqual({ keycloak: { url: 'https://kc.example', username: 'root', password: 'pw' }, kubeconfigPath: '/k/config', postgresUrl: 'postgres://a:b@db/postgres', source: 'env' });
  });

  it('takes a confidential client instead of an admin user, and the default kubeconfig rules without KUBECONFIG', async () => {
    const e = await resolveEndpoints({ SYSTEMPROMPT_KEYCLOAK_URL: 'https://kc.example', SYSTEMPROMPT_KEYCLOAK_CLIENT_ID: 'sp', SYSTEMPROMPT_KEYCLOAK_CLIENT_SECRET: 's', SYSTEMPROMPT_POSTGRES_URL: 'postgres://a:b@db/postgres' });
    expect(e).toEqual({ keycloak: { url: 'https://kc.example', clientId: 'sp', clientSecret: 's' }, postgresUrl: 'postgres://a:b@db/postgres', source: 'env' });
    const half = await resolveEndpoints({ SYSTEMPROMPT_KEYCLOAK_URL: 'https://kc.example', SYSTEMPROMPT_KEYCLOAK_CLIENT_ID: 'sp', SYSTEMPROMPT_POSTGRES_URL: 'postgres://a:b@db/postgres' }).catch((x: unknown) => x);
    expect((half as Error).message).toMatch(/SYSTEMPROMPT_KEYCLOAK_CLIENT_SECRET is not set/);
  });

  it('names the missing variables when the environment is half set', async () => {
    const err = await resolveEndpoints({ ...fullEnv, SYSTEMPROMPT_KEYCLOAK_PASSWORD: undefined, KUBECONFIG: '' }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(SystemPromptError);
    expect((err as Error).message).toMatch(/SYSTEMPROMPT_KEYCLOAK_PASSWORD is not set/);
  });

  it('falls back to the dev stack, reading its secret files, and ignores a stray KUBECONFIG', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-stack-'));
    const env = { SYSTEMPROMPT_STACK_DIR: dir, KUBECONFIG: '/somewhere/else' };
    const p = stackPaths(env);
    await writeSecret(p.keycloak.passwordFile, 'kcpw');
    await writeSecret(p.postgres.passwordFile, 'pg-pw_1');
    await writeState(p.stateFile, {
      version: 1,
      stackDir: dir,
      ports: DEFAULT_PORTS,
      postgres: { pid: 1, url: 'postgres://systemprompt@127.0.0.1:15432/postgres', user: 'systemprompt', passwordFile: p.postgres.passwordFile, dataDir: p.postgres.dataDir },
      keycloak: { pid: 2, url: 'http://localhost:18080', adminConsoleUrl: '', healthUrl: '', user: 'admin', passwordFile: p.keycloak.passwordFile, version: '26.5.6' },
      kube: { pids: { etcd: 3, apiserver: 4, controllerManager: 5 }, server: 'https://127.0.0.1:16443', kubeconfig: p.kube.kubeconfig, context: 'systemprompt-dev', etcdUrl: '', binary: '', kubectl: '' },
    });
    expect(await resolveEndpoints(env, { stoppedComponents: async () => [] })).toEqual({
      keycloak: { url: 'http://localhost:18080', username: 'admin', password: 'kcpw' },
      kubeconfigPath: p.kube.kubeconfig,
      context: 'systemprompt-dev',
      postgresUrl: 'postgres://systemprompt:pg-pw_1@127.0.0.1:15432/postgres',
      source: 'dev-stack',
    });
    // The same state with its processes gone: no targets, and the hint says what to do.
    const err = await resolveEndpoints(env).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(SystemPromptError);
    expect((err as Error).message).toMatch(/is not running \(postgres, keycloak, kube down\)/);
    expect((err as SystemPromptError).hint).toMatch(/systemprompt dev up/);
  });

  it("offers the stack's second PostgreSQL server when it runs, and only then", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-stack2-'));
    const env = { SYSTEMPROMPT_STACK_DIR: dir };
    const p = stackPaths(env);
    await writeSecret(p.keycloak.passwordFile, 'kcpw');
    await writeSecret(p.postgres.passwordFile, 'pw1');
    await writeSecret(p.postgres2.passwordFile, 'pw2');
    await writeState(p.stateFile, {
      version: 1,
      stackDir: dir,
      ports: DEFAULT_PORTS,
      postgres: { pid: 1, url: 'postgres://systemprompt@127.0.0.1:15432/postgres', user: 'systemprompt', passwordFile: p.postgres.passwordFile, dataDir: p.postgres.dataDir },
      postgres2: { pid: 6, url: 'postgres://systemprompt@127.0.0.1:15433/postgres', user: 'systemprompt', passwordFile: p.postgres2.passwordFile, dataDir: p.postgres2.dataDir },
      keycloak: { pid: 2, url: 'http://localhost:18080', adminConsoleUrl: '', healthUrl: '', user: 'admin', passwordFile: p.keycloak.passwordFile, version: '26.5.6' },
      kube: { pids: { etcd: 3, apiserver: 4, controllerManager: 5 }, server: 'https://127.0.0.1:16443', kubeconfig: p.kube.kubeconfig, context: 'systemprompt-dev', etcdUrl: '', binary: '', kubectl: '' },
    });
    const e = await resolveEndpoints(env, { stoppedComponents: async () => [] });
    expect(e.postgresMore).toEqual(['postgres://systemprompt:pw2@127.0.0.1:15433/postgres']);
    // postgres.servers by position, whatever the names.
    expect(postgresServerUrls(e, ['eu', 'us'])).toEqual([
      { name: 'eu', url: 'postgres://systemprompt:pw1@127.0.0.1:15432/postgres' },
      { name: 'us', url: 'postgres://systemprompt:pw2@127.0.0.1:15433/postgres' },
    ]);
    const three = (() => { try { postgresServerUrls(e, ['a', 'b', 'c']); } catch (x) { return x as SystemPromptError; } })();
    expect(three?.message).toMatch(/lists 3 PostgreSQL servers, and the local stack runs 2: no server for c/);
    expect(three?.hint).toContain('SYSTEMPROMPT_POSTGRES_URL_C');
    // The second server down: one server is offered, and the rest of the stack still serves.
    const one = await resolveEndpoints(env, { stoppedComponents: async () => ['postgres2'] });
    expect(one.postgresMore).toBeUndefined();
    expect(() => postgresServerUrls(one, ['a', 'b'])).toThrow(/the local stack runs 1: no server for b/);
  });

  it('tells the user to run dev up when there is neither', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-none-'));
    const err = await resolveEndpoints({ SYSTEMPROMPT_STACK_DIR: dir }).catch((x: unknown) => x);
    expect(err).toBeInstanceOf(SystemPromptError);
    expect((err as SystemPromptError).hint).toMatch(/systemprompt dev up/);
  });
});

describe('withPassword', () => {
  it('escapes what a URL needs escaped', () => {
    expect(withPassword('postgres://u@h:1/d', 'a/b@c')).toBe('postgres://u:a%2Fb%40c@h:1/d');
  });
});

describe('postgresServerUrls from the environment', () => {
  const env = { ...fullEnv, SYSTEMPROMPT_POSTGRES_URL_SECOND_EU: 'postgres://a:b@db2/postgres' };

  it('names each server by its variable, the first falling back to SYSTEMPROMPT_POSTGRES_URL', async () => {
    expect(postgresUrlVariable('second-eu')).toBe('SYSTEMPROMPT_POSTGRES_URL_SECOND_EU');
    const e = await resolveEndpoints(env);
    expect(e.postgresNamed).toEqual({ SECOND_EU: 'postgres://a:b@db2/postgres' });
    expect(postgresServerUrls(e, ['main', 'second-eu'])).toEqual([
      { name: 'main', url: 'postgres://a:b@db/postgres' },
      { name: 'second-eu', url: 'postgres://a:b@db2/postgres' },
    ]);
    // A variable of the first server's own name wins over SYSTEMPROMPT_POSTGRES_URL: reordering the list needs no change.
    const named = await resolveEndpoints({ ...env, SYSTEMPROMPT_POSTGRES_URL_MAIN: 'postgres://a:b@db1/postgres' });
    expect(postgresServerUrls(named, ['second-eu', 'main'])).toEqual([
      { name: 'second-eu', url: 'postgres://a:b@db2/postgres' },
      { name: 'main', url: 'postgres://a:b@db1/postgres' },
    ]);
  });

  it('names every missing variable, and never prints a URL', async () => {
    const e = await resolveEndpoints(env);
    let err: SystemPromptError | undefined;
    try {
      postgresServerUrls(e, ['main', 'second-eu', 'third', 'fourth']);
    } catch (x) {
      err = x as SystemPromptError;
    }
    expect(err).toBeInstanceOf(SystemPromptError);
    expect(err!.message).toBe('no admin URL for PostgreSQL servers third, fourth of postgres.servers: SYSTEMPROMPT_POSTGRES_URL_THIRD, SYSTEMPROMPT_POSTGRES_URL_FOURTH are not set');
    expect(err!.hint).toMatch(/set SYSTEMPROMPT_POSTGRES_URL_THIRD, SYSTEMPROMPT_POSTGRES_URL_FOURTH/);
    expect(`${err!.message} ${err!.hint}`).not.toContain('a:b@');
  });

  it('refuses two servers at one address', async () => {
    const e = await resolveEndpoints({ ...fullEnv, SYSTEMPROMPT_POSTGRES_URL_TWO: 'postgres://x:y@db:5432/other' });
    expect(() => postgresServerUrls(e, ['one', 'two'])).toThrow(/servers one and two of postgres.servers have the same address \(db:5432\)/);
  });

  it('counts a server variable alone as targets from the environment (then the rest must be set)', async () => {
    const err = await resolveEndpoints({ SYSTEMPROMPT_POSTGRES_URL_SECOND: 'postgres://a:b@db2/postgres' }).catch((x: unknown) => x);
    expect((err as Error).message).toMatch(/SYSTEMPROMPT_KEYCLOAK_URL, SYSTEMPROMPT_KEYCLOAK_USER, SYSTEMPROMPT_KEYCLOAK_PASSWORD, SYSTEMPROMPT_POSTGRES_URL are not set/);
  });
});
