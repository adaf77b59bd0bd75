import { describe, expect, it } from 'vitest';
import { operatorMetrics, Registry } from '../../src/operator/metrics.js';

describe('operator metrics (Prometheus text format)', () => {
  it('renders counters, gauges and histograms with escaped labels', () => {
    const m = operatorMetrics();
    m.reconciles.inc({ kind: 'Tenant', result: 'ok' });
    m.reconciles.inc({ result: 'ok', kind: 'Tenant' }, 2); // label order does not matter
    m.writes.inc({ target: 'keycloak' }, 5);
    m.queueDepth.set(3);
    m.duration.observe(0.2, { kind: 'Tenant' });
    m.duration.observe(7, { kind: 'Tenant' });
    m.errors.inc({ kind: 'Tenant', reason: 'say "hi"\nback\\slash' });
    const text = m.registry.render();
    expect(text).toContain('# TYPE systemprompt_reconciles_total counter\nsystemprompt_reconciles_total{kind="Tenant",result="ok"} 3\n');
    expect(text).toContain('systemprompt_target_writes_total{target="keycloak"} 5');
    expect(text).toContain('# TYPE systemprompt_queue_depth gauge\nsystemprompt_queue_depth 3');
    expect(text).toContain('systemprompt_reconcile_duration_seconds_bucket{kind="Tenant",le="0.25"} 1');
    expect(text).toContain('systemprompt_reconcile_duration_seconds_bucket{kind="Tenant",le="10"} 2');
    expect(text).toContain('systemprompt_reconcile_duration_seconds_bucket{kind="Tenant",le="+Inf"} 2');
    expect(text).toContain('systemprompt_reconcile_duration_seconds_sum{kind="Tenant"} 7.2');
    expect(text).toContain('systemprompt_reconcile_duration_seconds_count{kind="Tenant"} 2');
    expect(text).toContain('reason="say \\"hi\\"\\nback\\\\slash"');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('refuses bad names, a metric registered twice, counters going down and unsorted buckets', () => {
    const r = new Registry();
    expect(() => r.counter('bad-name', 'x')).toThrow(/bad metric name/);
    r.gauge('ok_name', 'x');
    expect(() => r.counter('ok_name', 'x')).toThrow(/twice/);
    expect(() => r.counter('c_total', 'x').inc({}, -1)).toThrow(/only goes up/);
    expect(() => r.histogram('h', 'x', [1, 1])).toThrow(/increase/);
    expect(() => r.counter('d_total', 'x').inc({ 'bad-label': 'v' })).toThrow(/bad label/);
  });
});
