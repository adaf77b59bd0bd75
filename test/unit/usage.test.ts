import { describe, expect, it } from 'vitest';
import { parseSince } from '../../src/commands/usage.js';
import { requirementText, UsageRecorder, usageRows, type DecisionRecord, type UsageStore } from '../../src/runtime/usage.js';

const T = Date.parse('2026-11-29T23:59:59.500Z');
const rec = (o: Partial<DecisionRecord> = {}): DecisionRecord => ({
  time: T,
  tenant: 'acme',
  userId: 'u1',
  email: 'ann@acme.test',
  agent: 'assistant',
  method: 'GET',
  path: '/api/v1/agents/assistant/x',
  required: [['read']],
  held: ['read'],
  allowed: true,
  status: 200,
  reason: undefined,
  bytesIn: 10,
  bytesOut: 100,
  ...o,
});

/** A store that keeps what it was given, and fails while `failing` is set. */
class Store implements UsageStore {
  batches: Array<{ tenant: string; records: DecisionRecord[] }> = [];
  failing = false;
  write(tenant: string, records: readonly DecisionRecord[]): Promise<void> {
    if (this.failing) return Promise.reject(new Error('connection refused'));
    this.batches.push({ tenant, records: [...records] });
    return Promise.resolve();
  }
}

describe('usage rows', () => {
  it('sums requests, denials and bytes per UTC day, user and agent', () => {
    const rows = usageRows([
      rec(),
      rec({ allowed: false, status: 403, reason: 'missing_scope', bytesIn: 0, bytesOut: 20 }),
      rec({ time: T + 1000 }), // the next UTC day
      rec({ agent: 'writer' }),
      rec({ userId: 'u2', email: undefined }),
    ]);
    expect(rows).toEqual([
      { day: '2026-11-29', userId: 'u1', email: 'ann@acme.test', agent: 'assistant', requests: 2, denials: 1, bytesIn: 10, bytesOut: 120 },
      { day: '2026-11-30', userId: 'u1', email: 'ann@acme.test', agent: 'assistant', requests: 1, denials: 0, bytesIn: 10, bytesOut: 100 },
      { day: '2026-11-29', userId: 'u1', email: 'ann@acme.test', agent: 'writer', requests: 1, denials: 0, bytesIn: 10, bytesOut: 100 },
      { day: '2026-11-29', userId: 'u2', email: undefined, agent: 'assistant', requests: 1, denials: 0, bytesIn: 10, bytesOut: 100 },
    ]);
  });

  it('writes a requirement as one text per alternative', () => {
    expect(requirementText([['read', 'write'], ['admin']])).toEqual(['read write', 'admin']);
    expect(requirementText([])).toEqual([]);
  });
});

describe('UsageRecorder', () => {
  it('writes per tenant in batches, never mixing tenants in one batch', async () => {
    const store = new Store();
    const r = new UsageRecorder({ store, flushMs: 60_000, batchSize: 3 });
    for (let i = 0; i < 4; i++) r.record(rec({ userId: `a${i}` }));
    r.record(rec({ tenant: 'globex', userId: 'g' }));
    await r.flush();
    const of = (tenant: string) => store.batches.filter((b) => b.tenant === tenant).map((b) => b.records.map((x) => x.userId));
    expect(of('acme')).toEqual([['a0', 'a1', 'a2'], ['a3']]);
    expect(of('globex')).toEqual([['g']]);
    expect(store.batches.every((b) => b.records.every((x) => x.tenant === b.tenant))).toBe(true);
    expect([r.written, r.pending]).toEqual([5, 0]);
    await r.close();
  });

  it('keeps a failed batch, in order, and writes it once the database is back', async () => {
    const store = new Store();
    const warnings: string[] = [];
    const r = new UsageRecorder({ store, flushMs: 60_000, warn: (m) => warnings.push(m) });
    store.failing = true;
    r.record(rec({ userId: 'first' }));
    await r.flush();
    r.record(rec({ userId: 'second' }));
    await r.flush();
    expect([store.batches.length, r.pending]).toEqual([0, 2]);
    expect(warnings).toHaveLength(1); // once a minute per tenant, not per attempt
    expect(warnings[0]).toMatch(/tenant acme: 1 records not written yet \(connection refused\); will retry/);
    store.failing = false;
    await r.close();
    expect(store.batches.flatMap((b) => b.records.map((x) => x.userId))).toEqual(['first', 'second']);
    expect(r.pending).toBe(0);
  });

  it('drops the oldest records beyond maxBuffered while the database is away, and counts them', async () => {
    const store = new Store();
    const warnings: string[] = [];
    const r = new UsageRecorder({ store, flushMs: 60_000, maxBuffered: 3, batchSize: 100, warn: (m) => warnings.push(m) });
    for (let i = 0; i < 5; i++) r.record(rec({ userId: `u${i}` }));
    expect([r.pending, r.dropped]).toEqual([3, 2]);
    expect(warnings.join('\n')).toMatch(/oldest records dropped \(more than 3 waiting\)/);
    await r.close();
    expect(store.batches[0]!.records.map((x) => x.userId)).toEqual(['u2', 'u3', 'u4']);
  });

  it('says on close how many records could not be written', async () => {
    const store = new Store();
    store.failing = true;
    const warnings: string[] = [];
    const r = new UsageRecorder({ store, flushMs: 60_000, warn: (m) => warnings.push(m) });
    r.record(rec());
    await r.close();
    expect(warnings.at(-1)).toBe('usage: 1 record could not be written before stopping');
  });
});

describe('--since', () => {
  const now = Date.parse('2026-11-29T12:00:00Z');
  it('takes an age or an ISO date or time', () => {
    expect(parseSince('30m', now).toISOString()).toBe('2026-11-29T11:30:00.000Z');
    expect(parseSince('7d', now).toISOString()).toBe('2026-11-22T12:00:00.000Z');
    expect(parseSince('2026-11-01', now).toISOString()).toBe('2026-11-01T00:00:00.000Z');
    expect(parseSince('2026-11-01T08:00:00Z', now).toISOString()).toBe('2026-11-01T08:00:00.000Z');
  });
  it('refuses anything else with what it expects', () => {
    expect(() => parseSince('yesterday', now)).toThrow(/--since yesterday: expected an ISO date or time .* or an age \(30m, 24h, 7d\)/);
    expect(() => parseSince('2026-13-45', now)).toThrow(/--since/);
  });
});
