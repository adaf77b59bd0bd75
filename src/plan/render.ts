import { appendTo } from '../collections.js';
import type { Json } from '../model/resource.js';
import type { FieldDiff } from './diff.js';
import type { Placement } from '../compile/desired.js';
import type { Change, Plan } from './plan.js';

const SIGN: Record<Change['action'], string> = { create: '+', update: '~', delete: '-' };

/**
 * More changes than this of one action and kind in one tenant are shown as one line (`+ keycloak
 * User 500 users`) unless verbose; destructive changes are always listed one by one.
 */
export const SUMMARY_THRESHOLD = 10;

/** The plan as text for people. The JSON rendering is the Plan object itself. */
export function renderPlanText(plan: Plan, opts: { verbose?: boolean; summariseOver?: number } = {}): string {
  const s = plan.summary;
  const over = opts.verbose ? Infinity : (opts.summariseOver ?? SUMMARY_THRESHOLD);
  const lines: string[] = [];
  let summarised = false;
  if (plan.changes.length === 0) {
    lines.push(`No changes. ${s.unchanged} object${s.unchanged === 1 ? '' : 's'} up to date.`);
  } else {
    const tenants = groupByTenant(plan.changes);
    let kindWidth = 0;
    for (const c of plan.changes) kindWidth = Math.max(kindWidth, c.kind.length);
    for (const [tenant, changes] of tenants) {
      lines.push(tenant ? `tenant ${tenant}` : 'no tenant');
      const counts = new Map<string, number>();
      for (const c of changes) if (!c.destructive) counts.set(groupKey(c), (counts.get(groupKey(c)) ?? 0) + 1);
      const shown = new Set<string>();
      for (const c of changes) {
        const prefix = `  ${SIGN[c.action]} ${c.target.padEnd(10)} ${c.kind.padEnd(kindWidth)} `;
        const n = c.destructive ? 1 : counts.get(groupKey(c))!;
        if (n > over) {
          // One line for the group, where its first change would be.
          if (!shown.has(groupKey(c))) lines.push(`${prefix}${n} ${plural(c.kind)}`);
          shown.add(groupKey(c));
          summarised = true;
          continue;
        }
        const flag = c.destructive ? '  (destructive)' : '';
        lines.push(`${prefix}${c.name}${flag}`);
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
  if (byTenant.size > over) lines.push(`Agent cards: ${plan.cards.length} for ${byTenant.size} tenants; in full with -o json or \`systemprompt build\`.`);
  else if (byTenant.size > 0) lines.push(`Agent cards: ${[...byTenant].map(([t, as]) => `${t} (${as.join(', ')})`).join('; ')}; in full with -o json or \`systemprompt build\`.`);
  if (summarised) lines.push(`More than ${over} changes of a kind in a tenant are counted, not listed; -v lists each, -o json holds them all.`);
  if (plan.offline) lines.push('Planned offline, against empty targets.');
  else {
    const r = plan.requests;
    lines.push(`Live state read with ${r.total} request${r.total === 1 ? '' : 's'} (kubernetes ${r.kubernetes}, postgres ${r.postgres}, keycloak ${r.keycloak}).`);
  }
  return `${lines.join('\n')}\n`;
}

const groupKey = (c: Change): string => `${c.action} ${c.target} ${c.kind}`;

/** `User` → `users`, `ClientScope` → `client scopes`. */
export function plural(kind: string): string {
  const words = kind.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();
  return /(s|x|ch|sh)$/.test(words) ? `${words}es` : /[^aeiou]y$/.test(words) ? `${words.slice(0, -1)}ies` : `${words}s`;
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
