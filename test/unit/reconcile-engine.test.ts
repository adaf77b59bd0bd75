import { describe, expect, it } from 'vitest';
import { ApplySecrets } from '../../src/reconcile/secrets.js';
import { applyPlan } from '../../src/reconcile/engine.js';
import { compile } from '../../src/compile/compile.js';
import { AbortedError, ConflictError, FencedError, TargetError } from '../../src/errors.js';
import { resourceKey, type LiveResource, type TargetName } from '../../src/model/resource.js';
import { computePlan, EMPTY_LIVE, type Change } from '../../src/plan/plan.js';
import { requestRunner, withRetry } from '../../src/targets/retry.js';
import { currentGuard } from '../../src/targets/runscope.js';
import type { ApplyContext, RunGuard, Target } from '../../src/targets/target.js';
import { exampleRepo } from '../helpers/repo.js';

/**
 * A fake target for the engine's own logic: records order and concurrency, fails on demand. Its
 * one request per change goes through the same runner as the real targets' (fencing, counting).
 */
class FakeTarget implements Target {
  readonly requests = { reads: 0, writes: 0 };
  running = 0;
  maxRunning = 0;
  private readonly call: ReturnType<typeof requestRunner>;
  constructor(readonly name: TargetName, private readonly log: string[], private readonly failOn = new Set<string>()) {
    this.call = requestRunner(name, this.requests, (_what, e) => e);
  }
  async read(): Promise<LiveResource[]> {
    return [];
  }
  async apply(c: Change, ctx: ApplyContext): Promise<void> {
    if (c.action !== 'delete') expect(ctx.specOf(c)).toBeTypeOf('object');
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      await this.call(`apply ${c.name}`, 'write', async () => {
        await new Promise((r) => setTimeout(r, 1));
        if (this.failOn.has(resourceKey(c))) throw new TargetError(this.name, `boom ${c.name}`);
      });
    } finally {
      this.running--;
    }
    this.log.push(resourceKey(c));
  }
  async close(): Promise<void> {}
}

const desired = compile(exampleRepo());
const ctx = { secrets: new ApplySecrets(desired, { readSecretValue: async () => undefined }), desired };

function fakes(log: string[], failOn?: Set<string>): Record<TargetName, FakeTarget> {
  return { kubernetes: new FakeTarget('kubernetes', log, failOn), postgres: new FakeTarget('postgres', log, failOn), keycloak: new FakeTarget('keycloak', log, failOn) };
}

describe('apply engine', () => {
  it('applies every change after those it depends on, within the concurrency bound', async () => {
    const plan = computePlan(desired, EMPTY_LIVE);
    const log: string[] = [];
    const t = fakes(log);
    const r = await applyPlan(plan, t, ctx, { allowDestroy: false, concurrency: 3 });
    expect(r).toMatchObject({ applied: plan.changes.length, failed: [], skipped: 0, writes: plan.changes.length });
    const pos = new Map(log.map((k, i) => [k, i]));
    for (const c of plan.changes) for (const d of c.dependsOn) if (pos.has(d)) expect(pos.get(d)!).toBeLessThan(pos.get(resourceKey(c))!);
    const peak = Math.max(...Object.values(t).map((x) => x.maxRunning));
    expect(peak).toBeLessThanOrEqual(3);
  });

  it('skips what depends on a failed change and goes on with the rest', async () => {
    const plan = computePlan(desired, EMPTY_LIVE);
    const log: string[] = [];
    const r = await applyPlan(plan, fakes(log, new Set(['keycloak:Realm:customer-a'])), ctx, { allowDestroy: false });
    expect(r.failed.map((f) => f.change.name)).toEqual(['customer-a']);
    const realmObjects = plan.changes.filter((c) => c.target === 'keycloak' && c.tenant === 'customer-a' && c.kind !== 'Realm').length;
    expect(r.skipped).toBe(realmObjects + 1); // everything in the realm, and the OIDC Secret that needs its clients
    expect(log).toContain('keycloak:Realm:customer-b');
    expect(log).toContain('postgres:Database:tenant_customer-a');
    expect(log).not.toContain('kubernetes:Secret:tenant-customer-a/systemprompt-oidc');
  });

  it('refuses destruction without --allow-destroy, and conflicts always, before any write', async () => {
    const live: LiveResource[] = [{ target: 'kubernetes', kind: 'Namespace', name: 'tenant-gone', tenant: 'gone', managed: true, spec: {} }];
    const plan = computePlan({ tenants: [], resources: [] }, { resources: live, requests: {} });
    const log: string[] = [];
    await expect(applyPlan(plan, fakes(log), ctx, { allowDestroy: false })).rejects.toBeInstanceOf(AbortedError);
    expect(log).toEqual([]);
    await applyPlan(plan, fakes(log), ctx, { allowDestroy: true });
    expect(log).toEqual(['kubernetes:Namespace:tenant-gone']);

    const conflicting = computePlan(desired, { resources: [{ target: 'postgres', kind: 'Database', name: 'tenant_default', managed: false, spec: {} }], requests: {} });
    await expect(applyPlan(conflicting, fakes([]), ctx, { allowDestroy: true })).rejects.toBeInstanceOf(ConflictError);
  });

  it('deletes children before their namespace or realm', async () => {
    const live: LiveResource[] = [
      { target: 'kubernetes', kind: 'Namespace', name: 'ns-x', managed: true, spec: {} },
      { target: 'kubernetes', kind: 'Secret', name: 'other/s', managed: true, spec: {} },
      { target: 'postgres', kind: 'Role', name: 'r', managed: true, spec: {} },
      { target: 'postgres', kind: 'Database', name: 'r', managed: true, spec: { owner: 'r' }, retain: false },
    ];
    const log: string[] = [];
    await applyPlan(computePlan({ tenants: [], resources: [] }, { resources: live, requests: {} }), fakes(log), ctx, { allowDestroy: true, concurrency: 8 });
    expect(log.indexOf('postgres:Database:r')).toBeLessThan(log.indexOf('postgres:Role:r'));
    expect(log.indexOf('kubernetes:Secret:other/s')).toBeLessThan(log.indexOf('kubernetes:Namespace:ns-x'));
  });
});

describe('retries', () => {
  it('retries transient failures with backoff, and gives up on permanent ones at once', async () => {
    let n = 0;
    const v = await withRetry(async () => {
      if (++n < 3) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
      return 'ok';
    }, { baseMs: 1 });
    expect([v, n]).toEqual(['ok', 3]);
    let m = 0;
    await expect(withRetry(async () => {
      m++;
      throw new TargetError('x', 'forbidden');
    }, { baseMs: 1 })).rejects.toThrow('forbidden');
    expect(m).toBe(1);
    let k = 0;
    await expect(withRetry(async () => {
      k++;
      throw new TargetError('x', 'busy', { transient: true });
    }, { baseMs: 1, attempts: 4 })).rejects.toThrow('busy');
    expect(k).toBe(4);
  });
});

describe('secrets during apply', () => {
  it('reuses a stored database password, generates one only where it is first stored', async () => {
    const stored = new ApplySecrets(desired, { readSecretValue: async (ns, name, key) => (ns === 'tenant-customer-a' && name === 'systemprompt-database' && key === 'PGPASSWORD' ? 'kept' : undefined) });
    expect(await stored.resolve('customer-a', 'postgres-password')).toBe('kept');
    await expect(stored.resolve('customer-b', 'postgres-password')).rejects.toThrow(/not in Secret/);
    const fresh = await stored.resolve('default', 'postgres-password', { mayGenerate: true });
    expect(fresh).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(await stored.resolve('default', 'postgres-password')).toBe(fresh); // the same value for the role
  });
});

describe('fencing', () => {
  it('stops before the next change and the next write once the lock is lost, and says why', async () => {
    const log: string[] = [];
    let allowed = 5;
    const guard: RunGuard = {
      fence: () => {
        if (allowed-- <= 0) throw new FencedError('the apply lock was lost');
      },
    };
    const plan = computePlan(desired, EMPTY_LIVE);
    const targets = fakes(log);
    const r = await applyPlan(plan, targets, ctx, { allowDestroy: false, concurrency: 1, guard });
    expect(log.length).toBeGreaterThan(0);
    expect(log.length).toBeLessThan(plan.changes.length);
    expect(r.applied).toBe(log.length);
    expect(r.stopped).toMatch(/lock was lost/);
    expect(r.applied + r.failed.length + r.skipped).toBe(plan.changes.length);
    // the guard belongs to the run: nothing outside it is fenced by it
    expect(currentGuard()).toBeUndefined();
  });

  it('runs sharing the same targets each fence their own writes and count their own', async () => {
    const targets = fakes([]);
    const plan = computePlan(desired, EMPTY_LIVE);
    let lost = false;
    const healthy: RunGuard = { fence: () => undefined };
    const losing: RunGuard = {
      fence: () => {
        if (lost) throw new FencedError('the apply lock was lost');
      },
    };
    const a = applyPlan(plan, targets, ctx, { allowDestroy: false, concurrency: 2, guard: healthy });
    const b = applyPlan(plan, targets, ctx, { allowDestroy: false, concurrency: 2, guard: losing });
    setTimeout(() => (lost = true), 5);
    const [ra, rb] = await Promise.all([a, b]);
    // A is untouched by B's lost lock; B stopped part-way and wrote less.
    expect(ra.failed).toEqual([]);
    expect(ra.applied).toBe(plan.changes.length);
    expect(rb.applied).toBeLessThan(plan.changes.length);
    expect(rb.failed.length + rb.skipped).toBeGreaterThan(0);
    // Each counts its own requests; together they are all the targets saw.
    expect(ra.writes).toBe(plan.changes.length);
    expect(rb.writes).toBeLessThan(plan.changes.length);
    const total = Object.values(targets).reduce((n, t) => n + t!.requests.writes, 0);
    expect(ra.writes + rb.writes).toBe(total);
  });

  it('applies specs from the desired state, never the redacted copy a plan shows', async () => {
    const plan = computePlan(desired, EMPTY_LIVE);
    const secret = plan.changes.find((c) => c.kind === 'Secret')!;
    expect(Object.values((secret.spec as { data: Record<string, unknown> }).data).every((v) => v === '(sensitive)')).toBe(true);
    const seen: unknown[] = [];
    const t = fakes([]);
    t.kubernetes!.apply = async (c, actx) => void (c.kind === 'Secret' && seen.push(actx.specOf(c)));
    await applyPlan(plan, t, ctx, { allowDestroy: false });
    expect(seen.length).toBeGreaterThan(0);
    expect(JSON.stringify(seen)).not.toContain('(sensitive)');
  });
});

describe('apply progress', () => {
  it('prints each change of a small plan, and a line every 2 s (plus failures) for a large one', async () => {
    const { progress } = await import('../../src/commands/apply.js');
    const lines: string[] = [];
    const io = { out: () => {}, err: (t: string) => void lines.push(t), interactive: false, env: {}, cwd: '.' };
    const change = { action: 'create', target: 'kubernetes', kind: 'Namespace', name: 'n', destructive: false, diff: [], dependsOn: [] } as Change;
    const small = progress(io);
    for (let i = 0; i < 3; i++) small({ kind: 'done', change, index: i, total: 3, ms: 1 });
    expect(lines).toHaveLength(3);
    lines.length = 0;
    let t = 0;
    const large = progress(io, () => t);
    for (let i = 0; i < 500; i++) {
      t += 10; // 5 s in all
      large({ kind: i === 250 ? 'failed' : 'done', change, index: i, total: 500, ms: 1, error: 'boom' });
    }
    expect(lines.filter((l) => l.includes('FAILED'))).toHaveLength(1);
    expect(lines.length).toBeLessThanOrEqual(5);
    expect(lines.at(-1)).toMatch(/^\[500\/500\] 100% after 5 s/);
  });
});

describe('reconcile() with destructive changes deferred', () => {
  it('applies the rest, defers what is destructive, and lets allowDestroyOf permit one tenant', async () => {
    const { reconcile } = await import('../../src/reconcile/reconcile.js');
    const live: LiveResource[] = ['gone-a', 'gone-b'].flatMap((t) => [
      { target: 'kubernetes' as const, kind: 'Namespace', name: `tenant-${t}`, tenant: t, managed: true, spec: {} },
      { target: 'kubernetes' as const, kind: 'ServiceAccount', name: `tenant-${t}/sa`, tenant: t, managed: true, spec: {} },
    ]);
    const log: string[] = [];
    const k = new FakeTarget('kubernetes', log);
    k.read = async () => live;
    const empty = { tenants: [], resources: [] };
    const out = await reconcile({ desired: empty, targets: { kubernetes: k }, secrets: { readSecretValue: async () => undefined }, allowDestroy: false, deferDestructive: true, allowDestroyOf: (c) => c.tenant === 'gone-b' });
    expect(out.deferred.map((c) => c.name)).toEqual(['tenant-gone-a']);
    expect(log).toEqual(['kubernetes:Namespace:tenant-gone-b']);
  });
});
