import type { Io } from '../cli/io.js';
import type { SourceFile } from '../config/source.js';
import { locate, type PathSegment } from '../config/source.js';
import { openSession } from './edit-session.js';
import { renderTable } from './table.js';

/** `systemprompt admin config show tenancy|scopes`: effective settings and where each comes from. */

export type ConfigSection = 'tenancy' | 'scopes';

export interface ConfigShowOptions {
  dir?: string;
  section: ConfigSection;
  output: 'text' | 'json';
}

interface Setting {
  key: string;
  value: unknown;
  /** `systemprompt.yaml:4`, or `default` when the key is not written. */
  source: string;
}

function has(value: unknown, path: readonly PathSegment[]): boolean {
  let cur: unknown = value;
  for (const seg of path) {
    if (!cur || typeof cur !== 'object' || !(String(seg) in (cur as object))) return false;
    cur = (cur as Record<string, unknown>)[String(seg)];
  }
  return true;
}

function sourceOf(source: SourceFile | undefined, path: readonly PathSegment[]): string {
  if (!source || !has(source.value, path)) return 'default';
  return `${source.file}:${locate(source, path).line}`;
}

export async function runConfigShow(io: Io, opts: ConfigShowOptions): Promise<number> {
  const { repo } = await openSession(io, opts.dir);
  const p = repo.project;
  const src = p.source;
  let settings: Setting[];
  if (opts.section === 'tenancy') {
    const t = p.tenancy;
    settings = [
      { key: 'enabled', value: t.enabled, source: sourceOf(src, ['tenancy', 'enabled']) },
      { key: 'isolation', value: t.isolation, source: sourceOf(src, ['tenancy', 'isolation']) },
      { key: 'default_tenant', value: t.defaultTenant, source: sourceOf(src, ['tenancy', 'default_tenant']) },
      { key: 'naming.realm', value: t.naming.realm, source: sourceOf(src, ['tenancy', 'naming', 'realm']) },
      { key: 'naming.namespace', value: t.naming.namespace, source: sourceOf(src, ['tenancy', 'naming', 'namespace']) },
      { key: 'naming.database', value: t.naming.database, source: sourceOf(src, ['tenancy', 'naming', 'database']) },
    ];
  } else {
    settings = Object.entries(p.scopes).map(([key, value]) => ({ key, value, source: sourceOf(src, ['scopes', key]) }));
  }
  const tenants = repo.tenants.map((t) => t.name);
  if (opts.output === 'json') {
    const doc =
      opts.section === 'tenancy'
        ? {
            tenancy: {
              enabled: p.tenancy.enabled,
              isolation: p.tenancy.isolation,
              default_tenant: p.tenancy.defaultTenant,
              naming: { ...p.tenancy.naming },
            },
            sources: Object.fromEntries(settings.map((s) => [s.key, s.source])),
            tenants,
          }
        : { scopes: { ...p.scopes }, sources: Object.fromEntries(settings.map((s) => [s.key, s.source])) };
    io.out(`${JSON.stringify(doc, null, 2)}\n`);
    return 0;
  }
  io.out(`${opts.section} (effective; "default" = not set in systemprompt.yaml)\n`);
  io.out(renderTable(['KEY', 'VALUE', 'SOURCE'], settings.map((s) => [s.key, String(s.value), s.source])).replace(/^(?=.)/gm, '  '));
  if (opts.section === 'tenancy') {
    const def = p.tenancy.defaultTenant;
    io.out(`tenants: ${tenants.map((n) => (n === def ? `${n} (default)` : n)).join(', ') || '(none)'}\n`);
  }
  return 0;
}
