import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Io } from '../cli/io.js';
import { TENANT_DIR } from '../config/repository.js';
import { readSchema } from '../config/schema.js';
import { newTenantFile } from '../edit/tenant-file.js';
import { editableText } from '../edit/changes.js';
import { UsageError } from '../errors.js';
import { openSession, saveChanges, say, type EditSession, type WriteOptions } from './edit-session.js';
import { findTenant } from './lookup.js';
import { renderTable } from './table.js';

/** `systemprompt cloud tenant ...`: a tenant is the file tenants/<name>.yaml. */

const MODELINE = /^# yaml-language-server: \$schema=.*$/;

/** New tenant files name their schema the way the repository's tenant files already do. */
function modelineFor(session: EditSession): string | undefined {
  const tenantFiles = [...session.files.keys()].filter((f) => f.startsWith(`${TENANT_DIR}/`)).sort();
  const def = `${TENANT_DIR}/${session.repo.project.tenancy.defaultTenant}.yaml`;
  for (const f of [def, ...tenantFiles]) {
    if (!session.files.has(f)) continue;
    const first = editableText(session.files, f).text.split('\n', 1)[0]!.replace(/\r$/, '');
    if (MODELINE.test(first)) return first;
  }
  if (existsSync(path.join(session.root, 'schemas', 'tenant.schema.json'))) return '# yaml-language-server: $schema=../schemas/tenant.schema.json';
  return undefined;
}

export interface TenantCreateOptions extends WriteOptions {
  dir?: string;
  name: string;
  displayName?: string;
}

export async function runTenantCreate(io: Io, opts: TenantCreateOptions): Promise<number> {
  const s = readSchema('tenant') as { properties: { name: { pattern: string; maxLength: number } } };
  if (!new RegExp(s.properties.name.pattern).test(opts.name) || opts.name.length > s.properties.name.maxLength) {
    throw new UsageError(`invalid tenant name ${JSON.stringify(opts.name)}: a tenant name is a DNS-1123 label`, {
      hint: 'lowercase letters, digits and "-", starting and ending with a letter or digit, at most 63 characters (e.g. customer-a)',
    });
  }
  const session = await openSession(io, opts.dir);
  const { repo } = session;
  const existing = repo.tenants.find((t) => t.name === opts.name);
  if (existing) throw new UsageError(`tenant \`${opts.name}\` already exists (${existing.source.file})`);
  const rel = `${TENANT_DIR}/${opts.name}.yaml`;
  if (session.files.has(rel) || session.files.has(`${TENANT_DIR}/${opts.name}.yml`)) throw new UsageError(`${rel} already exists`);
  const { enabled, defaultTenant } = repo.project.tenancy;
  if (!enabled && opts.name !== defaultTenant) {
    throw new UsageError(`multi-tenancy is disabled (tenancy.enabled: false in systemprompt.yaml): only the default tenant \`${defaultTenant}\` may exist`, {
      hint: 'set tenancy.enabled: true in systemprompt.yaml to have several tenants',
    });
  }
  const modeline = modelineFor(session);
  const text = newTenantFile({ name: opts.name, ...(opts.displayName !== undefined ? { displayName: opts.displayName } : {}), ...(modeline ? { modeline } : {}) });
  const saved = await saveChanges(io, session, [{ path: rel, before: null, after: text }], `cloud: create tenant ${opts.name}`, opts);
  if (saved === 'written') {
    say(io, opts, `created tenant ${opts.name} (${rel}); add users with: systemprompt admin users create --email EMAIL --scopes read --tenant ${opts.name}\n`);
  }
  return 0;
}

export interface TenantListOptions {
  dir?: string;
  output: 'text' | 'json';
}

export async function runTenantList(io: Io, opts: TenantListOptions): Promise<number> {
  const { repo } = await openSession(io, opts.dir);
  const def = repo.project.tenancy.defaultTenant;
  const allAgents = repo.agents.filter((a) => a.tenantAware).map((a) => a.name);
  const rows = repo.tenants.map((t) => ({
    name: t.name,
    display_name: t.displayName,
    default: t.name === def,
    users: t.users.length,
    agents: t.agents ?? allAgents,
    deletion_policy: t.deletionPolicy,
    file: t.source.file,
  }));
  if (opts.output === 'json') {
    io.out(`${JSON.stringify({ default_tenant: def, tenants: rows }, null, 2)}\n`);
    return 0;
  }
  if (rows.length === 0) {
    io.out('No tenants. Create one with: systemprompt cloud tenant create --name NAME\n');
    return 0;
  }
  io.out(
    renderTable(
      ['NAME', 'DISPLAY NAME', 'USERS', 'AGENTS', 'FILE'],
      rows.map((r) => [`${r.name}${r.default ? ' (default)' : ''}`, r.display_name, String(r.users), r.agents.join(',') || '-', r.file]),
    ),
  );
  return 0;
}

export interface TenantDeleteOptions extends WriteOptions {
  dir?: string;
  name: string;
  force?: boolean;
}

export async function runTenantDelete(io: Io, opts: TenantDeleteOptions): Promise<number> {
  const session = await openSession(io, opts.dir);
  const { repo } = session;
  const tenant = findTenant(repo, opts.name);
  const { naming, defaultTenant } = repo.project.tenancy;
  const render = (tpl: string): string => tpl.split('{{tenant_id}}').join(tenant.name);
  const users = tenant.users.length;
  const database =
    tenant.deletionPolicy === 'delete'
      ? `database ${render(naming.database)} (deletion_policy: delete: dropped by \`apply --allow-destroy\`)`
      : `database ${render(naming.database)} is kept (deletion_policy: retain)`;
  const meaning = `the next \`systemprompt apply\` plans the removal of realm ${render(naming.realm)} with its ${users} user${users === 1 ? '' : 's'} and namespace ${render(naming.namespace)}; ${database}`;
  if (tenant.name === defaultTenant && !opts.force) {
    throw new UsageError(`refusing to delete the default tenant \`${tenant.name}\`: users created without --tenant go there`, {
      hint: `pass --force to delete it anyway (${meaning}), or first point tenancy.default_tenant at another tenant`,
    });
  }
  const { text, bom } = editableText(session.files, tenant.source.file);
  const saved = await saveChanges(io, session, [{ path: tenant.source.file, before: `${bom ? '\uFEFF' : ''}${text}`, after: null }], `cloud: delete tenant ${tenant.name}`, opts);
  if (saved === 'written') say(io, opts, `deleted tenant ${tenant.name} (${tenant.source.file}); ${meaning}\n`);
  else if (saved === 'dry-run') io.err(`if written: ${meaning}\n`);
  return 0;
}
