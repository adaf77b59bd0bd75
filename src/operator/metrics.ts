/**
 * The operator's metrics in the Prometheus text exposition format (version 0.0.4): counters,
 * gauges and histograms with labels, rendered for `/metrics`. Small on purpose: what the
 * operator reports, nothing more.
 */
type Labels = Record<string, string>;

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

function labelKey(labels: Labels): string {
  return Object.keys(labels)
    .sort()
    .map((k) => {
      if (!LABEL.test(k)) throw new Error(`bad label name ${k}`);
      return `${k}="${labels[k]!.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`;
    })
    .join(',');
}

const fmt = (v: number): string => (v === Infinity ? '+Inf' : v === -Infinity ? '-Inf' : Number.isNaN(v) ? 'NaN' : String(v));

interface Metric {
  render(): string[];
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    if (by < 0) throw new Error('a counter only goes up');
    const k = labelKey(labels);
    this.values.set(k, (this.values.get(k) ?? 0) + by);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`, ...[...this.values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${fmt(v)}`)];
  }
}

export class Gauge implements Metric {
  private readonly values = new Map<string, number>();
  constructor(readonly name: string, readonly help: string) {}
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value);
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0;
  }
  render(): string[] {
    return [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`, ...[...this.values].map(([k, v]) => `${this.name}${k ? `{${k}}` : ''} ${fmt(v)}`)];
  }
}

export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>();
  constructor(readonly name: string, readonly help: string, readonly buckets: number[] = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]) {
    if (buckets.some((b, i) => i > 0 && b <= buckets[i - 1]!)) throw new Error('buckets must increase');
  }
  observe(value: number, labels: Labels = {}): void {
    const k = labelKey(labels);
    let s = this.series.get(k);
    if (!s) this.series.set(k, (s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }));
    this.buckets.forEach((b, i) => value <= b && s!.counts[i]!++);
    s.sum += value;
    s.count++;
  }
  render(): string[] {
    const out = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const [k, s] of this.series) {
      const sep = k ? `${k},` : '';
      this.buckets.forEach((b, i) => out.push(`${this.name}_bucket{${sep}le="${fmt(b)}"} ${s.counts[i]}`));
      out.push(`${this.name}_bucket{${sep}le="+Inf"} ${s.count}`);
      out.push(`${this.name}_sum${k ? `{${k}}` : ''} ${fmt(s.sum)}`);
      out.push(`${this.name}_count${k ? `{${k}}` : ''} ${s.count}`);
    }
    return out;
  }
}

export class Registry {
  private readonly metrics = new Map<string, Metric>();
  private add<T extends Metric & { name: string }>(m: T): T {
    if (!NAME.test(m.name)) throw new Error(`bad metric name ${m.name}`);
    if (this.metrics.has(m.name)) throw new Error(`metric ${m.name} registered twice`);
    this.metrics.set(m.name, m);
    return m;
  }
  counter(name: string, help: string): Counter {
    return this.add(new Counter(name, help));
  }
  gauge(name: string, help: string): Gauge {
    return this.add(new Gauge(name, help));
  }
  histogram(name: string, help: string, buckets?: number[]): Histogram {
    return this.add(new Histogram(name, help, buckets));
  }
  /** The body of a `/metrics` answer (Content-Type: text/plain; version=0.0.4). */
  render(): string {
    return `${[...this.metrics.values()].flatMap((m) => m.render()).join('\n')}\n`;
  }
}

/** What the operator reports (issue: reconciles, errors, queue depth, durations, writes per target). */
export function operatorMetrics(r = new Registry()) {
  return {
    registry: r,
    reconciles: r.counter('systemprompt_reconciles_total', 'Reconciles run, by kind and result (ok, error).'),
    errors: r.counter('systemprompt_reconcile_errors_total', 'Reconciles that failed, by kind.'),
    queueDepth: r.gauge('systemprompt_queue_depth', 'Keys waiting in the work queue.'),
    duration: r.histogram('systemprompt_reconcile_duration_seconds', 'Time a reconcile took, by kind.'),
    writes: r.counter('systemprompt_target_writes_total', 'Write requests sent to a target (keycloak, kubernetes, postgres).'),
    reads: r.counter('systemprompt_target_reads_total', 'Read requests sent to a target (keycloak, kubernetes, postgres).'),
    rss: r.gauge('process_resident_memory_bytes', 'Resident memory size in bytes.'),
    heap: r.gauge('nodejs_heap_used_bytes', 'V8 heap in use, in bytes.'),
    cpu: r.counter('process_cpu_seconds_total', 'User and system CPU time spent, in seconds.'),
    leader: r.gauge('systemprompt_leader', '1 while this process holds the leader Lease.'),
  };
}
