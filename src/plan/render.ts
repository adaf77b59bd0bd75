import { appendTo } from '../collections.js';
import type { Json } from '../model/resource.js';
import type { FieldDiff } from './diff.js';
import type { Placement } from '../compile/desired.js';
import type { Change, Plan } from './plan.js';

const SIGN: Record<Change['action'], string> = { create: '+', update: '~', delete: '-' };

/** The plan as text for people. The JSON rendering is the Plan object itself. */
export function renderPlanText(plan: Plan, opts: { verbose?: boolean } = {}): string {
  const s = plan.summary;
  const lines: string[] = [];
  if (plan.changes.length === 0) {
    lines.push(`No changes. ${s.unchanged} object${s.unchanged === 1 ? '' : 's'} up to date.`);
  } else {
    const tenants = groupByTenant(plan.changes);
    const kindWidth = Math.max(...plan.changes.map((c) => c.kind.length));
    for (const [tenant, changes] of tenants) {
      lines.push(tenant ? `tenant ${tenant}` : 'no tenant');
      for (const c of changes) {
        const flag = c.destructive ? '  (destructive)' : '';
        lines.push(`  ${SIGN[c.action]} ${c.target.padEnd(10)} ${c.kind.padEnd(kindWidth)} ${c.name}${flag}`);
        if (c.action === 'update' || opts.verbose) for (const d of c.diff) lines.push(`      ${renderField(d, c.action)}`);
      }
      lines.push('');
    }
  }
  for (const r of plan.retained) lines.push(`  = ${r.target} ${r.kind} ${r.name}: kept, ${r.reason}`);
  for (const r of plan.conflicts) lines.push(`  ! ${r.target} ${r.kind} ${r.name}: ${r.reason}`);
  if (plan.retained.length || plan.conflicts.length) lines.push('');
  lines.push(
    `Plan: ${s.create} to create, ${s.update} to update, ${s.delete} to delete` +
      (s.destructive ? ` (${s.destructive} destructive: needs --allow-destroy)` : '') +
      (s.retained ? `, ${s.retained} retained` : '') +
      (s.conflicts ? `, ${s.conflicts} conflict${s.conflicts === 1 ? '' : 's'}` : '') +
      '.',
  );
  if (plan.placements?.length) lines.push(renderPlacements(plan.placements));
  const byTenant = new Map<string, string[]>();
  for (const c of plan.cards ?? []) appendTo(byTenant, c.tenant, c.agent);
  if (byTenant.size > 0) lines.push(`Agent cards: ${[...byTenant].map(([t, as]) => `${t} (${as.join(', ')})`).join('; ')}; in full with -o json or \`systemprompt build\`.`);
  if (plan.offline) lines.push('Planned offline, against empty targets.');
  else {
    const r = plan.requests;
    lines.push(`Live state read with ${r.total} request${r.total === 1 ? '' : 's'} (kubernetes ${r.kubernetes}, postgres ${r.postgres}, keycloak ${r.keycloak}).`);
  }
  return `${lines.join('\n')}\n`;
}

function groupByTenant(changes: Change[]): Map<string, Change[]> {
  const m = new Map<string, Change[]>();
  for (const c of changes) appendTo(m, c.tenant ?? '', c);
  return new Map([...m].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function renderField(d: FieldDiff, action: Change['action']): string {
  const v = (x: Json | undefined): string => (d.sensitive ? '(sensitive)' : x === undefined ? '(none)' : short(JSON.stringify(x)));
  if (action === 'create') return `${d.path}: ${v(d.after)}`;
  if (action === 'delete') return `${d.path}: ${v(d.before)}`;
  return `${d.path}: ${v(d.before)} -> ${v(d.after)}`;
}

function short(s: string): string {
  return s.length > 120 ? `${s.slice(0, 117)}...` : s;
}

const REASON: Record<Placement['reason'], string> = { exists: 'exists there', recorded: 'recorded there', pinned: 'pinned', 'least-loaded': 'least loaded' };

/** Where new databases go, and how many stay where they are (several PostgreSQL servers). */
function renderPlacements(placements: Placement[]): string {
  const fresh = placements.filter((p) => p.new);
  const kept = placements.length - fresh.length;
  const shown = fresh.slice(0, 20).map((p) => `${p.database} on ${p.server} (${REASON[p.reason]})`);
  if (fresh.length > shown.length) shown.push(`${fresh.length - shown.length} more (-o json lists them)`);
  const news = fresh.length ? `${fresh.length} new database${fresh.length === 1 ? '' : 's'}: ${shown.join(', ')}` : 'no new database';
  return `PostgreSQL servers: ${news}; ${kept} database${kept === 1 ? '' : 's'} stay${kept === 1 ? 's' : ''} where ${kept === 1 ? 'it is' : 'they are'}.`;
}
