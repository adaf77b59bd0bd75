import { compareDiagnostics, hasErrors, type Diagnostic } from './diagnostics.js';
import {
  DEFAULT_NAMING,
  DEFAULT_REDIRECT_URIS,
  DEFAULT_SHARED_REALM,
  DEFAULT_SCOPES,
  type AgentConfig,
  type ProjectConfig,
  type Repository,
  type TenantConfig,
} from './model.js';
import type { LoadCache } from './load-cache.js';
import { checkRules } from './rules.js';
import { validateAgainst, type ValidatorName } from './schema.js';
import { parseSource, type SourceFile } from './source.js';

/** The files of a config repository: repository-relative path (forward slashes) -> bytes or text. */
export type RepoFiles = ReadonlyMap<string, Uint8Array | string>;

export const PROJECT_FILE = 'systemprompt.yaml';
export const TENANT_DIR = 'tenants';
export const AGENT_DIR = 'services/agents';

export interface LoadResult {
  /** Present when there are no errors (warnings may exist). */
  repo?: Repository;
  diagnostics: Diagnostic[];
  /** Text of every file that parsed as UTF-8, for rendering diagnostics with their source line. */
  sources: Map<string, string>;
}

/** Which repository files this product reads. */
export function isConfigPath(rel: string): boolean {
  return rel === PROJECT_FILE || rel === 'systemprompt.yml' || isYamlIn(rel, TENANT_DIR) || isYamlIn(rel, AGENT_DIR);
}

function isYamlIn(rel: string, dir: string): boolean {
  if (!rel.startsWith(`${dir}/`)) return false;
  const rest = rel.slice(dir.length + 1);
  return !rest.includes('/') && /\.ya?ml$/.test(rest) && !rest.startsWith('.');
}

export function fileStem(rel: string): string {
  const base = rel.slice(rel.lastIndexOf('/') + 1);
  return base.replace(/\.ya?ml$/, '');
}

/**
 * Parse, schema-validate and cross-check a whole repository. Pure: no I/O, never throws on input.
 * Every problem of the run is reported at once, sorted by file and position. With `cache`, files
 * parsed and validated by an earlier load with the same content are not parsed again.
 */
export function loadRepository(files: RepoFiles, opts: { cache?: LoadCache } = {}): LoadResult {
  const diagnostics: Diagnostic[] = [];
  const sources = new Map<string, string>();
  const parsed = new Map<string, SourceFile>();
  const paths = [...files.keys()].filter(isConfigPath).sort();
  const cache = opts.cache;
  const validate = (which: ValidatorName, source: SourceFile): Diagnostic[] => (cache ? cache.validate(which, source) : validateAgainst(which, source));
  cache?.keepOnly(new Set(paths));

  for (const rel of paths) {
    const { source, text, diagnostics: d } = cache ? cache.parse(rel, files.get(rel)!) : parseSource(rel, files.get(rel)!);
    for (const x of d) diagnostics.push(x);
    if (text !== undefined) sources.set(rel, text);
    if (source) parsed.set(rel, source);
  }

  // systemprompt.yml is accepted only as a misspelling to report.
  if (files.has('systemprompt.yml')) {
    diagnostics.push({
      code: 'SP005', severity: 'error', file: 'systemprompt.yml', line: 1, col: 1, path: '',
      message: 'project settings are read from systemprompt.yaml, not systemprompt.yml',
      hint: 'rename the file to systemprompt.yaml',
    });
  }

  const projectSource = parsed.get(PROJECT_FILE);
  if (projectSource) for (const x of validate('systemprompt', projectSource)) diagnostics.push(x);
  const project = toProject(projectSource);

  const tenants: TenantConfig[] = [];
  const agents: AgentConfig[] = [];
  for (const [rel, source] of parsed) {
    if (rel.startsWith(`${TENANT_DIR}/`)) {
      const d = validate('tenant', source);
      for (const x of d) diagnostics.push(x);
      // Schema-invalid files still go through the cross-file rules, so one run reports everything;
      // an invalid repository never reaches the compiler.
      tenants.push(toTenant(source));
    } else if (rel.startsWith(`${AGENT_DIR}/`)) {
      const mapForm = 'agents' in source.value && !('name' in source.value);
      const d = validate(mapForm ? 'agentMap' : 'singleAgent', source);
      for (const x of d) diagnostics.push(x);
      for (const x of toAgents(source, mapForm)) agents.push(x);
    }
  }

  for (const x of checkRules({ project, tenants, agents })) diagnostics.push(x);
  diagnostics.sort(compareDiagnostics);
  const result: LoadResult = { diagnostics, sources };
  if (!hasErrors(diagnostics)) {
    tenants.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    agents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    result.repo = { project, tenants, agents };
  }
  return result;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Obj) : {});

function toProject(source: SourceFile | undefined): ProjectConfig {
  const v = source?.value ?? {};
  const tenancy = obj(v.tenancy);
  const naming = obj(tenancy.naming);
  const keycloak = obj(v.keycloak);
  const project: ProjectConfig = {
    tenancy: {
      enabled: typeof tenancy.enabled === 'boolean' ? tenancy.enabled : true,
      isolation: tenancy.isolation === 'organization' ? 'organization' : 'per_tenant',
      realm: typeof tenancy.realm === 'string' ? tenancy.realm : DEFAULT_SHARED_REALM,
      defaultTenant: typeof tenancy.default_tenant === 'string' ? tenancy.default_tenant : 'default',
      naming: {
        realm: typeof naming.realm === 'string' ? naming.realm : DEFAULT_NAMING.realm,
        namespace: typeof naming.namespace === 'string' ? naming.namespace : DEFAULT_NAMING.namespace,
        database: typeof naming.database === 'string' ? naming.database : DEFAULT_NAMING.database,
      },
    },
    scopes: v.scopes && typeof v.scopes === 'object' ? { ...(v.scopes as Record<string, string>) } : { ...DEFAULT_SCOPES },
    keycloak: {
      redirectUris: Array.isArray(keycloak.redirect_uris) ? (keycloak.redirect_uris as string[]) : [...DEFAULT_REDIRECT_URIS],
      ...(typeof keycloak.public_url === 'string' ? { publicUrl: keycloak.public_url.replace(/\/+$/, '') } : {}),
    },
  };
  const servers = obj(v.postgres).servers;
  if (Array.isArray(servers)) {
    project.postgresServers = servers.flatMap((x: unknown, index: number) => {
      const name = obj(x).name;
      return typeof name === 'string' ? [{ name, index }] : [];
    });
  }
  if (source) project.source = source;
  return project;
}

const strings = (v: unknown): string[] => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);

/** Defensive: also used on schema-invalid files, so that the cross-file rules can run on them. */
function toTenant(source: SourceFile): TenantConfig {
  const v = source.value;
  const q = obj(v.quotas);
  const quotas: TenantConfig['quotas'] = {};
  if (typeof q.cpu === 'string' || typeof q.cpu === 'number') quotas.cpu = String(q.cpu);
  if (typeof q.memory === 'string' || typeof q.memory === 'number') quotas.memory = String(q.memory);
  if (typeof q.storage === 'string' || typeof q.storage === 'number') quotas.storage = String(q.storage);
  if (typeof q.pods === 'number') quotas.pods = q.pods;
  if (typeof q.requests_per_minute === 'number') quotas.requestsPerMinute = q.requests_per_minute;
  if (typeof q.requests_per_minute_per_user === 'number') quotas.requestsPerMinutePerUser = q.requests_per_minute_per_user;
  const name = typeof v.name === 'string' ? v.name : fileStem(source.file);
  const users: TenantConfig['users'] = [];
  (Array.isArray(v.users) ? v.users : []).forEach((u: unknown, index: number) => {
    const o = obj(u);
    if (typeof o.email !== 'string') return;
    users.push({ email: o.email, scopes: strings(o.scopes), enabled: o.enabled !== false, index });
  });
  const t: TenantConfig = {
    name,
    displayName: typeof v.display_name === 'string' ? v.display_name : name,
    quotas,
    deletionPolicy: v.deletion_policy === 'delete' ? 'delete' : 'retain',
    users,
    source,
    fileStem: fileStem(source.file),
  };
  if (Array.isArray(v.agents)) t.agents = strings(v.agents);
  if (v.isolation === 'organization' || v.isolation === 'per_tenant') t.isolation = v.isolation;
  const server = obj(v.postgres).server;
  if (typeof server === 'string') t.postgresServer = server;
  return t;
}

function toAgents(source: SourceFile, mapForm: boolean): AgentConfig[] {
  if (!mapForm) {
    const name = typeof source.value.name === 'string' ? source.value.name : fileStem(source.file);
    return [toAgent(source, source.value, name, [])];
  }
  const map = obj(source.value.agents);
  return Object.keys(map).map((id) => toAgent(source, obj(map[id]), typeof obj(map[id]).name === 'string' ? String(obj(map[id]).name) : id, ['agents', id]));
}

function toAgent(source: SourceFile, v: Obj, name: string, basePath: AgentConfig['basePath']): AgentConfig {
  const security = obj(v.security);
  const oauth2 = obj(security.oauth2);
  const a: AgentConfig = {
    name,
    tenantAware: v.tenant_aware === true,
    redirectUris: strings(v.redirect_uris),
    oauth2Scopes: strings(oauth2.scopes),
    isolation: 'per_tenant',
    source,
    basePath,
  };
  if (typeof v.display_name === 'string') a.displayName = v.display_name;
  if (typeof v.description === 'string') a.description = v.description;
  if (typeof v.upstream === 'string') a.upstream = v.upstream;
  if (v.card && typeof v.card === 'object') a.card = v.card as Obj;
  return a;
}
