import type { Io } from '../cli/io.js';
import { addScope, addUser, removeScope, removeUser, setEnabled } from '../edit/tenant-file.js';
import type { FileChange } from '../edit/changes.js';
import { UsageError } from '../errors.js';
import { edit, openSession, saveChanges, say, type WriteOptions } from './edit-session.js';
import {
  assertEmail,
  assertScopes,
  defaultTenant,
  findTenant,
  findUsers,
  onlyOne,
  parseScopes,
  selectUser,
  whereDefined,
  type UserRef,
} from './lookup.js';
import { renderTable } from './table.js';

/** `systemprompt admin users ...`: users are entries of `users:` in tenants/<name>.yaml. */

interface Common {
  dir?: string;
}

export interface UsersListOptions extends Common {
  tenant?: string;
  output: 'text' | 'json';
}

function userJson(ref: UserRef): Record<string, unknown> {
  const w = whereDefined(ref);
  return { email: ref.user.email, tenant: ref.tenant.name, scopes: ref.user.scopes, enabled: ref.user.enabled, file: w.file, line: w.line };
}

export async function runUsersList(io: Io, opts: UsersListOptions): Promise<number> {
  const { repo } = await openSession(io, opts.dir);
  const tenants = opts.tenant !== undefined ? [findTenant(repo, opts.tenant)] : repo.tenants;
  const refs: UserRef[] = tenants.flatMap((tenant) => tenant.users.map((user) => ({ tenant, user })));
  if (opts.output === 'json') {
    io.out(`${JSON.stringify({ users: refs.map(userJson) }, null, 2)}\n`);
    return 0;
  }
  if (refs.length === 0) {
    io.out(`No users${opts.tenant !== undefined ? ` in tenant ${opts.tenant}` : ''}. Add one with: systemprompt admin users create --email EMAIL --scopes read,write\n`);
    return 0;
  }
  io.out(
    renderTable(
      ['TENANT', 'EMAIL', 'SCOPES', 'ENABLED'],
      refs.map((r) => [r.tenant.name, r.user.email, r.user.scopes.join(',') || '-', r.user.enabled ? 'yes' : 'no']),
    ),
  );
  return 0;
}

export interface UsersShowOptions extends Common {
  email: string;
  tenant?: string;
  output: 'text' | 'json';
}

export async function runUsersShow(io: Io, opts: UsersShowOptions): Promise<number> {
  const { repo } = await openSession(io, opts.dir);
  const ref = selectUser(repo, opts.email, opts.tenant);
  const j = userJson(ref);
  if (opts.output === 'json') {
    io.out(`${JSON.stringify(j, null, 2)}\n`);
    return 0;
  }
  io.out(
    [
      `email:    ${ref.user.email}`,
      `tenant:   ${ref.tenant.name}`,
      `scopes:   ${ref.user.scopes.join(', ') || '(none)'}`,
      `enabled:  ${ref.user.enabled}`,
      `defined:  ${String(j.file)}:${String(j.line)}`,
    ].join('\n') + '\n',
  );
  const others = findUsers(repo, opts.email).filter((r) => r.tenant !== ref.tenant);
  if (others.length > 0) io.err(`note: ${opts.email} is also in ${others.map((r) => r.tenant.name).join(', ')}\n`);
  return 0;
}

export interface UsersCreateOptions extends Common, WriteOptions {
  email: string;
  scopes?: string[] | string;
  tenant?: string;
  disabled?: boolean;
}

export async function runUsersCreate(io: Io, opts: UsersCreateOptions): Promise<number> {
  assertEmail(opts.email);
  const session = await openSession(io, opts.dir);
  const { repo } = session;
  const scopes = parseScopes(opts.scopes);
  assertScopes(repo, scopes);
  const tenant = opts.tenant !== undefined ? findTenant(repo, opts.tenant) : defaultTenant(repo);
  const existing = findUsers(repo, opts.email).find((r) => r.tenant === tenant);
  if (existing) {
    const w = whereDefined(existing);
    throw new UsageError(`user ${existing.user.email} already exists in tenant \`${tenant.name}\` (${w.file}:${w.line}); emails compare without case`, {
      hint: `change it with \`systemprompt admin users edit ${opts.email} --tenant ${tenant.name} --add-scope SCOPE\``,
    });
  }
  const change = edit(session, tenant.source.file, (t) => addUser(t, { email: opts.email, scopes, enabled: !opts.disabled }));
  const what = `user ${opts.email} in tenant ${tenant.name}${scopes.length ? ` with scopes ${scopes.join(', ')}` : ''}${opts.disabled ? ' (disabled)' : ''}`;
  const saved = await saveChanges(io, session, [change], `admin: create ${what}`, opts);
  if (saved === 'written') say(io, opts, `created ${what} (${tenant.source.file})\n`);
  const elsewhere = findUsers(repo, opts.email).map((r) => r.tenant.name);
  if (elsewhere.length > 0) io.err(`note: ${opts.email} is also in ${elsewhere.join(', ')}: each tenant's realm has its own user\n`);
  return 0;
}

export interface UsersEditOptions extends Common, WriteOptions {
  email: string;
  addScope?: string[];
  removeScope?: string[];
  tenant?: string;
  moveTo?: string;
  enable?: boolean;
  disable?: boolean;
}

/**
 * Which entry an edit touches and where it ends up. `--tenant T` selects the entry in T; when the
 * user is in exactly one other tenant, it assigns the user to T (a move), as in the brief's
 * `admin users edit user@example.com --tenant customer-a`. `--move-to T2` moves the selected entry.
 */
function resolveEdit(repo: Parameters<typeof findUsers>[0], opts: UsersEditOptions): { ref: UserRef; dest: string } {
  const refs = findUsers(repo, opts.email);
  if (opts.tenant !== undefined) {
    findTenant(repo, opts.tenant);
    const inT = refs.find((r) => r.tenant.name === opts.tenant);
    if (inT) return { ref: inT, dest: opts.moveTo ?? opts.tenant };
    if (opts.moveTo !== undefined) {
      throw new UsageError(`user ${opts.email} is not in tenant \`${opts.tenant}\``, {
        hint: refs.length > 0 ? `it is in: ${refs.map((r) => r.tenant.name).join(', ')}` : 'list users with `systemprompt admin users list`',
      });
    }
    if (refs.length > 1) {
      throw new UsageError(`user ${opts.email} is in ${refs.length} tenants (${refs.map((r) => r.tenant.name).join(', ')}), none of them \`${opts.tenant}\`: which one moves there?`, {
        hint: `name it: --tenant ${refs[0]!.tenant.name} --move-to ${opts.tenant}`,
      });
    }
    return { ref: onlyOne(opts.email, refs), dest: opts.tenant };
  }
  const ref = onlyOne(opts.email, refs);
  return { ref, dest: opts.moveTo ?? ref.tenant.name };
}

export async function runUsersEdit(io: Io, opts: UsersEditOptions): Promise<number> {
  const add = parseScopes(opts.addScope);
  const remove = parseScopes(opts.removeScope);
  if (add.length === 0 && remove.length === 0 && opts.tenant === undefined && opts.moveTo === undefined && !opts.enable && !opts.disable) {
    throw new UsageError('nothing to change', { hint: 'pass --add-scope, --remove-scope, --enable, --disable, --tenant or --move-to' });
  }
  if (opts.enable && opts.disable) throw new UsageError('--enable and --disable contradict each other');
  const both = add.find((s) => remove.includes(s));
  if (both) throw new UsageError(`scope \`${both}\` is both added and removed`);

  const session = await openSession(io, opts.dir);
  const { repo } = session;
  const { ref, dest } = resolveEdit(repo, opts);
  assertScopes(repo, add);
  assertScopes(repo, remove.filter((s) => !ref.user.scopes.includes(s)));
  const target = findTenant(repo, dest);

  const scopes = [...ref.user.scopes.filter((s) => !remove.includes(s)), ...add.filter((s) => !ref.user.scopes.includes(s))];
  const enabled = opts.enable ? true : opts.disable ? false : ref.user.enabled;
  const notes: string[] = [];
  const added = add.filter((s) => !ref.user.scopes.includes(s));
  const removed = remove.filter((s) => ref.user.scopes.includes(s));
  if (added.length) notes.push(`added scope${added.length > 1 ? 's' : ''} ${added.join(', ')}`);
  if (removed.length) notes.push(`removed scope${removed.length > 1 ? 's' : ''} ${removed.join(', ')}`);
  if (enabled !== ref.user.enabled) notes.push(enabled ? 'enabled' : 'disabled');

  const changes: FileChange[] = [];
  const email = ref.user.email;
  if (target === ref.tenant) {
    changes.push(
      edit(session, ref.tenant.source.file, (text) => {
        let t = text;
        for (const s of removed) t = removeScope(t, ref.user.index, email, s);
        for (const s of added) t = addScope(t, ref.user.index, email, s);
        if (enabled !== ref.user.enabled) t = setEnabled(t, ref.user.index, email, enabled);
        return t;
      }),
    );
  } else {
    const clash = findUsers(repo, email).find((r) => r.tenant === target);
    if (clash) {
      const w = whereDefined(clash);
      throw new UsageError(`user ${email} already exists in tenant \`${target.name}\` (${w.file}:${w.line})`, {
        hint: `delete one of the two first: \`systemprompt admin users delete ${email} --tenant ${ref.tenant.name}\``,
      });
    }
    notes.unshift(`moved from ${ref.tenant.name} to ${target.name}`);
    changes.push(edit(session, ref.tenant.source.file, (t) => removeUser(t, ref.user.index, email)));
    changes.push(edit(session, target.source.file, (t) => addUser(t, { email, scopes, enabled })));
  }

  const summary = `user ${email} (${target.name}): ${notes.join('; ') || 'no change'}`;
  const saved = await saveChanges(io, session, changes, `admin: edit ${summary}`, opts);
  if (saved === 'unchanged') say(io, opts, `no change: user ${email} in tenant ${target.name} already has scopes ${scopes.join(', ') || '(none)'}, ${enabled ? 'enabled' : 'disabled'}\n`);
  else if (saved === 'written') say(io, opts, `updated ${summary}\n`);
  return 0;
}

export interface UsersDeleteOptions extends Common, WriteOptions {
  email: string;
  tenant?: string;
}

export async function runUsersDelete(io: Io, opts: UsersDeleteOptions): Promise<number> {
  const session = await openSession(io, opts.dir);
  const ref = selectUser(session.repo, opts.email, opts.tenant);
  const change = edit(session, ref.tenant.source.file, (t) => removeUser(t, ref.user.index, ref.user.email));
  const what = `user ${ref.user.email} from tenant ${ref.tenant.name}`;
  const saved = await saveChanges(io, session, [change], `admin: delete ${what}`, opts);
  if (saved === 'written') say(io, opts, `deleted ${what} (${ref.tenant.source.file}); the next apply removes it from the tenant's realm\n`);
  return 0;
}
