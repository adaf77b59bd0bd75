import { didYouMean } from '../config/diagnostics.js';
import type { Repository, TenantConfig, UserConfig } from '../config/model.js';
import { readSchema } from '../config/schema.js';
import { locate } from '../config/source.js';
import { UsageError } from '../errors.js';

/** Finding tenants, users and scopes for admin commands, with errors that say what exists. */

export interface UserRef {
  tenant: TenantConfig;
  user: UserConfig;
}

export function tenantNames(repo: Repository): string[] {
  return repo.tenants.map((t) => t.name);
}

export function findTenant(repo: Repository, name: string): TenantConfig {
  const t = repo.tenants.find((x) => x.name === name);
  if (t) return t;
  const names = tenantNames(repo);
  const guess = didYouMean(name, names);
  throw new UsageError(`tenant \`${name}\` does not exist`, {
    hint: `${guess ? `did you mean \`${guess}\`? ` : ''}tenants: ${names.join(', ') || '(none)'}; create it with \`systemprompt cloud tenant create --name ${name}\``,
  });
}

/** The tenant users go to when none is named (tenancy.default_tenant), which must have a file. */
export function defaultTenant(repo: Repository): TenantConfig {
  const name = repo.project.tenancy.defaultTenant;
  const t = repo.tenants.find((x) => x.name === name);
  if (t) return t;
  throw new UsageError(`the default tenant \`${name}\` (tenancy.default_tenant) has no file tenants/${name}.yaml`, {
    hint: `create it with \`systemprompt cloud tenant create --name ${name}\`, or pass --tenant (tenants: ${tenantNames(repo).join(', ') || 'none'})`,
  });
}

/** Every entry of an email, in any tenant; emails compare without case. */
export function findUsers(repo: Repository, email: string): UserRef[] {
  const key = email.toLowerCase();
  const out: UserRef[] = [];
  for (const tenant of repo.tenants) for (const user of tenant.users) if (user.email.toLowerCase() === key) out.push({ tenant, user });
  return out;
}

/** `tenants/default.yaml:14` */
export function whereDefined(ref: UserRef): { file: string; line: number } {
  return { file: ref.tenant.source.file, line: locate(ref.tenant.source, ['users', ref.user.index]).line };
}

const at = (ref: UserRef): string => {
  const w = whereDefined(ref);
  return `${ref.tenant.name} (${w.file}:${w.line})`;
};

/** The one entry of `email`: in `tenant` when given, else the only one; otherwise a clear error. */
export function selectUser(repo: Repository, email: string, tenant: string | undefined): UserRef {
  const refs = findUsers(repo, email);
  if (tenant !== undefined) {
    findTenant(repo, tenant);
    const ref = refs.find((r) => r.tenant.name === tenant);
    if (ref) return ref;
    throw new UsageError(`user ${email} is not in tenant \`${tenant}\``, {
      hint: refs.length > 0 ? `it is in: ${refs.map(at).join(', ')}` : 'list users with `systemprompt admin users list`',
    });
  }
  return onlyOne(email, refs);
}

export function onlyOne(email: string, refs: UserRef[]): UserRef {
  if (refs.length === 0) {
    throw new UsageError(`user ${email} does not exist`, { hint: `list users with \`systemprompt admin users list\`, or create it with \`systemprompt admin users create --email ${email} --scopes read\`` });
  }
  if (refs.length > 1) {
    throw new UsageError(`user ${email} is in ${refs.length} tenants: ${refs.map(at).join(', ')}`, { hint: 'pick one with --tenant TENANT' });
  }
  return refs[0]!;
}

let emailPattern: RegExp | undefined;

/** The email rule of the tenant schema (the one source of truth). */
export function assertEmail(email: string): void {
  if (!emailPattern) {
    const s = readSchema('tenant') as { properties: { users: { items: { properties: { email: { pattern: string } } } } } };
    emailPattern = new RegExp(s.properties.users.items.properties.email.pattern);
  }
  if (email.length > 254 || !emailPattern.test(email)) {
    throw new UsageError(`invalid email address: ${JSON.stringify(email)}`, { hint: 'an email looks like name@example.com' });
  }
}

/** `read,write` -> ['read', 'write'] (also accepts repeated flags holding lists). */
export function parseScopes(values: readonly string[] | string | undefined): string[] {
  const list = typeof values === 'string' ? [values] : (values ?? []);
  const out: string[] = [];
  for (const v of list) for (const s of v.split(',').map((x) => x.trim())) if (s && !out.includes(s)) out.push(s);
  return out;
}

/** Each scope must be in the catalog of systemprompt.yaml. */
export function assertScopes(repo: Repository, scopes: readonly string[]): void {
  const catalog = Object.keys(repo.project.scopes);
  for (const s of scopes) {
    if (catalog.includes(s)) continue;
    const guess = didYouMean(s, catalog);
    throw new UsageError(`unknown scope \`${s}\`: it is not in the scope catalog`, {
      hint: `${guess ? `did you mean \`${guess}\`? ` : ''}known scopes: ${catalog.join(', ') || '(none)'}; add new ones under scopes: in systemprompt.yaml`,
    });
  }
}
