import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { parse } from 'yaml';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRD_FIELD_MANAGER } from '../../src/crds/generate.js';
import { KubeHttpError } from '../../src/targets/kube-http.js';
import { PROJECT_ROOT } from '../helpers/repo.js';
import { endpoints, kubeHttp, sp, waitFor } from './helpers.js';

/**
 * The checked-in crds/*.yaml on the real API server: accepted under Strict field validation
 * (structural schemas), established, and validating Tenants, Agents and ConfigSources as the JSON
 * Schemas do, including the CEL rules that replace what a structural schema cannot say.
 */

type Obj = Record<string, any>;

const CRD_API = '/apis/apiextensions.k8s.io/v1/customresourcedefinitions';
// The test installs the CRDs under a group of its own, so deleting and recreating them never touches
// the systemprompt.io CRDs (or the Tenants, with their finalizers) that other test files use.
const GROUP = `t${randomUUID().slice(0, 8)}.test.systemprompt.io`;
const API_VERSION = `${GROUP}/v1alpha1`;
const API = `/apis/${API_VERSION}`;
const NS = `systemprompt-crds-test-${randomUUID().slice(0, 8)}`;
const STRICT = { fieldValidation: 'Strict' };
const TABLE = 'application/json;as=Table;v=v1;g=meta.k8s.io';

const checkedIn: Obj[] = readdirSync(path.join(PROJECT_ROOT, 'crds'))
  .filter((f) => f.endsWith('.yaml'))
  .sort()
  .map((f) => parse(readFileSync(path.join(PROJECT_ROOT, 'crds', f), 'utf8')) as Obj);
/** A checked-in CRD moved to the test's group: only its name and group change. */
const regrouped = (c: Obj): Obj => {
  const copy = structuredClone(c);
  copy.spec.group = GROUP;
  copy.metadata.name = `${c.spec.names.plural}.${GROUP}`;
  return copy;
};
const crds: Obj[] = checkedIn.map(regrouped);
const crdNamed = (plural: string): Obj => crds.find((c) => c.spec.names.plural === plural)!;

const tenantFile = (name: string): Obj => parse(readFileSync(path.join(PROJECT_ROOT, 'tenants', `${name}.yaml`), 'utf8')) as Obj;
const tenant = (name: string, spec: Obj): Obj => ({ apiVersion: API_VERSION, kind: 'Tenant', metadata: { name }, spec });
const agent = (name: string, spec: Obj): Obj => ({ apiVersion: API_VERSION, kind: 'Agent', metadata: { name }, spec: { name, ...spec } });

async function create(plural: string, obj: Obj): Promise<Obj> {
  return kubeHttp().request<Obj>('POST', `${API}/namespaces/${NS}/${plural}`, { query: STRICT, body: obj });
}

/** The status code and message of a refused request (fails when it is accepted). */
async function refusal(p: Promise<unknown>): Promise<{ code: number; message: string }> {
  const e = await p.then(
    () => undefined,
    (err: unknown) => err,
  );
  if (!(e instanceof KubeHttpError)) throw new Error(`expected the API server to refuse, got ${e === undefined ? 'success' : String(e)}`);
  return { code: e.code, message: String((e.body as Obj | undefined)?.message ?? '') };
}

/** GET with another Accept header (KubeHttp always asks for plain JSON). */
async function getAs<T>(p: string, accept: string): Promise<T> {
  const kc = new KubeConfig();
  kc.loadFromFile(endpoints.kubeconfigPath!);
  if (endpoints.context) kc.setCurrentContext(endpoints.context);
  const url = new URL(p.replace(/^\//, ''), `${kc.getCurrentCluster()!.server.replace(/\/?$/, '/')}`);
  const options: https.RequestOptions = { method: 'GET', headers: { accept } };
  await kc.applyToHTTPSOptions(options);
  return new Promise<T>((resolve, reject) => {
    https
      .request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          if ((res.statusCode ?? 0) >= 300) reject(new Error(`HTTP ${res.statusCode}: ${text}`));
          else resolve(JSON.parse(text) as T);
        });
      })
      .on('error', reject)
      .end();
  });
}

async function deleteIfThere(p: string): Promise<void> {
  try {
    await kubeHttp().request('DELETE', p);
  } catch (e) {
    if ((e as { code?: number }).code !== 404) throw e;
  }
}

async function gone(p: string, what: string): Promise<void> {
  await waitFor(
    async () => {
      try {
        await kubeHttp().request('GET', p);
        return undefined;
      } catch (e) {
        if ((e as { code?: number }).code === 404) return true;
        throw e;
      }
    },
    { timeoutMs: 120_000, intervalMs: 200, what, onTimeout: (w) => new Error(`timed out waiting for ${w}`) },
  );
}

describe('the CRDs in crds/ on the real API server', () => {
  beforeAll(async () => {
    // CRDs an interrupted run left under its own test group go first (nothing else uses them).
    const all = await kubeHttp().request<Obj>('GET', CRD_API);
    const left = (all.items as Obj[]).map((c) => c.metadata.name as string).filter((n) => n.endsWith('.test.systemprompt.io'));
    for (const n of left) await deleteIfThere(`${CRD_API}/${n}`);
    for (const n of left) await gone(`${CRD_API}/${n}`, `CRD ${n} to be deleted`);
  });

  afterAll(async () => {
    await deleteIfThere(`${API}/namespaces/${NS}/tenants/customer-a`);
    await deleteIfThere(`/api/v1/namespaces/${NS}`);
    for (const c of crds) await deleteIfThere(`${CRD_API}/${c.metadata.name}`);
    for (const c of crds) await gone(`${CRD_API}/${c.metadata.name}`, `CRD ${c.metadata.name} to be deleted`);
  });

  it('accepts each CRD on a dry-run create with fieldValidation=Strict (structural schemas, no dropped keyword)', async () => {
    expect(checkedIn.map((c) => c.metadata.name)).toEqual(['agents.systemprompt.io', 'configsources.systemprompt.io', 'tenants.systemprompt.io']);
    for (const c of crds) {
      const r = await kubeHttp().request<Obj>('POST', CRD_API, { query: { dryRun: 'All', ...STRICT }, body: c });
      expect(r.metadata.name).toBe(c.metadata.name);
      // Nothing was pruned or rewritten: the schema the server would store is the one we sent.
      expect(r.spec.versions[0].schema).toEqual(c.spec.versions[0].schema);
    }
  });

  it('refuses the JSON Schema forms the generator replaces ([string, number], uniqueItems, const, $ref, enum without type, examples)', async () => {
    const tenantCrd = crdNamed('tenants');
    const withCpu = (cpu: Obj): Obj => {
      const c = structuredClone(tenantCrd);
      c.spec.versions[0].schema.openAPIV3Schema.properties.spec.properties.quotas.properties.cpu = cpu;
      return c;
    };
    const post = (c: Obj): Promise<unknown> => kubeHttp().request('POST', CRD_API, { query: { dryRun: 'All', ...STRICT }, body: c });
    const refused = [
      { type: ['string', 'number'] },
      { type: 'array', items: { type: 'string' }, uniqueItems: true },
      { type: 'string', const: '4' },
      { $ref: '#/definitions/quantity' },
      { enum: ['4'] },
      { type: 'string', examples: ['4'] },
      { type: 'string', pattern: '^(?!x)' },
      // Why a quantity keeps no CEL rule: the server compiles none on a node without a type.
      { 'x-kubernetes-preserve-unknown-fields': true, 'x-kubernetes-validations': [{ rule: 'type(self) == string || type(self) == double' }] },
    ];
    for (const cpu of refused) {
      const r = await refusal(post(withCpu(cpu)));
      expect([400, 422], JSON.stringify(cpu)).toContain(r.code);
    }
    // int-or-string is accepted as a CRD, but it admits integers only (see the 2.3 case below).
    await post(withCpu({ 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] }));
  });

  it('creates them with server-side apply (field manager systemprompt) and they become Established', async () => {
    for (const c of crds) {
      await kubeHttp().request('PATCH', `${CRD_API}/${c.metadata.name}`, {
        query: { fieldManager: CRD_FIELD_MANAGER, force: 'true', ...STRICT },
        body: c,
        contentType: 'application/apply-patch+yaml',
      });
    }
    for (const c of crds) {
      await waitFor(
        async () => {
          const live = await kubeHttp().request<Obj>('GET', `${CRD_API}/${c.metadata.name}`);
          const established = (live.status?.conditions ?? []).find((x: Obj) => x.type === 'Established');
          return established?.status === 'True' ? true : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 100, what: `${c.metadata.name} to be Established`, onTimeout: (w) => new Error(`timed out waiting for ${w}`) },
      );
      const live = await kubeHttp().request<Obj>('GET', `${CRD_API}/${c.metadata.name}`);
      expect(live.metadata.managedFields.map((m: Obj) => m.manager)).toContain(CRD_FIELD_MANAGER);
      expect((live.status.conditions as Obj[]).find((x) => x.type === 'NonStructuralSchema')).toBeUndefined();
    }
    // The resources are served (discovery can lag Established by a moment).
    await waitFor(
      async () => {
        const list = await kubeHttp().request<Obj>('GET', API);
        const names = (list.resources as Obj[]).map((r) => r.name as string);
        return ['tenants', 'agents', 'configsources', 'tenants/status'].every((n) => names.includes(n)) ? true : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 100, what: `${API_VERSION} discovery`, onTimeout: (w) => new Error(`timed out waiting for ${w}`) },
    );
    await kubeHttp().request('POST', '/api/v1/namespaces', { body: { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS, labels: { 'app.kubernetes.io/part-of': 'systemprompt-tests' } } } });
  });

  it("creates a Tenant whose spec is tenants/customer-a.yaml under Strict validation; the server adds only the schema's defaults", async () => {
    const file = tenantFile('customer-a');
    const created = await create('tenants', tenant('customer-a', file));
    const expected = structuredClone(file);
    for (const u of expected.users as Obj[]) u.enabled ??= true;
    expect(created.spec).toEqual(expected);
    expect(created.metadata.generation).toBe(1);
  });

  it('refuses a bad Tenant with 422, naming the field', async () => {
    const good = tenantFile('customer-a');
    const cases: Array<[string, Obj, string]> = [
      ['quotas.pods: "twenty"', { ...good, quotas: { ...good.quotas, pods: 'twenty' } }, 'spec.quotas.pods'],
      ['an unknown field', { ...good, quota: { cpu: '1' } }, 'quota'],
      ['deletion_policy: keep', { ...good, deletion_policy: 'keep' }, 'spec.deletion_policy'],
      ['an agent twice', { ...good, agents: ['assistant', 'assistant'] }, 'spec.agents'],
      ['a bad email', { ...good, users: [{ email: 'not-an-email' }] }, 'spec.users[0].email'],
      ['name Bad_Name', { ...good, name: 'Bad_Name' }, 'spec.name'],
      ['cpu: "lots" (the pattern of a quantity)', { ...good, quotas: { cpu: 'lots' } }, 'spec.quotas.cpu'],
      ['cpu: -1', { ...good, quotas: { cpu: -1 } }, 'spec.quotas.cpu'],
    ];
    for (const [what, spec, field] of cases) {
      const r = await refusal(create('tenants', tenant(`bad-${randomUUID().slice(0, 6)}`, spec)));
      expect({ what, code: r.code }).toEqual({ what, code: what === 'an unknown field' ? 400 : 422 });
      expect(r.message, what).toContain(field);
    }
  });

  it('accepts every quantity the tenant schema does: "4", 4, 2.3, "500m", 8Gi', async () => {
    for (const cpu of ['4', 4, 2.3, '500m', '8Gi']) {
      const name = `q-${randomUUID().slice(0, 6)}`;
      const created = await create('tenants', tenant(name, { name, quotas: { cpu } }));
      expect(created.spec.quotas.cpu).toEqual(cpu);
      await kubeHttp().request('DELETE', `${API}/namespaces/${NS}/tenants/${name}`);
    }
  });

  it('prints Ready, Realm, Namespace, Database and Age once the status subresource is applied', async () => {
    const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
    const condition = (type: string, status: string, reason: string) => ({ type, status, observedGeneration: 1, lastTransitionTime: now, reason, message: '' });
    await kubeHttp().request('PATCH', `${API}/namespaces/${NS}/tenants/customer-a/status`, {
      query: { fieldManager: 'systemprompt-operator', force: 'true', ...STRICT },
      contentType: 'application/apply-patch+yaml',
      body: {
        apiVersion: API_VERSION,
        kind: 'Tenant',
        metadata: { name: 'customer-a' },
        status: {
          observedGeneration: 1,
          conditions: [condition('Ready', 'True', 'Applied'), condition('Reconciling', 'False', 'Applied'), condition('Stalled', 'False', 'Applied')],
          realm: 'customer-a',
          namespace: 'tenant-customer-a',
          database: 'tenant_customer_a',
        },
      },
    });
    const table = await getAs<Obj>(`${API}/namespaces/${NS}/tenants`, TABLE);
    expect(table.kind).toBe('Table');
    expect((table.columnDefinitions as Obj[]).map((c) => c.name)).toEqual(['Name', 'Ready', 'Realm', 'Namespace', 'Database', 'Age']);
    const row = (table.rows as Obj[]).find((r) => r.cells[0] === 'customer-a')!;
    expect(row.cells.slice(0, 5)).toEqual(['customer-a', 'True', 'customer-a', 'tenant-customer-a', 'tenant_customer_a']);
    const live = await kubeHttp().request<Obj>('GET', `${API}/namespaces/${NS}/tenants/customer-a`);
    expect(live.metadata.generation).toBe(1);
  });

  it('accepts the Agent and Tenant objects `systemprompt build --format crds` writes for the example repository', async () => {
    const out = path.join(mkdtempSync(path.join(os.tmpdir(), 'sp-crds-')), 'out');
    try {
      const r = await sp(PROJECT_ROOT, 'build', '--format', 'crds', '--out', out);
      expect(r.code, r.stderr).toBe(0);
      for (const kind of ['agents', 'tenants']) {
        for (const f of readdirSync(path.join(out, kind)).sort()) {
          const obj = parse(readFileSync(path.join(out, kind, f), 'utf8')) as Obj;
          expect(obj.apiVersion, f).toBe('systemprompt.io/v1alpha1');
          obj.apiVersion = API_VERSION;
          const applied = await kubeHttp().request<Obj>('PATCH', `${API}/namespaces/${NS}/${kind}/${obj.metadata.name}`, {
            query: { fieldManager: CRD_FIELD_MANAGER, force: 'true', ...STRICT },
            contentType: 'application/apply-patch+yaml',
            body: obj,
          });
          expect(applied.metadata.name, f).toBe(obj.metadata.name);
        }
      }
    } finally {
      rmSync(path.dirname(out), { recursive: true, force: true });
    }
    const welcome = await kubeHttp().request<Obj>('GET', `${API}/namespaces/${NS}/agents/welcome`);
    expect(welcome.spec.card.securitySchemes.oauth2.flows.authorizationCode.scopes).toEqual({ anonymous: 'Public access', user: 'Authenticated user access' });
  });

  it('refuses a bad Agent, including the CEL rules for security schemes and map keys', async () => {
    const assistant = parse(readFileSync(path.join(PROJECT_ROOT, 'services/agents/assistant.yaml'), 'utf8')) as Obj;
    const card = assistant.card as Obj;
    const cases: Array<[string, Obj, string]> = [
      ['tenant_aware: "yes"', { ...assistant, tenant_aware: 'yes' }, 'spec.tenant_aware'],
      ['an oauth2 scheme without flows', { ...assistant, card: { ...card, securitySchemes: { o: { type: 'oauth2' } } } }, 'oauth2 requires flows'],
      ['an apiKey scheme with an http field', { ...assistant, card: { ...card, securitySchemes: { k: { type: 'apiKey', in: 'header', name: 'X-Key', scheme: 'bearer' } } } }, 'allows no scheme'],
      ['an apiKey scheme without in', { ...assistant, card: { ...card, securitySchemes: { k: { type: 'apiKey', name: 'X-Key' } } } }, 'apiKey requires in, name'],
      ['a scheme name with a space (a CEL rule on the keys)', { ...assistant, card: { ...card, securitySchemes: { 'a b': { type: 'mutualTLS' } } } }, 'keys must match'],
      ['a clientCredentials flow without tokenUrl', { ...assistant, card: { ...card, securitySchemes: { o: { type: 'oauth2', flows: { clientCredentials: { scopes: {} } } } } } }, 'tokenUrl'],
    ];
    for (const [what, spec, text] of cases) {
      const name = `bad-${randomUUID().slice(0, 6)}`;
      const r = await refusal(create('agents', agent(name, spec)));
      expect({ what, code: r.code }).toEqual({ what, code: 422 });
      expect(r.message, what).toContain(text);
    }
  });

  it('a ConfigSource gets its defaults; a ref naming both a branch and a tag, or an ftp URL, is refused', async () => {
    const cs = (name: string, spec: Obj): Obj => ({ apiVersion: API_VERSION, kind: 'ConfigSource', metadata: { name }, spec });
    const created = await create('configsources', cs('config', { git: { url: 'https://git.example.com/platform/config.git', ref: { branch: 'main' } } }));
    expect(created.spec).toEqual({ git: { url: 'https://git.example.com/platform/config.git', ref: { branch: 'main' }, path: '.' }, interval: '1m', suspend: false, allowDestroy: false });
    for (const [what, spec] of [
      ['branch and tag', { git: { url: 'file:///srv/config.git', ref: { branch: 'main', tag: 'v1' } } }],
      ['ftp', { git: { url: 'ftp://example.com/config.git' } }],
      ['interval 1 minute', { git: { url: 'git@example.com:platform/config.git' }, interval: '1 minute' }],
    ] as const) {
      const r = await refusal(create('configsources', cs(`bad-${randomUUID().slice(0, 6)}`, spec)));
      expect({ what, code: r.code }).toEqual({ what, code: 422 });
    }
    const table = await getAs<Obj>(`${API}/namespaces/${NS}/configsources`, TABLE);
    expect((table.columnDefinitions as Obj[]).map((c) => c.name)).toEqual(['Name', 'Ready', 'Revision', 'Age']);
  });
});
