import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderEnv, shellQuote } from '../../src/dev/env.js';
import { DEFAULT_PORTS } from '../../src/dev/ports.js';
import type { StackState } from '../../src/dev/state.js';

function state(dir: string): StackState {
  return {
    version: 1,
    stackDir: dir,
    ports: DEFAULT_PORTS,
    postgres: { pid: 1, url: 'postgres://systemprompt@127.0.0.1:15432/postgres', user: 'systemprompt', passwordFile: join(dir, 'secrets', 'pg pw'), dataDir: join(dir, 'pg') },
    keycloak: { pid: 2, url: 'http://localhost:18080', adminConsoleUrl: 'http://localhost:18080/admin/', healthUrl: 'http://127.0.0.1:19000/health/ready', user: 'admin', passwordFile: join(dir, 'secrets', "kc'pw"), version: '26.5.6' },
    kube: { pids: { etcd: 3, apiserver: 4, controllerManager: 5 }, server: 'https://127.0.0.1:16443', kubeconfig: join(dir, 'kube', 'admin.kubeconfig'), context: 'systemprompt-dev', etcdUrl: 'http://127.0.0.1:12379', binary: '/x/kube', kubectl: join(dir, 'bin', 'kubectl') },
  };
}

describe('shellQuote', () => {
  it('leaves plain words alone and single-quotes the rest', () => {
    expect(shellQuote('/a/b-c_d.e')).toBe('/a/b-c_d.e');
    expect(shellQuote('a b')).toBe("'a b'");
    expect(shellQuote("it's")).toBe(`'it'\\''s'`);
  });
});

describe('renderEnv', () => {
  it('prints the DESIGN §2 variables and never a secret value', () => {
    const text = renderEnv(state('/s'));
    expect(text).toContain('export SYSTEMPROMPT_KEYCLOAK_URL=http://localhost:18080\n');
    expect(text).toContain('export SYSTEMPROMPT_KEYCLOAK_USER=admin\n');
    expect(text).toContain(`export SYSTEMPROMPT_KEYCLOAK_PASSWORD="$(cat '/s/secrets/kc'\\''pw')"`);
    expect(text).toContain('export KUBECONFIG=/s/kube/admin.kubeconfig\n');
    expect(text).toContain(`export SYSTEMPROMPT_POSTGRES_URL="postgres://systemprompt:$(cat '/s/secrets/pg pw')@127.0.0.1:15432/postgres"`);
  });

  it('evaluates in a POSIX shell to the secret values', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-env-'));
    const s = state(dir);
    execFileSync('mkdir', ['-p', join(dir, 'secrets')]);
    writeFileSync(s.keycloak!.passwordFile, 'kc-Secret_1');
    writeFileSync(s.postgres!.passwordFile, 'pg-Secret_2');
    const script = `${renderEnv(s)}printf '%s|%s|%s' "$SYSTEMPROMPT_KEYCLOAK_PASSWORD" "$SYSTEMPROMPT_POSTGRES_URL" "$KUBECONFIG"`;
    const out = execFileSync('sh', ['-c', `eval "$(cat)"`], { input: script, encoding: 'utf8' });
    expect(out).toBe(`kc-Secret_1|postgres://systemprompt:pg-Secret_2@127.0.0.1:15432/postgres|${s.kube!.kubeconfig}`);
  });

  it("shows the second PostgreSQL server's URL as a comment only: its variable is named after a server of postgres.servers", () => {
    const s: StackState = { ...state('/s'), postgres2: { pid: 6, url: 'postgres://systemprompt@127.0.0.1:15433/postgres', user: 'systemprompt', passwordFile: '/s/secrets/pg2', dataDir: '/s/pg2' } };
    const text = renderEnv(s);
    expect(text).toContain(`# export SYSTEMPROMPT_POSTGRES_URL_<NAME>="postgres://systemprompt:$(cat /s/secrets/pg2)@127.0.0.1:15433/postgres"\n`);
    expect(text.split('\n').filter((l) => l.startsWith('export ')).length).toBe(5);
  });

  it("exports the stack's Redis as SYSTEMPROMPT_REDIS_URL, its password read at evaluation", () => {
    const dir = mkdtempSync(join(tmpdir(), 'sp-env-'));
    const s: StackState = { ...state(dir), redis: { pid: 7, url: 'redis://127.0.0.1:16379', user: 'default', passwordFile: join(dir, 'secrets', 'redis pw'), configFile: join(dir, 'redis', 'redis.conf') } };
    const text = renderEnv(s);
    expect(text).toContain(`export SYSTEMPROMPT_REDIS_URL="redis://default:$(cat '${dir}/secrets/redis pw')@127.0.0.1:16379"\n`);
    execFileSync('mkdir', ['-p', join(dir, 'secrets')]);
    for (const f of [s.keycloak!.passwordFile, s.postgres!.passwordFile]) writeFileSync(f, 'other');
    writeFileSync(s.redis!.passwordFile, 'rd-Secret_3');
    const out = execFileSync('sh', ['-c', `eval "$(cat)"`], { input: `${text}printf '%s' "$SYSTEMPROMPT_REDIS_URL"`, encoding: 'utf8' });
    expect(out).toBe('redis://default:rd-Secret_3@127.0.0.1:16379');
    expect(text).not.toContain('rd-Secret_3');
  });

  it('prints nothing for components that are not recorded', () => {
    expect(renderEnv({ version: 1, stackDir: '/s', ports: DEFAULT_PORTS })).toBe('');
  });
});
