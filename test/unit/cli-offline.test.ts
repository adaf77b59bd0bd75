import { mkdtempSync, readFileSync, readdirSync, writeFileSync, mkdirSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { run } from '../../src/cli/main.js';
import { bufferIo } from '../helpers/io.js';
import { PROJECT_ROOT } from '../helpers/repo.js';

const sp = async (...args: string[]) => {
  const io = bufferIo(PROJECT_ROOT);
  const code = await run(['node', 'systemprompt', ...args], io);
  return { code, ...io };
};

describe('validate, build and plan --offline on the example', () => {
  it('validate exits 0', async () => {
    const r = await sp('validate', '--dir', PROJECT_ROOT);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('valid: 3 tenants');
  });

  it('plan --offline -o json prints one JSON document covering every example tenant', async () => {
    const r = await sp('plan', '--offline', '-o', 'json', '--dir', PROJECT_ROOT);
    expect(r.code).toBe(0);
    const plan = JSON.parse(r.stdout);
    for (const t of ['default', 'customer-a', 'customer-b']) {
      const kinds = new Set(plan.changes.filter((c: any) => c.tenant === t).map((c: any) => `${c.target}/${c.kind}`));
      for (const k of ['keycloak/Realm', 'keycloak/Client', 'keycloak/User', 'kubernetes/Namespace', 'kubernetes/ResourceQuota', 'kubernetes/NetworkPolicy', 'postgres/Database', 'postgres/Role']) {
        expect(kinds.has(k), `${t} ${k}`).toBe(true);
      }
    }
    expect(plan.summary.create).toBe(plan.changes.length);
  });

  it('plan --detailed-exitcode exits 2 when there are changes', async () => {
    expect((await sp('plan', '--offline', '--detailed-exitcode', '--dir', PROJECT_ROOT)).code).toBe(2);
  });

  it('plan --out saves the same plan it prints', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-plan-'));
    const file = path.join(dir, 'plan.json');
    const r = await sp('plan', '--offline', '-o', 'json', '--out', file, '--dir', PROJECT_ROOT);
    expect(JSON.parse(readFileSync(file, 'utf8'))).toEqual(JSON.parse(r.stdout));
    expect(r.stdout).toBe(readFileSync(file, 'utf8'));
    // Where the output takes bytes (the process's stdout), the saved file's bytes are copied as they are.
    const io = bufferIo(PROJECT_ROOT);
    const bytes: Buffer[] = [];
    const code = await run(['node', 'systemprompt', 'plan', '--offline', '-o', 'json', '--out', file, '--dir', PROJECT_ROOT], { ...io, out: (t) => io.out(t), err: (t) => io.err(t), outBytes: (b) => void bytes.push(Buffer.from(b)) });
    expect(code).toBe(0);
    expect(io.stdout).toBe('');
    expect(Buffer.concat(bytes).toString('utf8')).toBe(readFileSync(file, 'utf8'));
  });

  it('build writes realm JSON, Kubernetes YAML, SQL and cards per tenant, and refuses to clobber other folders', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-build-'));
    const out = path.join(dir, 'out');
    expect((await sp('build', '--dir', PROJECT_ROOT, '--out', out)).code).toBe(0);
    expect(readdirSync(path.join(out, 'customer-a')).sort()).toEqual(['agents', 'keycloak-realm.json', 'kubernetes.yaml', 'postgres.sql']);
    expect(JSON.parse(readFileSync(path.join(out, 'customer-a/keycloak-realm.json'), 'utf8')).realm).toBe('customer-a');
    expect((await sp('build', '--dir', PROJECT_ROOT, '--out', out)).code).toBe(0); // replaces its own output
    const precious = path.join(dir, 'precious');
    mkdirSync(precious);
    writeFileSync(path.join(precious, 'keep.txt'), 'x');
    const r = await sp('build', '--dir', PROJECT_ROOT, '--out', precious);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('refusing to replace it');
    expect(existsSync(path.join(precious, 'keep.txt'))).toBe(true);
  });

  it('a missing --dir is a clear error', async () => {
    const r = await sp('validate', '--dir', '/nonexistent/config');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('config directory /nonexistent/config does not exist');
  });

  it('an unknown option is a usage error', async () => {
    const r = await sp('plan', '--offlien');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("unknown option '--offlien'");
  });
});

describe('agent cards in the plan', () => {
  it('plan -o json carries each tenant\'s card per agent, pointed at the tenant realm', async () => {
    const r = await sp('plan', '--offline', '-o', 'json', '--dir', PROJECT_ROOT);
    const plan = JSON.parse(r.stdout);
    const card = plan.cards.find((c: any) => c.tenant === 'customer-a' && c.agent === 'welcome').card;
    expect(card.securitySchemes.oauth2.flows.authorizationCode.tokenUrl).toBe('http://localhost:8080/realms/customer-a/protocol/openid-connect/token');
    expect(plan.cards.map((c: any) => `${c.tenant}/${c.agent}`).sort()).toEqual(['customer-a/assistant', 'customer-a/welcome', 'customer-b/assistant', 'default/assistant', 'default/welcome']);
  });
});

describe('apply PLANFILE', () => {
  it('refuses an offline plan, and a plan made for other targets, before touching anything', async () => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-apply-'));
    const offline = path.join(dir, 'offline.json');
    await sp('plan', '--offline', '--out', offline, '--dir', PROJECT_ROOT);
    const r1 = await sp('apply', offline, '--dir', PROJECT_ROOT);
    expect(r1.code).toBe(1);
    expect(r1.stderr).toContain('is an offline plan; it cannot be applied');

    const other = path.join(dir, 'other.json');
    writeFileSync(other, JSON.stringify({ ...JSON.parse(readFileSync(offline, 'utf8')), offline: false }));
    const r2 = await sp('apply', other, '--target', 'kubernetes', '--dir', PROJECT_ROOT);
    expect(r2.code).toBe(1);
    expect(r2.stderr).toContain('was planned for kubernetes,postgres,keycloak; apply it with the same targets');

    const junk = path.join(dir, 'junk.json');
    writeFileSync(junk, '{"not":"a plan"}');
    const r3 = await sp('apply', junk, '--dir', PROJECT_ROOT);
    expect(r3.code).toBe(1);
    expect(r3.stderr).toContain('is not a plan saved by `systemprompt plan --out`');
  });
});

describe('postgres.servers on the command line', () => {
  const repo = (): string => {
    const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-pgservers-'));
    mkdirSync(path.join(dir, 'tenants'));
    writeFileSync(path.join(dir, 'systemprompt.yaml'), 'postgres:\n  servers:\n    - name: main\n    - name: second\n');
    for (const t of ['default', 'acme', 'globex']) writeFileSync(path.join(dir, 'tenants', `${t}.yaml`), `name: ${t}\n${t === 'globex' ? 'postgres: { server: main }\n' : ''}`);
    return dir;
  };
  const spEnv = async (env: NodeJS.ProcessEnv, ...args: string[]) => {
    const io = bufferIo(PROJECT_ROOT, env);
    const code = await run(['node', 'systemprompt', ...args], io);
    return { code, ...io };
  };
  const targets = {
    SYSTEMPROMPT_KEYCLOAK_URL: 'http://127.0.0.1:1',
    SYSTEMPROMPT_KEYCLOAK_USER: 'admin',
    SYSTEMPROMPT_KEYCLOAK_PASSWORD: 'pw',
    SYSTEMPROMPT_POSTGRES_URL: 'postgresql://admin:Secret-1@db-main:5432/postgres',
    KUBECONFIG: '/nonexistent/kubeconfig',
  };

  it('plan --offline shows where each new database goes, and each Secret points at its server', async () => {
    const dir = repo();
    const env = { ...targets, SYSTEMPROMPT_POSTGRES_URL_SECOND: 'postgresql://admin:Secret-2@db-second:6432/postgres' };
    const text = await spEnv(env, 'plan', '--offline', '--dir', dir);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('+ postgres   Database       second/tenant_default');
    expect(text.stdout).toContain('PostgreSQL servers: 3 new databases: tenant_acme on main (least loaded), tenant_default on second (least loaded), tenant_globex on main (pinned); 0 databases stay where they are.');
    const json = JSON.parse((await spEnv(env, 'plan', '--offline', '-o', 'json', '--dir', dir)).stdout);
    expect(json.placements.map((p: { database: string; server: string }) => `${p.database}@${p.server}`)).toEqual(['tenant_acme@main', 'tenant_default@second', 'tenant_globex@main']);
    expect(JSON.stringify(json)).not.toMatch(/Secret-[12]/);
    const out = path.join(dir, 'out');
    expect((await spEnv(env, 'build', '--dir', dir, '--out', out)).code).toBe(0);
    const yaml = readFileSync(path.join(out, 'default', 'kubernetes.yaml'), 'utf8');
    expect(yaml).toContain('DATABASE_URL: postgresql://tenant_default:${secret:postgres-password}@db-second:6432/tenant_default');
    expect(yaml).toContain('POSTGRES_SERVER: second');
    expect(readFileSync(path.join(out, 'default', 'postgres.sql'), 'utf8')).toContain("deletion_policy=retain server=second';");
  });

  it('a live plan without the URL of a listed server fails before it reads anything, naming the variable', async () => {
    const r = await spEnv(targets, 'plan', '--dir', repo());
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('no admin URL for PostgreSQL server second of postgres.servers: SYSTEMPROMPT_POSTGRES_URL_SECOND is not set');
    expect(r.stderr).toContain('hint: set SYSTEMPROMPT_POSTGRES_URL_SECOND');
    expect(r.stderr).not.toContain('Secret-1');
    expect(r.stdout).toBe('');
  });
});
