import KcAdminClient from '@keycloak/keycloak-admin-client';
import { appendTo } from '../collections.js';
import type { DesiredState } from '../compile/desired.js';
import { clientSecretRef } from '../compile/kubernetes.js';
import { TargetError } from '../errors.js';
import { isKcMarked, KC_MANAGED_ATTR, KC_OWNED_ATTRS, KC_TENANT_ATTR, kcTenantOf, ownedAttributeKeys } from '../model/ownership.js';
import type { Json, JsonObject, LiveResource } from '../model/resource.js';
import type { KeycloakLogin } from './endpoints.js';
import type { Change } from '../plan/plan.js';
import { mapLimit, READ_CONCURRENCY } from './limit.js';
import { readUsers, serviceAccountNames, userShapes, userSpec, type UserShape, type UserSource } from './keycloak-users.js';
import { isTransient, requestRunner } from './retry.js';
import type { ApplyContext, ReadScope, Target } from './target.js';

const PAGE = 500;
type Rep = Record<string, any>;

const leaf = (name: string): string => name.slice(name.indexOf('/') + 1);
const realmOf = (name: string): string => name.slice(0, name.indexOf('/'));
const sorted = (xs: unknown): string[] => (Array.isArray(xs) ? [...xs].map(String).sort() : []);
/** Attributes as Keycloak stores them on roles and organizations: every value a list of strings. */
const asArrays = (attrs: Record<string, unknown>): Record<string, string[]> => Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, Array.isArray(v) ? v.map(String) : [String(v)]]));
const firstValues = (attrs: Record<string, unknown> | undefined): JsonObject =>
  Object.fromEntries(Object.entries(attrs ?? {}).map(([k, v]) => [k, (Array.isArray(v) ? v[0] : v) as Json]));

/**
 * The attributes of a live object that are ours: the keys its owned-attributes list names, the
 * list itself and our markers. An object written before the list existed owns only its markers,
 * so the next plan adds the list (and nothing is removed that we cannot prove we wrote).
 */
export function ownedAttributesOf(attrs: Record<string, unknown> | undefined): JsonObject {
  const keys = new Set([...(ownedAttributeKeys(attrs) ?? []), KC_OWNED_ATTRS, KC_MANAGED_ATTR, KC_TENANT_ATTR]);
  // An empty value counts as absent: Keycloak drops empty attributes of some objects (clients) and
  // keeps them on others (client scopes), whose update cannot remove an attribute.
  const empty = (v: unknown): boolean => v === '' || (Array.isArray(v) && v.every((x) => x === ''));
  return Object.fromEntries(Object.entries(attrs ?? {}).filter(([k, v]) => keys.has(k) && !empty(v))) as JsonObject;
}

/**
 * The attributes to write on an update: the live ones, less those we wrote before and no longer
 * want, plus the desired ones. Attributes others wrote stay.
 */
export function mergeAttributes(current: Record<string, unknown> | undefined, desired: Record<string, unknown> | undefined): Record<string, unknown> {
  const dropped = new Set(Object.keys(ownedAttributesOf(current)).filter((k) => !(desired && k in desired)));
  return { ...Object.fromEntries(Object.entries(current ?? {}).filter(([k]) => !dropped.has(k))), ...(desired ?? {}) };
}

/**
 * Keycloak through @keycloak/keycloak-admin-client. Reads scale with tenants and kinds: one realm
 * list, then per managed realm one list per kind, users in pages of 500 and role memberships
 * through role-member listings, never one request per user.
 */
export class KeycloakTarget implements Target {
  readonly name = 'keycloak' as const;
  readonly requests = { reads: 0, writes: 0 };
  private readonly kc: KcAdminClient;
  private token: { value: string; expires: number } | undefined;
  /** The login in flight: concurrent requests share it (each grant hashes the admin password). */
  private pendingLogin: Promise<string> | undefined;
  private readonly ids = new Map<string, string>();

  private readonly url: string;

  constructor(private readonly login: KeycloakLogin, debug?: (line: string) => void) {
    this.url = login.url.replace(/\/+$/, '');
    this.kc = new KcAdminClient({ baseUrl: this.url, realmName: login.realm ?? 'master' });
    // Our own token provider: master-realm admin tokens live 60 s; get a new one well before.
    this.kc.registerTokenProvider({ getAccessToken: () => this.accessToken() });
    this.call = requestRunner('keycloak', this.requests, kcError, debug, (e) => {
      // a refused token: the next attempt logs in again
      if ((e as { response?: { status?: number } }).response?.status === 401) this.dropToken();
    });
  }

  /** The next request logs in again; a login already in flight is not waited for. */
  private dropToken(): void {
    this.token = undefined;
    this.pendingLogin = undefined;
  }

  /** A valid admin token; one login at a time, however many requests are waiting for it. */
  private accessToken(): Promise<string> {
    if (this.token && this.token.expires - Date.now() > 20_000) return Promise.resolve(this.token.value);
    if (!this.pendingLogin) {
      const p: Promise<string> = this.logIn()
        .then((token) => {
          // dropped while in flight (a 401, a realm just created): not this token
          if (this.pendingLogin === p) this.token = token;
          return token.value;
        })
        .finally(() => {
          if (this.pendingLogin === p) this.pendingLogin = undefined;
        });
      this.pendingLogin = p;
    }
    return this.pendingLogin;
  }

  /** An admin token: password grant for an admin user, client credentials for a confidential client. */
  private async logIn(): Promise<{ value: string; expires: number }> {
    const l = this.login;
    const body = l.clientId
      ? new URLSearchParams({ grant_type: 'client_credentials', client_id: l.clientId, client_secret: l.clientSecret ?? '' })
      : new URLSearchParams({ grant_type: 'password', client_id: 'admin-cli', username: l.username ?? '', password: l.password ?? '' });
    let res: Response;
    try {
      res = await fetch(`${this.url}/realms/${encodeURIComponent(l.realm ?? 'master')}/protocol/openid-connect/token`, { method: 'POST', body });
    } catch (e) {
      throw new TargetError('keycloak', `cannot reach ${this.url}: ${(e as Error).message}`, { transient: true, hint: 'is Keycloak running? `systemprompt dev status`', cause: e });
    }
    if (!res.ok) {
      throw new TargetError('keycloak', `admin login refused (${res.status})`, {
        transient: res.status >= 500,
        status: res.status,
        hint: l.clientId ? 'check SYSTEMPROMPT_KEYCLOAK_CLIENT_ID and SYSTEMPROMPT_KEYCLOAK_CLIENT_SECRET (a confidential client with service accounts and the realm-admin role)' : 'check SYSTEMPROMPT_KEYCLOAK_USER and SYSTEMPROMPT_KEYCLOAK_PASSWORD',
      });
    }
    const json = (await res.json()) as { access_token: string; expires_in: number };
    return { value: json.access_token, expires: Date.now() + json.expires_in * 1000 };
  }

  private readonly call: ReturnType<typeof requestRunner>;

  async read(desired: DesiredState, scope?: ReadScope): Promise<LiveResource[]> {
    const wanted = new Set(desired.resources.filter((r) => r.target === 'keycloak' && r.kind === 'Realm').map((r) => r.name));
    // Ids are remembered from the last read of a realm: forget them now, or an object deleted by
    // hand since (and created again by this run) would be reached under its old id.
    if (!scope) this.ids.clear();
    else for (const key of [...this.ids.keys()]) if (scope.realms.some((realm) => key.startsWith(`${key.split(':')[0]}:${realm}/`))) this.ids.delete(key);
    // Scoped: each realm by name (one request each; a missing one is simply not there).
    const realms = scope
      ? (await mapLimit(scope.realms, READ_CONCURRENCY, (realm) => this.call(`get realm ${realm}`, 'read', () => this.kc.realms.findOne({ realm })))).filter((r): r is NonNullable<typeof r> => !!r)
      : await this.call('list realms', 'read', () => this.kc.realms.find({ briefRepresentation: false }));
    const out: LiveResource[] = [];
    const managedRealms: LiveResource[] = [];
    for (const r of realms as Rep[]) {
      const managed = isKcMarked(r.attributes);
      if (!managed && !wanted.has(r.realm)) continue;
      const spec: JsonObject = managed ? { displayName: r.displayName ?? '', enabled: r.enabled ?? false, attributes: ownedAttributesOf(r.attributes) } : {};
      // Only the shared realm of organization isolation asks for organizations; tenant realms never do.
      if (managed && r.organizationsEnabled) spec.organizationsEnabled = true;
      const live: LiveResource = { target: 'keycloak', kind: 'Realm', name: r.realm, managed, spec };
      const t = kcTenantOf(r.attributes);
      if (t) live.tenant = t;
      out.push(live);
      if (managed) managedRealms.push(live);
    }
    // A few realms at a time (each is several requests of its own), never all of them at once.
    const shapes = userShapes(desired);
    const perRealm = await mapLimit(managedRealms, READ_CONCURRENCY, (live) => this.readRealm(live.name, live, shapes));
    for (const rs of perRealm) for (const r of rs) out.push(r);
    return out;
  }

  private async readRealm(realm: string, realmLive: LiveResource, shapes: UserShape[]): Promise<LiveResource[]> {
    const out: LiveResource[] = [];
    // In a tenant's realm everything is the tenant's; in the shared realm each object says whose it is.
    const push = (kind: string, name: string, managed: boolean, spec: JsonObject, owner?: string): void => {
      const tenant = owner || realmLive.tenant;
      out.push({ target: 'keycloak', kind, name: `${realm}/${name}`, managed, spec, ...(tenant ? { tenant } : {}) });
    };
    const orgs = realmLive.spec.organizationsEnabled === true ? this.readOrganizations(realm, realmLive) : undefined;
    orgs?.catch(() => undefined); // awaited below; a failure must not go unhandled while other reads run
    // One partial export per realm: its roles with their composites, its client scopes with their
    // mappers and role scope mappings, its clients with their scope links (client secrets come back
    // masked and are not read here). It stands for a roles, client-scope and client listing and one
    // request per composite role and per client scope.
    const [profile, exported] = await Promise.all([
      this.call(`get user profile of ${realm}`, 'read', () => this.kc.users.getProfile({ realm })),
      this.call(`export roles, client scopes and clients of ${realm}`, 'read', () => this.kc.realms.export({ realm, exportClients: true, exportGroupsAndRoles: true })),
    ]);
    const roles = ((exported as Rep).roles?.realm ?? []) as Rep[];
    const scopes = ((exported as Rep).clientScopes ?? []) as Rep[];
    const clients = ((exported as Rep).clients ?? []) as Rep[];
    const scopeMappings = new Map<string, string[]>();
    for (const m of ((exported as Rep).scopeMappings ?? []) as Rep[]) if (m.clientScope) scopeMappings.set(m.clientScope, sorted(m.roles));
    realmLive.spec.unmanagedAttributePolicy = ((profile as Rep).unmanagedAttributePolicy ?? 'DISABLED') as string;
    realmLive.spec.namesRequired = namesRequired(profile as Rep);

    const managedRoles = roles.filter((r) => isKcMarked(r.attributes));
    // Role memberships through one member listing per managed role; the users from the same
    // listings and counts when they suffice, else from brief listings (keycloak-users.ts).
    const members = Promise.all(
      managedRoles.map(async (r) => [r.name as string, (await this.pages(`list members of role ${realm}/${r.name}`, (first, max) => this.kc.roles.findUsersWithRole({ realm, name: r.name, first, max, briefRepresentation: true }))) as Rep[]] as const),
    );
    const users = readUsers(
      this.userSource(realm),
      shapes,
      serviceAccountNames(clients),
      members.then((ms) => ms.flatMap(([, us]) => us)),
    );
    // Awaited below, after the client scopes: a failure before that must not go unhandled meanwhile.
    users.catch(() => undefined);
    members.catch(() => undefined);
    for (const r of roles) {
      if (r.id) this.ids.set(`role:${realm}/${r.name}`, r.id);
      const managed = isKcMarked(r.attributes);
      const spec: JsonObject = { description: r.description ?? '', attributes: firstValues(ownedAttributesOf(r.attributes)) };
      // The realm roles it carries (a hand-added client role is not ours to compare).
      if (managed) spec.composites = sorted(r.composites?.realm);
      push('RealmRole', r.name, managed, spec, kcTenantOf(r.attributes));
    }
    const managedScopeNames = new Set<string>();
    for (const s of scopes) {
      this.ids.set(`scope:${realm}/${s.name}`, s.id);
      const managed = isKcMarked(s.attributes);
      if (managed) managedScopeNames.add(s.name);
      push('ClientScope', s.name, managed, {
        description: s.description ?? '',
        protocol: s.protocol ?? '',
        attributes: ownedAttributesOf(s.attributes),
        roleScopeMappings: managed ? (scopeMappings.get(s.name) ?? []) : [],
        protocolMappers: mappersOf(s.protocolMappers),
      }, kcTenantOf(s.attributes));
    }
    for (const c of clients) {
      this.ids.set(`client:${realm}/${c.clientId}`, c.id);
      const managed = isKcMarked(c.attributes);
      push('Client', c.clientId, managed, {
        name: c.name ?? '',
        enabled: c.enabled ?? false,
        protocol: c.protocol ?? '',
        publicClient: c.publicClient ?? false,
        clientAuthenticatorType: c.clientAuthenticatorType ?? '',
        standardFlowEnabled: c.standardFlowEnabled ?? false,
        implicitFlowEnabled: c.implicitFlowEnabled ?? false,
        directAccessGrantsEnabled: c.directAccessGrantsEnabled ?? false,
        serviceAccountsEnabled: c.serviceAccountsEnabled ?? false,
        redirectUris: sorted(c.redirectUris),
        webOrigins: sorted(c.webOrigins),
        attributes: ownedAttributesOf(c.attributes),
        // Keycloak's own default scopes (profile, email, ...) stay; we compare the ones we manage.
        defaultClientScopes: sorted(c.defaultClientScopes).filter((n) => managedScopeNames.has(n)),
        optionalClientScopes: sorted(c.optionalClientScopes).filter((n) => managedScopeNames.has(n)),
        protocolMappers: mappersOf(c.protocolMappers),
      }, kcTenantOf(c.attributes));
    }

    const rolesOfUser = new Map<string, string[]>();
    const { confirmed, full, unowned } = await users;
    for (const [role, us] of await members) for (const u of us) appendTo(rolesOfUser, u.id as string, role);
    const rolesOf = (u: Rep): string[] => rolesOfUser.get(u.id) ?? [];
    const membership = orgs ? await orgs : undefined;
    if (membership) for (const o of membership.organizations) out.push(o);
    // The shared realm: a user is the tenant's whose organization it is a member of.
    const pushUser = (u: Rep, spec: JsonObject): void => {
      const org = membership?.ofUser.get(u.id)?.sort();
      if (membership) spec.organization = (org ?? []).join(',');
      push('User', u.username, true, spec, org?.length === 1 ? membership!.tenantOf.get(org[0]!) : undefined);
    };
    for (const { user: u, attributes } of confirmed) pushUser(u, userSpec(u, rolesOf(u), attributes));
    for (const u of full) pushUser(u, userSpec(u, rolesOf(u), ownedAttributesOf(u.attributes)));
    // Not ours: only its name counts (a conflict when the YAML wants it); nothing of it is shown.
    for (const u of unowned) push('User', u.username, false, {});
    for (const u of [...confirmed.map((c) => c.user), ...full, ...unowned]) this.ids.set(`user:${realm}/${u.username}`, u.id);
    return out;
  }

  /**
   * The organizations of the shared realm, their members (one paged listing per organization of
   * ours) and whether a login naming an organization is refused to non-members (the browser flow's
   * organization step). Sets the realm's `organizationMembershipRequired`.
   */
  private async readOrganizations(realm: string, realmLive: LiveResource): Promise<{ organizations: LiveResource[]; ofUser: Map<string, string[]>; tenantOf: Map<string, string> }> {
    const [list, required] = await Promise.all([
      this.pages(`list organizations of ${realm}`, (first, max) => this.kc.organizations.find({ realm, first, max, briefRepresentation: false } as never)),
      this.membershipRequired(realm),
    ]);
    realmLive.spec.organizationMembershipRequired = required.required;
    const organizations: LiveResource[] = [];
    const ofUser = new Map<string, string[]>();
    const tenantOf = new Map<string, string>();
    const ours = (list as Rep[]).filter((o) => isKcMarked(o.attributes));
    for (const o of list as Rep[]) {
      this.ids.set(`org:${realm}/${o.alias}`, o.id);
      const tenant = kcTenantOf(o.attributes);
      if (tenant) tenantOf.set(o.alias, tenant);
      organizations.push({
        target: 'keycloak',
        kind: 'Organization',
        name: `${realm}/${o.alias}`,
        managed: isKcMarked(o.attributes),
        spec: { name: o.name ?? '', description: o.description ?? '', enabled: o.enabled ?? false, attributes: firstValues(ownedAttributesOf(o.attributes)) },
        ...(tenant ? { tenant } : {}),
      });
    }
    const members = await mapLimit(ours, READ_CONCURRENCY, async (o) => [o.alias as string, await this.pages(`list members of organization ${realm}/${o.alias}`, (first, max) => this.kc.organizations.listMembers({ realm, orgId: o.id, first, max, briefRepresentation: true } as never))] as const);
    for (const [alias, us] of members) for (const u of us as Rep[]) appendTo(ofUser, u.id as string, alias);
    return { organizations, ofUser, tenantOf };
  }

  /** The organization step of the realm's browser flow, and whether it requires membership. */
  private async membershipRequired(realm: string): Promise<{ required: boolean; executionId?: string; config?: Rep }> {
    const r = (await this.call(`get realm ${realm}`, 'read', () => this.kc.realms.findOne({ realm }))) as Rep | undefined;
    const flow = (r?.browserFlow as string | undefined) ?? 'browser';
    const executions = (await this.call(`list executions of flow ${realm}/${flow}`, 'read', () => this.kc.authenticationManagement.getExecutions({ realm, flow }))) as Rep[];
    const step = executions.find((e) => e.providerId === 'organization');
    if (!step) return { required: false };
    if (!step.authenticationConfig) return { required: false, executionId: step.id };
    const config = (await this.call(`get organization step config of ${realm}`, 'read', () => this.kc.authenticationManagement.getConfig({ realm, id: step.authenticationConfig }))) as Rep;
    return { required: config?.config?.requiresUserMembership === 'true', executionId: step.id, config };
  }

  private pages<T>(what: string, fetchPage: (first: number, max: number) => Promise<T[]>): Promise<T[]> {
    return everyPage((first, max) => this.call(`${what} [${first}..]`, 'read', () => fetchPage(first, max)));
  }

  /** The user calls of one realm, counted and retried like every other request. */
  private userSource(realm: string): UserSource {
    return {
      count: (q) => this.call(`count users of ${realm}${q ? ` carrying ${q}` : ''}`, 'read', () => this.kc.users.count({ realm, ...(q ? { q } : {}) })),
      list: (q, brief) => this.pages(`list users of ${realm}${q ? ` carrying ${q}` : ''}${brief ? '' : ' (full)'}`, (first, max) => this.kc.users.find({ realm, first, max, briefRepresentation: brief, ...(q ? { q } : {}) })),
      get: (id) => this.call(`get user ${realm}/${id}`, 'read', () => this.kc.users.findOne({ realm, id })),
    };
  }

  async apply(change: Change, ctx: ApplyContext): Promise<void> {
    const spec = (change.action === 'delete' ? {} : ctx.specOf(change)) as Rep;
    switch (change.kind) {
      case 'Realm':
        return this.applyRealm(change, spec);
      case 'RealmRole':
        return this.applyRole(change, spec);
      case 'ClientScope':
        return this.applyScope(change, spec);
      case 'Client': {
        const ours = ourClientScopes(ctx.desired).get(realmOf(change.name)) ?? new Set<string>();
        return this.applyClient(change, spec, ours, ctx);
      }
      case 'User':
        return this.applyUser(change, spec);
      case 'Organization':
        return this.applyOrganization(change, spec);
      default:
        throw new TargetError('keycloak', `unknown kind ${change.kind}`);
    }
  }

  private async applyRealm(c: Change, spec: Rep): Promise<void> {
    const realm = c.name;
    if (c.action === 'delete') {
      await this.call(`delete realm ${realm}`, 'write', () => this.kc.realms.del({ realm }));
      return;
    }
    const { unmanagedAttributePolicy, namesRequired: wantNames, organizationMembershipRequired, ...rep } = spec;
    if (c.action === 'create') {
      // A create still in flight from an interrupted apply answers 409 and may yet roll back:
      // go on only once the realm is really there.
      for (let attempt = 1; ; attempt++) {
        await this.ignoreConflict(() => this.call(`create realm ${realm}`, 'write', () => this.kc.realms.create({ realm, ...rep })));
        if (await this.call(`get realm ${realm}`, 'read', () => this.kc.realms.findOne({ realm }))) break;
        if (attempt >= 5) throw new TargetError('keycloak', `realm ${realm} was not there after creating it`, { transient: true });
        await new Promise((r) => setTimeout(r, 500 * attempt));
      }
      // A token carries the admin's roles as they were when it was issued: the new realm's
      // management roles (granted through master's composite `admin` role) are only in a new one.
      // A confidential client's token would otherwise be refused (403) on the realm it just made.
      this.dropToken();
    } else {
      const current = (await this.call(`get realm ${realm}`, 'read', () => this.kc.realms.findOne({ realm }))) as Rep | undefined;
      await this.call(`update realm ${realm}`, 'write', () => this.kc.realms.update({ realm }, { ...rep, attributes: mergeAttributes(current?.attributes, rep.attributes) }));
    }
    const profile = (await this.call(`get user profile of ${realm}`, 'read', () => this.kc.users.getProfile({ realm }))) as Rep;
    if (profile.unmanagedAttributePolicy !== unmanagedAttributePolicy || namesRequired(profile) !== wantNames) {
      const attributes = (profile.attributes ?? []).map((a: Rep) => {
        if (wantNames || (a.name !== 'firstName' && a.name !== 'lastName')) return a;
        const { required: _r, ...rest } = a;
        return rest;
      });
      await this.call(`update user profile of ${realm}`, 'write', () => this.kc.users.updateProfile({ realm, ...profile, attributes, unmanagedAttributePolicy } as never));
    }
    if (organizationMembershipRequired !== undefined) await this.requireMembership(realm, organizationMembershipRequired === true);
  }

  /** The browser flow's organization step refuses (or not) a login naming an organization the user is not in. */
  private async requireMembership(realm: string, required: boolean): Promise<void> {
    const now = await this.membershipRequired(realm);
    if (now.required === required) return;
    if (!now.executionId) throw new TargetError('keycloak', `realm ${realm} has no organization step in its browser flow`, { hint: 'organizations must be enabled, and the browser flow must be Keycloak\'s (or contain the "Organization Identity-First Login" step)' });
    const config = { requiresUserMembership: String(required) };
    if (now.config) {
      await this.call(`update organization step config of ${realm}`, 'write', () => this.kc.authenticationManagement.updateConfig({ realm, ...now.config, config: { ...now.config!.config, ...config } } as never));
    } else {
      await this.call(`configure organization step of ${realm}`, 'write', () => this.kc.authenticationManagement.createConfig({ realm, id: now.executionId!, alias: 'systemprompt-organization', config } as never));
    }
  }

  private async applyOrganization(c: Change, spec: Rep): Promise<void> {
    const realm = realmOf(c.name);
    const alias = leaf(c.name);
    if (c.action === 'delete') {
      const id = await this.idOf('org', realm, alias);
      await this.call(`delete organization ${c.name}`, 'write', () => this.kc.organizations.delById({ realm, id }));
      this.ids.delete(`org:${realm}/${alias}`);
      return;
    }
    if (c.action === 'create') {
      await this.ignoreConflict(() => this.call(`create organization ${c.name}`, 'write', () => this.kc.organizations.create({ realm, alias, ...spec, attributes: asArrays(spec.attributes ?? {}) } as never)));
      return;
    }
    const id = await this.idOf('org', realm, alias);
    // PUT replaces the organization: send what is there (domains, redirect URL) with our fields.
    const current = (await this.call(`get organization ${c.name}`, 'read', () => this.kc.organizations.findOne({ realm, id }))) as Rep;
    await this.call(`update organization ${c.name}`, 'write', () => this.kc.organizations.updateById({ realm, id }, { ...current, ...spec, alias, attributes: asArrays(mergeAttributes(current.attributes, spec.attributes)) } as never));
  }

  private async applyRole(c: Change, spec: Rep): Promise<void> {
    const realm = realmOf(c.name);
    const name = leaf(c.name);
    if (c.action === 'delete') {
      await this.call(`delete role ${c.name}`, 'write', () => this.kc.roles.delByName({ realm, name }));
      return;
    }
    const rep = { name, description: spec.description, attributes: asArrays(spec.attributes ?? {}) };
    const want = (spec.composites ?? []) as string[];
    let have: string[] = [];
    if (c.action === 'create') await this.ignoreConflict(() => this.call(`create role ${c.name}`, 'write', () => this.kc.roles.create({ realm, ...rep })));
    else {
      if (c.diff.some((d) => !d.path.startsWith('composites'))) {
        const current = (await this.call(`get role ${c.name}`, 'read', () => this.kc.roles.findOneByName({ realm, name }))) as Rep | undefined;
        await this.call(`update role ${c.name}`, 'write', () => this.kc.roles.updateByName({ realm, name }, { ...rep, attributes: asArrays(mergeAttributes(current?.attributes, rep.attributes)) }));
      }
      const before = c.diff.find((d) => d.path === 'composites')?.before;
      have = Array.isArray(before) ? (before as string[]) : want;
    }
    if (want.length || have.length) {
      const { id } = await this.roleRep(realm, name);
      await this.syncRoles(`role ${c.name}`, realm, have, want, {
        add: (roles) => this.kc.roles.createComposite({ realm, roleId: id }, roles),
        del: (roles) => this.kc.roles.delCompositeRoles({ realm, id }, roles),
      });
    }
  }

  private async roleRep(realm: string, name: string): Promise<{ id: string; name: string }> {
    let id = this.ids.get(`role:${realm}/${name}`);
    if (!id) {
      const r = (await this.call(`get role ${realm}/${name}`, 'read', () => this.kc.roles.findOneByName({ realm, name }))) as Rep | undefined;
      if (!r?.id) throw new TargetError('keycloak', `role ${name} does not exist in realm ${realm}`);
      id = r.id as string;
      this.ids.set(`role:${realm}/${name}`, id);
    }
    return { id, name };
  }

  private async idOf(kind: 'scope' | 'client' | 'user' | 'org', realm: string, name: string): Promise<string> {
    const key = `${kind}:${realm}/${name}`;
    let id = this.ids.get(key);
    if (id) return id;
    if (kind === 'scope') {
      const s = (await this.call(`find client scope ${realm}/${name}`, 'read', () => this.kc.clientScopes.findOneByName({ realm, name }))) as Rep | undefined;
      id = s?.id;
    } else if (kind === 'client') {
      const cs = (await this.call(`find client ${realm}/${name}`, 'read', () => this.kc.clients.find({ realm, clientId: name }))) as Rep[];
      id = cs[0]?.id;
    } else if (kind === 'org') {
      // The search matches names and domains: our organizations are named as their alias.
      const os = (await this.call(`find organization ${realm}/${name}`, 'read', () => this.kc.organizations.find({ realm, search: name, exact: true } as never))) as Rep[];
      id = os.find((o) => o.alias === name)?.id;
    } else {
      const us = (await this.call(`find user ${realm}/${name}`, 'read', () => this.kc.users.find({ realm, username: name, exact: true }))) as Rep[];
      id = us[0]?.id;
    }
    if (!id) throw new TargetError('keycloak', `${kind === 'org' ? 'organization' : kind} ${name} does not exist in realm ${realm}`);
    this.ids.set(key, id);
    return id;
  }

  private async applyScope(c: Change, spec: Rep): Promise<void> {
    const realm = realmOf(c.name);
    const name = leaf(c.name);
    if (c.action === 'delete') {
      const id = await this.idOf('scope', realm, name);
      await this.call(`delete client scope ${c.name}`, 'write', () => this.kc.clientScopes.del({ realm, id }));
      return;
    }
    const { roleScopeMappings, protocolMappers, ...rep } = spec;
    let current: Rep | undefined;
    if (c.action === 'create') {
      await this.ignoreConflict(() => this.call(`create client scope ${c.name}`, 'write', () => this.kc.clientScopes.create({ realm, name, ...rep, protocolMappers: withProtocol(protocolMappers) })));
    } else {
      const id = await this.idOf('scope', realm, name);
      current = (await this.call(`get client scope ${c.name}`, 'read', () => this.kc.clientScopes.findOne({ realm, id }))) as Rep;
      const attributes = mergeAttributes(current.attributes, rep.attributes);
      await this.call(`update client scope ${c.name}`, 'write', () => this.kc.clientScopes.update({ realm, id }, { ...current, ...rep, attributes, name, protocolMappers: undefined } as never));
      await this.syncMappers(`client scope ${c.name}`, current.protocolMappers ?? [], protocolMappers ?? [], {
        add: (m) => this.kc.clientScopes.addProtocolMapper({ realm, id }, m),
        del: (mid) => this.kc.clientScopes.delProtocolMapper({ realm, id, mapperId: mid }),
      });
    }
    const id = await this.idOf('scope', realm, name);
    const have = c.action === 'create' ? [] : ((await this.call(`list role mappings of ${c.name}`, 'read', () => this.kc.clientScopes.listRealmScopeMappings({ realm, id }))) as Rep[]).map((r) => r.name as string);
    await this.syncRoles(c.name, realm, have, roleScopeMappings ?? [], {
      add: (reps) => this.kc.clientScopes.addRealmScopeMappings({ realm, id }, reps as never),
      del: (reps) => this.kc.clientScopes.delRealmScopeMappings({ realm, id }, reps as never),
    });
  }

  /** Make the realm roles of a user or client scope go from `have` to `want`: one request each way. */
  private async syncRoles(what: string, realm: string, have: string[], want: string[], api: { add: (reps: Array<{ id: string; name: string }>) => Promise<unknown>; del: (reps: Array<{ id: string; name: string }>) => Promise<unknown> }): Promise<void> {
    const add = want.filter((r) => !have.includes(r));
    const del = have.filter((r) => !want.includes(r));
    if (add.length) {
      const reps = await Promise.all(add.map((r) => this.roleRep(realm, r)));
      await this.call(`grant ${add.join(', ')} to ${what}`, 'write', () => api.add(reps));
    }
    if (del.length) {
      const reps = await Promise.all(del.map((r) => this.roleRep(realm, r)));
      await this.call(`revoke ${del.join(', ')} from ${what}`, 'write', () => api.del(reps));
    }
  }

  private async syncMappers(what: string, have: Rep[], want: Rep[], api: { add: (m: Rep) => Promise<unknown>; del: (id: string) => Promise<unknown> }): Promise<void> {
    const norm = (m: Rep): string => JSON.stringify(mappersOf([m])[0]);
    const wantKeys = new Set(want.map(norm));
    const haveKeys = new Set(have.map(norm));
    // Every mapper on an object of ours is ours: one we no longer want goes.
    for (const m of have) if (!wantKeys.has(norm(m))) await this.call(`delete mapper ${m.name} of ${what}`, 'write', () => api.del(m.id));
    for (const m of want) if (!haveKeys.has(norm(m))) await this.call(`add mapper ${m.name} to ${what}`, 'write', () => api.add({ protocol: 'openid-connect', ...m }));
  }

  /** `ours`: the client scopes we manage in this realm; Keycloak's own links (profile, email, ...) stay. */
  private async applyClient(c: Change, spec: Rep, ours: Set<string>, ctx: ApplyContext): Promise<void> {
    const realm = realmOf(c.name);
    const clientId = leaf(c.name);
    if (c.action === 'delete') {
      const id = await this.idOf('client', realm, clientId);
      await this.call(`delete client ${c.name}`, 'write', () => this.kc.clients.del({ realm, id }));
      return;
    }
    const { defaultClientScopes, optionalClientScopes, protocolMappers, ...rep } = spec;
    if (c.action === 'create') {
      // Made again after a deletion by hand: with the secret the tenant's Secret holds, so the
      // applications that use it keep working (a first create lets Keycloak generate one).
      const secret = rep.publicClient ? undefined : await this.storedSecret(c, realm, clientId, ctx);
      await this.ignoreConflict(() => this.call(`create client ${c.name}`, 'write', () => this.kc.clients.create({ realm, clientId, ...rep, ...(secret ? { secret } : {}), protocolMappers: withProtocol(protocolMappers) })));
    }
    const id = await this.idOf('client', realm, clientId);
    if (c.action === 'update') {
      const current = (await this.call(`get client ${c.name}`, 'read', () => this.kc.clients.findOne({ realm, id }))) as Rep;
      const attributes = mergeAttributes(current.attributes, rep.attributes);
      await this.call(`update client ${c.name}`, 'write', () => this.kc.clients.update({ realm, id }, { ...current, ...rep, attributes, clientId, protocolMappers: undefined } as never));
      await this.syncMappers(`client ${c.name}`, current.protocolMappers ?? [], protocolMappers ?? [], {
        add: (m) => this.kc.clients.addProtocolMapper({ realm, id }, m as never),
        del: (mid) => this.kc.clients.delProtocolMapper({ realm, id, mapperId: mid }),
      });
    }
    const [d, o] = await Promise.all([
      this.call(`list default scopes of ${c.name}`, 'read', () => this.kc.clients.listDefaultClientScopes({ realm, id })),
      this.call(`list optional scopes of ${c.name}`, 'read', () => this.kc.clients.listOptionalClientScopes({ realm, id })),
    ]);
    const lists = [
      { kind: 'default', have: (d as Rep[]).map((x) => x.name as string), want: (defaultClientScopes ?? []) as string[], add: this.kc.clients.addDefaultClientScope, del: this.kc.clients.delDefaultClientScope },
      { kind: 'optional', have: (o as Rep[]).map((x) => x.name as string), want: (optionalClientScopes ?? []) as string[], add: this.kc.clients.addOptionalClientScope, del: this.kc.clients.delOptionalClientScope },
    ];
    // A scope is either default or optional: unlink what we manage from the wrong list first.
    for (const l of lists) {
      for (const n of l.have.filter((x) => ours.has(x) && !l.want.includes(x))) {
        const clientScopeId = await this.idOf('scope', realm, n);
        await this.call(`unlink ${l.kind} scope ${n} from ${c.name}`, 'write', () => l.del({ realm, id, clientScopeId }));
      }
    }
    for (const l of lists) {
      for (const n of l.want.filter((x) => !l.have.includes(x))) {
        const clientScopeId = await this.idOf('scope', realm, n);
        await this.call(`link ${l.kind} scope ${n} to ${c.name}`, 'write', () => l.add({ realm, id, clientScopeId }));
      }
    }
  }

  /**
   * The secret a client had, from a tenant Secret that holds it: the tenant's own, or for a shared
   * client (organization isolation) the first of the realm's tenants that has one.
   */
  private async storedSecret(c: Change, realm: string, clientId: string, ctx: ApplyContext): Promise<string | undefined> {
    const holders = c.tenant ? [c.tenant] : ctx.desired.tenants.filter((t) => t.realm === realm && t.agents.some((a) => a.clientId === clientId)).map((t) => t.name);
    for (const tenant of holders.slice(0, 3)) {
      const v = await ctx.secrets.stored(tenant, clientSecretRef(clientId));
      if (v) return v;
    }
    return undefined;
  }

  private async applyUser(c: Change, spec: Rep): Promise<void> {
    const realm = realmOf(c.name);
    const username = leaf(c.name);
    if (c.action === 'delete') {
      const id = await this.idOf('user', realm, username);
      if (await this.ours(c.name, realm, id)) await this.call(`delete user ${c.name}`, 'write', () => this.kc.users.del({ realm, id }));
      return;
    }
    const { realmRoles, organization, ...rep } = spec;
    let have: string[] = [];
    if (c.action === 'create') {
      await this.ignoreConflict(() => this.call(`create user ${c.name}`, 'write', () => this.kc.users.create({ realm, username, ...rep })));
    }
    const id = await this.idOf('user', realm, username);
    if (c.action === 'update') {
      const current = await this.ours(c.name, realm, id);
      if (!current) throw new TargetError('keycloak', `user ${c.name} is gone since the plan`, { hint: 'plan again' });
      const fields = new Set(c.diff.map((d) => d.path.split(/[.[]/)[0]));
      if ([...fields].some((f) => f !== 'realmRoles' && f !== 'organization')) {
        // A user PUT replaces all attributes: send the full map.
        const attributes = mergeAttributes(current.attributes, rep.attributes);
        await this.call(`update user ${c.name}`, 'write', () => this.kc.users.update({ realm, id }, { ...current, ...rep, attributes }));
      }
      const before = c.diff.find((d) => d.path === 'realmRoles')?.before;
      have = Array.isArray(before) ? (before as string[]) : (realmRoles as string[]);
    }
    await this.syncRoles(c.name, realm, have, realmRoles ?? [], {
      add: (roles) => this.kc.users.addRealmRoleMappings({ realm, id, roles }),
      del: (roles) => this.kc.users.delRealmRoleMappings({ realm, id, roles }),
    });
    if (organization !== undefined) {
      const before = c.action === 'create' ? undefined : c.diff.find((d) => d.path === 'organization')?.before;
      const had = c.action === 'create' ? [] : typeof before === 'string' ? before.split(',').filter(Boolean) : [organization as string];
      await this.syncMembership(c.name, realm, id, had, organization as string);
    }
  }

  /** The user ends up a member of `want` only; a repeated add (an interrupted apply) is no error. */
  private async syncMembership(what: string, realm: string, userId: string, had: string[], want: string): Promise<void> {
    for (const alias of had.filter((a) => a !== want)) {
      const orgId = await this.idOf('org', realm, alias);
      await this.call(`remove ${what} from organization ${alias}`, 'write', () => this.kc.organizations.delMember({ realm, orgId, userId }));
    }
    if (!had.includes(want)) {
      const orgId = await this.idOf('org', realm, want);
      await this.ignoreConflict(() => this.call(`add ${what} to organization ${want}`, 'write', () => this.kc.organizations.addMember({ realm, orgId, userId })));
    }
  }

  /**
   * A user about to be changed or deleted, read in full: it must carry our marker exactly (users are
   * listed by an attribute search, which ignores case; the marker does not). Undefined when gone.
   */
  private async ours(name: string, realm: string, id: string): Promise<Rep | undefined> {
    const current = (await this.call(`get user ${name}`, 'read', () => this.kc.users.findOne({ realm, id }))) as Rep | undefined;
    if (current && !isKcMarked(current.attributes)) {
      throw new TargetError('keycloak', `user ${name} does not carry ${KC_MANAGED_ATTR}: systemprompt did not write it and never changes it`, {
        hint: 'rename or remove the user in the YAML, or remove the user from Keycloak',
      });
    }
    return current;
  }

  /** An interrupted apply may have created the object already: creating it again is not an error. */
  private async ignoreConflict(fn: () => Promise<unknown>): Promise<void> {
    try {
      await fn();
    } catch (e) {
      if (!(e instanceof TargetError && e.status === 409)) throw e;
    }
  }

  /** The secret of a confidential client (for the tenant's systemprompt-oidc Secret). */
  async clientSecret(realm: string, clientId: string): Promise<string | undefined> {
    const id = await this.idOf('client', realm, clientId);
    const s = (await this.call(`get secret of client ${realm}/${clientId}`, 'read', () => this.kc.clients.getClientSecret({ realm, id }))) as Rep;
    return s?.value as string | undefined;
  }

  async close(): Promise<void> {}
}

/**
 * Every item of a paged listing, `page` at a time. Each request asks for one more than it keeps: a
 * short answer is the last page, so a listing of exactly `page` items takes one request, not a
 * second, empty one.
 */
export async function everyPage<T>(fetchPage: (first: number, max: number) => Promise<T[]>, page = PAGE): Promise<T[]> {
  const all: T[] = [];
  for (let first = 0; ; first += page) {
    const items = await fetchPage(first, page + 1);
    for (const x of items.slice(0, page)) all.push(x);
    if (items.length <= page) return all;
  }
}

const scopeIndex = new WeakMap<DesiredState, Map<string, Set<string>>>();
/** The client scopes we manage, per realm: indexed once per desired state, not scanned per client. */
export function ourClientScopes(desired: DesiredState): Map<string, Set<string>> {
  let m = scopeIndex.get(desired);
  if (!m) {
    m = new Map();
    for (const r of desired.resources) {
      if (r.target !== 'keycloak' || r.kind !== 'ClientScope') continue;
      const realm = realmOf(r.name);
      const set = m.get(realm);
      if (set) set.add(leaf(r.name));
      else m.set(realm, new Set([leaf(r.name)]));
    }
    scopeIndex.set(desired, m);
  }
  return m;
}

/** True when the user profile requires a first or last name. */
export function namesRequired(profile: Rep): boolean {
  return (profile.attributes ?? []).some((a: Rep) => (a.name === 'firstName' || a.name === 'lastName') && a.required);
}

const withProtocol = (ms: Rep[] | undefined): Rep[] => (ms ?? []).map((m) => ({ protocol: 'openid-connect', ...m }));

export function mappersOf(ms: unknown): Json[] {
  if (!Array.isArray(ms)) return [];
  return ms
    .map((m: Rep) => ({ name: m.name, protocolMapper: m.protocolMapper, config: Object.fromEntries(Object.entries(m.config ?? {}).sort(([a], [b]) => (a < b ? -1 : 1))) }) as JsonObject)
    .sort((a, b) => (String(a.name) < String(b.name) ? -1 : 1));
}

export function kcError(what: string, e: unknown): unknown {
  if (e instanceof TargetError) return e;
  const err = e as { response?: { status?: number }; responseData?: unknown; message?: string };
  const status = err.response?.status;
  const data = err.responseData as { errorMessage?: string; error?: string } | undefined;
  const detail = data?.errorMessage ?? data?.error ?? err.message ?? String(e);
  return new TargetError('keycloak', `${what} failed${status ? ` (${status})` : ''}: ${detail}`, {
    // A 401 from the admin API is a token that expired on its way (a busy Keycloak can hold a
    // request past the token's minute): the runner drops the token, and the next attempt logs in
    // again. Wrong credentials fail at that login, which is not retried.
    transient: isTransient(e) || (status !== undefined && (status >= 500 || status === 401)),
    ...(status !== undefined ? { status } : {}),
    ...(status === 401 || status === 403 ? { hint: 'check SYSTEMPROMPT_KEYCLOAK_USER and SYSTEMPROMPT_KEYCLOAK_PASSWORD' } : {}),
    cause: e,
  });
}
