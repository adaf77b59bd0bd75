import { checkDatabaseName, checkNamespaceName, checkRealmName, isDnsLabel, type NameProblem } from '../compile/names.js';
import { renderTemplate, templateVariables } from '../compile/templates.js';
import { didYouMean, type Diagnostic, type DiagnosticCode, type Severity } from './diagnostics.js';
import { isolationOf, type AgentConfig, type Naming, type ProjectConfig, type TenantConfig } from './model.js';
import { formatPath, locate, type PathSegment, type SourceFile } from './source.js';
import { cardUrls, urlProblem } from './urls.js';

/** The cross-file rules of the config format (DESIGN §1), on schema-valid files. */
export function checkRules(repo: { project: ProjectConfig; tenants: TenantConfig[]; agents: AgentConfig[] }): Diagnostic[] {
  const out: Diagnostic[] = [];
  const { project, tenants, agents } = repo;
  const emit = (source: SourceFile | undefined, file: string, path: PathSegment[], code: DiagnosticCode, message: string, hint?: string, opts: { at?: 'key' | 'value'; severity?: Severity } = {}): void => {
    // A problem with no node to point at (a file name, a file that does not exist) is at 1:1.
    const pos = source ? locate(source, path, opts.at ?? 'value') : { line: 1, col: 1 };
    out.push({ code, severity: opts.severity ?? 'error', file, line: pos.line, col: pos.col, path: formatPath(path), message, ...(hint ? { hint } : {}) });
  };
  const ps = project.source;
  const projectFile = ps?.file ?? 'systemprompt.yaml';

  // Naming templates: only {{tenant_id}}, and it must be there (else every tenant shares one name).
  for (const kind of ['realm', 'namespace', 'database'] as const) {
    const tpl = project.tenancy.naming[kind];
    const vars = templateVariables(tpl);
    const path = ['tenancy', 'naming', kind];
    for (const v of vars.filter((x) => x !== 'tenant_id')) {
      emit(ps, projectFile, path, 'SP034', `unknown template variable \`{{${v}}}\` in tenancy.naming.${kind}`, 'names may only use {{tenant_id}}');
    }
    if (!vars.includes('tenant_id')) {
      emit(ps, projectFile, path, 'SP022', `tenancy.naming.${kind} must contain {{tenant_id}}, or every tenant would share one ${kind}`, `e.g. ${JSON_DEFAULT[kind]}`);
    }
  }

  // Tenants: file name, uniqueness, rendered names.
  const byName = new Map<string, TenantConfig>();
  const rendered: Record<keyof Naming, Map<string, TenantConfig>> = { realm: new Map(), namespace: new Map(), database: new Map() };
  for (const t of tenants) {
    if (!isDnsLabel(t.name)) continue; // already reported by the schema
    if (!isDnsLabel(t.fileStem)) {
      emit(undefined, t.source.file, [], 'SP020', `tenant file name ${JSON.stringify(t.fileStem)} is not a DNS-1123 label`, 'name tenant files <tenant-name>.yaml, with lowercase letters, digits and `-`');
    } else if (t.fileStem !== t.name) {
      emit(t.source, t.source.file, ['name'], 'SP021', `tenant name \`${t.name}\` differs from its file name \`${t.fileStem}\``, `rename the file to tenants/${t.name}.yaml, or set name: ${t.fileStem}`);
    }
    const first = byName.get(t.name);
    if (first) {
      emit(t.source, t.source.file, ['name'], 'SP040', `tenant \`${t.name}\` is already defined in ${first.source.file}`, 'keep one file per tenant');
      continue;
    }
    byName.set(t.name, t);
    for (const kind of ['realm', 'namespace', 'database'] as const) {
      const tpl = project.tenancy.naming[kind];
      if (!templateVariables(tpl).includes('tenant_id')) continue;
      if (kind === 'realm' && isolationOf(project, t) === 'organization') continue; // the shared realm
      const name = renderTemplate(tpl, { tenant_id: t.name });
      const problem: NameProblem = kind === 'realm' ? checkRealmName(name) : kind === 'namespace' ? checkNamespaceName(name) : checkDatabaseName(name);
      if (problem) {
        emit(t.source, t.source.file, ['name'], 'SP022', `tenant \`${t.name}\` renders an invalid ${kind} name: ${problem.message}`, problem.hint);
        continue;
      }
      const clash = rendered[kind].get(name);
      if (clash) emit(t.source, t.source.file, ['name'], 'SP023', `tenant \`${t.name}\` renders ${kind} \`${name}\`, as tenant \`${clash.name}\` does`, `change tenancy.naming.${kind}`);
      else rendered[kind].set(name, t);
    }
  }

  // Organization isolation: one shared realm, which no tenant realm may be; one account per email in it.
  const shared = project.tenancy.realm;
  const inShared = [...byName.values()].filter((t) => isolationOf(project, t) === 'organization');
  const realmClash = rendered.realm.get(shared);
  if (inShared.length && realmClash) {
    emit(realmClash.source, realmClash.source.file, ['name'], 'SP023', `tenant \`${realmClash.name}\` renders realm \`${shared}\`, the shared realm of organization-isolated tenants`, 'change tenancy.realm or tenancy.naming.realm');
  }
  const sharedEmails = new Map<string, TenantConfig>();
  for (const t of inShared) {
    const mine = new Set<string>();
    for (const u of t.users) {
      const key = u.email.toLowerCase();
      if (mine.has(key)) continue; // SP041 below
      mine.add(key);
      const other = sharedEmails.get(key);
      if (other) {
        emit(t.source, t.source.file, ['users', u.index, 'email'], 'SP044', `user ${u.email} is also a user of tenant \`${other.name}\` (${other.source.file}); in organization isolation both share realm \`${shared}\`, where one email is one account`, `keep the user in one of the two tenants, or give one tenant a realm of its own (isolation: per_tenant in its file)`);
      } else sharedEmails.set(key, t);
    }
  }

  // Tenancy switch and default tenant.
  const def = project.tenancy.defaultTenant;
  if (!project.tenancy.enabled && tenants.some((t) => t.name !== def)) {
    for (const t of tenants.filter((x) => x.name !== def)) {
      emit(t.source, t.source.file, ['name'], 'SP036', `multi-tenancy is disabled (tenancy.enabled: false), so only the default tenant \`${def}\` may exist`, 'remove this tenant, or set tenancy.enabled: true');
    }
  }
  if (tenants.length > 0 && !byName.has(def)) {
    emit(ps, projectFile, ps ? ['tenancy', 'default_tenant'] : [], 'SP035', `default tenant \`${def}\` has no file tenants/${def}.yaml`, `create it with \`systemprompt cloud tenant create --name ${def}\``, { severity: 'warning' });
  }

  // Users: scopes in the catalog; unique emails per tenant (Keycloak usernames are case-insensitive).
  const catalog = Object.keys(project.scopes);
  for (const t of byName.values()) {
    const emails = new Map<string, number>();
    for (const u of t.users) {
      const key = u.email.toLowerCase();
      const prev = emails.get(key);
      if (prev !== undefined) {
        emit(t.source, t.source.file, ['users', u.index, 'email'], 'SP041', `user ${u.email} is already defined in this tenant (users[${prev}])`, 'merge the two entries: emails are compared without case');
      } else emails.set(key, u.index);
      u.scopes.forEach((s, i) => {
        if (project.scopes[s] !== undefined) return;
        const guess = didYouMean(s, catalog);
        emit(t.source, t.source.file, ['users', u.index, 'scopes', i], 'SP030', `scope \`${s}\` is not in the scope catalog`, guess ? `did you mean \`${guess}\`?` : `known scopes: ${catalog.join(', ') || '(none)'}; add it under scopes: in systemprompt.yaml`);
      });
    }
  }

  // Agents: uniqueness, map keys, templates, security references.
  const agentByName = new Map<string, AgentConfig>();
  for (const a of agents) {
    const namePath = [...a.basePath, 'name'];
    const mapKey = a.basePath[1];
    if (typeof mapKey === 'string' && mapKey !== a.name) {
      emit(a.source, a.source.file, namePath, 'SP020', `agent name \`${a.name}\` differs from its key \`${mapKey}\``, 'drop `name:` or make it equal the key');
    }
    if (!isDnsLabel(a.name)) {
      emit(undefined, a.source.file, [], 'SP020', `agent name ${JSON.stringify(a.name)} (from the file name) is not a DNS-1123 label`, 'rename the file, or set `name:` to lowercase letters, digits and `-`');
      continue;
    }
    const first = agentByName.get(a.name);
    if (first) emit(a.source, a.source.file, mapKey ? a.basePath : namePath, 'SP042', `agent \`${a.name}\` is already defined in ${first.source.file}`, 'agent names are unique across services/agents/');
    else agentByName.set(a.name, a);

    a.oauth2Scopes.forEach((s, i) => {
      for (const v of templateVariables(s).filter((x) => x !== 'tenant_id' && x !== 'user_id')) {
        const guess = didYouMean(v, ['tenant_id', 'user_id']);
        emit(a.source, a.source.file, [...a.basePath, 'security', 'oauth2', 'scopes', i], 'SP034', `unknown template variable \`{{${v}}}\``, guess ? `did you mean \`{{${guess}}}\`?` : 'templates may use {{tenant_id}} and {{user_id}}');
      }
    });
    checkCardSecurity(a, emit);
    checkCardUrls(a, emit);
  }

  // PostgreSQL servers: listed once; a tenant pins only a listed one.
  const servers = project.postgresServers;
  const serverNames = new Map<string, number>();
  for (const s of servers ?? []) {
    const first = serverNames.get(s.name);
    if (first !== undefined) emit(ps, projectFile, ['postgres', 'servers', s.index, 'name'], 'SP043', `PostgreSQL server \`${s.name}\` is already listed (postgres.servers[${first}])`, 'list each server once: its databases are found by its name');
    else serverNames.set(s.name, s.index);
  }
  for (const t of byName.values()) {
    const pin = t.postgresServer;
    if (pin === undefined || !SERVER_NAME.test(pin) || serverNames.has(pin)) continue;
    const path = ['postgres', 'server'];
    if (!servers) {
      emit(t.source, t.source.file, path, 'SP024', `tenant \`${t.name}\` pins its database to PostgreSQL server \`${pin}\`, but systemprompt.yaml lists no postgres.servers`, `list the servers under postgres.servers in systemprompt.yaml (e.g. \`servers: [{ name: ${pin} }]\`), or remove postgres.server`);
      continue;
    }
    const guess = didYouMean(pin, [...serverNames.keys()]);
    emit(t.source, t.source.file, path, 'SP024', `PostgreSQL server \`${pin}\` is not in postgres.servers`, guess ? `did you mean \`${guess}\`?` : `listed servers: ${[...serverNames.keys()].join(', ')}`);
  }

  // Tenants name existing agents.
  const agentNames = [...agentByName.keys()];
  for (const t of byName.values()) {
    (t.agents ?? []).forEach((name, i) => {
      if (agentByName.has(name)) return;
      const guess = didYouMean(name, agentNames);
      emit(t.source, t.source.file, ['agents', i], 'SP033', `agent \`${name}\` does not exist`, guess ? `did you mean \`${guess}\`?` : `define it in services/agents/${name}.yaml${agentNames.length ? `; known agents: ${agentNames.join(', ')}` : ''}`);
    });
  }
  return out;
}

/** The schema's pattern for server names: a name it refuses is reported once, by the schema. */
const SERVER_NAME = /^[a-z][a-z0-9-]*$/;

const JSON_DEFAULT: Record<keyof Naming, string> = {
  realm: '"{{tenant_id}}"',
  namespace: '"tenant-{{tenant_id}}"',
  database: '"tenant_{{tenant_id}}"',
};

type Emit = (source: SourceFile | undefined, file: string, path: PathSegment[], code: DiagnosticCode, message: string, hint?: string, opts?: { at?: 'key' | 'value'; severity?: Severity }) => void;

/** `card.security` names declared schemes, and (for oauth2) scopes those schemes' flows declare. */
function checkCardSecurity(a: AgentConfig, emit: Emit): void {
  const card = a.card;
  if (!card) return;
  const schemes = (card.securitySchemes && typeof card.securitySchemes === 'object' ? card.securitySchemes : {}) as Record<string, { type?: string; flows?: Record<string, { scopes?: Record<string, string> }> }>;
  const check = (reqs: unknown, base: PathSegment[]): void => {
    if (!Array.isArray(reqs)) return;
    reqs.forEach((req: unknown, i) => {
      if (!req || typeof req !== 'object') return;
      for (const [schemeName, scopes] of Object.entries(req as Record<string, unknown>)) {
        const scheme = schemes[schemeName];
        if (!scheme) {
          const guess = didYouMean(schemeName, Object.keys(schemes));
          emit(a.source, a.source.file, [...base, i, schemeName], 'SP031', `security names scheme \`${schemeName}\`, which card.securitySchemes does not declare`, guess ? `did you mean \`${guess}\`?` : `declare it under card.securitySchemes${Object.keys(schemes).length ? ` (declared: ${Object.keys(schemes).join(', ')})` : ''}`, { at: 'key' });
          continue;
        }
        if (scheme.type !== 'oauth2') continue;
        const declared = new Set<string>();
        for (const flow of Object.values(scheme.flows && typeof scheme.flows === 'object' ? scheme.flows : {})) {
          if (flow && typeof flow.scopes === 'object' && flow.scopes) for (const s of Object.keys(flow.scopes)) declared.add(s);
        }
        (Array.isArray(scopes) ? scopes : []).forEach((s: unknown, j: number) => {
          if (typeof s !== 'string' || declared.has(s)) return;
          const guess = didYouMean(s, declared);
          emit(a.source, a.source.file, [...base, i, schemeName, j], 'SP032', `scope \`${s}\` is not declared by the flows of scheme \`${schemeName}\``, guess ? `did you mean \`${guess}\`?` : `declared scopes: ${[...declared].join(', ') || '(none)'}`);
        });
      }
    });
  };
  check(card.security, [...a.basePath, 'card', 'security']);
  if (Array.isArray(card.skills)) {
    card.skills.forEach((skill: { security?: unknown }, i: number) => check(skill?.security, [...a.basePath, 'card', 'skills', i, 'security']));
  }
}

/** Every URL-valued field of the card is an absolute http(s) URL, also those the compiler replaces. */
function checkCardUrls(a: AgentConfig, emit: Emit): void {
  if (!a.card) return;
  for (const { path, value, anyScheme } of cardUrls(a.card)) {
    const problem = urlProblem(value, { anyScheme });
    if (problem) emit(a.source, a.source.file, [...a.basePath, 'card', ...path], 'SP037', problem.message, problem.hint);
  }
}
