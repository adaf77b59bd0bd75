import { describe, expect, it } from 'vitest';
import { compile } from '../../src/compile/compile.js';
import type { JsonObject } from '../../src/model/resource.js';
import { diffSpec } from '../../src/plan/diff.js';
import { comparable } from '../../src/plan/plan.js';
import { FEW, kcSearchQuery, MARKER_QUERY, readUsers, serviceAccountNames, userShapes, userSpec, type UserListing, type UserSource } from '../../src/targets/keycloak-users.js';
import { everyPage, ownedAttributesOf } from '../../src/targets/keycloak.js';
import { exampleRepo } from '../helpers/repo.js';

const desired = compile(exampleRepo());
const shapes = userShapes(desired);
const desiredUsers = desired.resources.filter((r) => r.target === 'keycloak' && r.kind === 'User');
const realm = desiredUsers[0]!.name.split('/')[0]!;
const ofRealm = desiredUsers.filter((r) => r.name.startsWith(`${realm}/`));
const leaf = (name: string): string => name.slice(name.indexOf('/') + 1);

interface KcUser {
  id: string;
  username: string;
  email?: string;
  enabled?: boolean;
  emailVerified?: boolean;
  attributes?: Record<string, string[]>;
  serviceAccount?: boolean;
}

/** A user as Keycloak holds it after we created it from its desired spec. */
function created(name: string, spec: JsonObject, i: number): KcUser {
  const attributes = Object.fromEntries(Object.entries(spec.attributes as JsonObject).map(([k, v]) => [k, (Array.isArray(v) ? v : [v]).map(String)]));
  return { id: `id-${i}`, username: leaf(name), email: spec.email as string, enabled: spec.enabled as boolean, emailVerified: spec.emailVerified as boolean, attributes };
}

/**
 * Keycloak's user endpoints as 26.x answers them: `q` is an AND of exact, case-insensitive matches
 * of one value, and includes service accounts; plain listings and the count leave them out; brief
 * representations carry no attributes.
 */
function fakeKeycloak(users: KcUser[]): UserSource & { calls: string[]; members: () => Promise<Record<string, unknown>[]> } {
  const calls: string[] = [];
  const roleCount = new Map(ofRealm.map((d) => [leaf(d.name), (d.spec.realmRoles as string[]).length]));
  const unquote = (s: string): string => s.replace(/\\(.)/g, '$1');
  const matches = (u: KcUser, q: string): boolean =>
    [...q.matchAll(/"((?:[^"\\]|\\.)*)":"((?:[^"\\]|\\.)*)"/g)].every(([, k, v]) => (u.attributes?.[unquote(k!)] ?? []).some((x) => x.toLowerCase() === unquote(v!).toLowerCase()));
  const rep = (u: KcUser, brief: boolean) => {
    const { serviceAccount: _s, attributes, ...rest } = u;
    return brief ? rest : { ...rest, attributes };
  };
  return {
    calls,
    /** The users holding our roles, brief, one entry per role held (as the member listings give them). */
    members: async () => users.flatMap((u) => (roleCount.get(u.username) ?? 0) > 0 ? Array.from({ length: roleCount.get(u.username)! }, () => rep(u, true)) : []),
    count: async (q) => {
      calls.push(q === undefined ? 'count' : 'count shape');
      return users.filter((u) => (q === undefined ? !u.serviceAccount : matches(u, q))).length;
    },
    list: async (q, brief) => {
      calls.push(`list ${q === undefined ? 'all' : q === MARKER_QUERY ? 'marked' : 'shape'}${brief ? '' : ' full'}`);
      return users.filter((u) => (q === undefined ? !u.serviceAccount : matches(u, q))).map((u) => rep(u, brief));
    },
    get: async (id) => {
      calls.push('get');
      const u = users.find((x) => x.id === id);
      return u && rep(u, false);
    },
  };
}

/** The live users as the Keycloak target projects them (roles: as desired). */
function live(listing: UserListing): Map<string, { managed: boolean; spec: JsonObject }> {
  const roles = (username: string) => (ofRealm.find((d) => leaf(d.name) === username)?.spec.realmRoles ?? []) as string[];
  const out = new Map<string, { managed: boolean; spec: JsonObject }>();
  for (const c of listing.confirmed) out.set(c.user.username, { managed: true, spec: userSpec(c.user, roles(c.user.username), c.attributes) });
  for (const u of listing.full) out.set(u.username, { managed: true, spec: userSpec(u, roles(u.username), ownedAttributesOf(u.attributes)) });
  for (const u of listing.unowned) out.set(u.username, { managed: false, spec: {} });
  return out;
}

const diffOf = (l: Map<string, { spec: JsonObject }>, d: (typeof ofRealm)[number]) => diffSpec(comparable(d), l.get(leaf(d.name))!.spec);

describe('Keycloak users from brief listings', () => {
  it('searches for exactly what the compiler writes on users: one shape, carrying our marker', () => {
    expect(shapes).toHaveLength(1);
    expect(shapes[0]!.attributes).toEqual(ofRealm[0]!.spec.attributes);
    expect(shapes[0]!.query).toBe('"systemprompt.io/managed-by":"systemprompt" "systemprompt.io/owned-attributes":"systemprompt.io/managed-by"');
    expect(kcSearchQuery({ 'a b': 'say "hi"\\' })).toBe('"a b":"say \\"hi\\"\\\\"');
    expect(kcSearchQuery({ k: ['one', 'two'] })).toBeUndefined(); // one pair matches one value
    expect(MARKER_QUERY).toBe('"systemprompt.io/managed-by":"systemprompt"');
  });

  it('steady state: two counts and the role-member listings, no user listing; the projection matches the desired users', async () => {
    const kc = fakeKeycloak(ofRealm.map((d, i) => created(d.name, d.spec, i)));
    const listing = await readUsers(kc, shapes, new Set(), kc.members());
    expect(kc.calls.sort()).toEqual(['count', 'count shape']);
    expect(listing.confirmed).toHaveLength(ofRealm.length);
    const l = live(listing);
    for (const d of ofRealm) expect(diffOf(l, d)).toEqual([]);
  });

  it('a user holding none of our roles: one brief listing of the users carrying the shape', async () => {
    const users = ofRealm.map((d, i) => created(d.name, d.spec, i));
    users.push({ ...created(ofRealm[0]!.name, ofRealm[0]!.spec, 99), username: 'no-scopes', email: 'no-scopes@example.com' });
    const kc = fakeKeycloak(users);
    const listing = await readUsers(kc, shapes, new Set(), kc.members());
    expect(kc.calls.sort()).toEqual(['count', 'count shape', 'list shape']);
    expect(listing.confirmed.map((c) => c.user.username)).toContain('no-scopes');
    expect(listing.confirmed).toHaveLength(users.length);
  });

  it('sees email, enabled and emailVerified from the brief representation', async () => {
    const users = ofRealm.map((d, i) => created(d.name, d.spec, i));
    users[0] = { ...users[0]!, email: 'someone@else.example.com', enabled: false, emailVerified: false };
    const l = live(await readUsers(fakeKeycloak(users), shapes, new Set(), fakeKeycloak(users).members()));
    expect(diffOf(l, ofRealm[0]!).map((f) => f.path).sort()).toEqual(['email', 'emailVerified', 'enabled']);
  });

  it('reads a user of ours carrying other attributes in full, and the diff shows them', async () => {
    const users = ofRealm.map((d, i) => created(d.name, d.spec, i));
    // written before the owned-attributes list existed
    users[0] = { ...users[0]!, attributes: { 'systemprompt.io/managed-by': ['systemprompt'], 'someone-else': ['x'] } };
    const kc = fakeKeycloak(users);
    const listing = await readUsers(kc, shapes, new Set(), kc.members());
    expect(kc.calls.sort()).toEqual(['count', 'count shape', 'get', 'list marked', 'list shape']);
    const l = live(listing);
    expect(l.get(users[0]!.username)!.managed).toBe(true);
    expect(diffOf(l, ofRealm[0]!)).toEqual([{ path: 'attributes["systemprompt.io/owned-attributes"]', after: ['systemprompt.io/managed-by'] }]);
    expect(JSON.stringify(l.get(users[0]!.username)!.spec)).not.toContain('someone-else');
  });

  it(`lists our users in full once more than ${FEW} carry other attributes`, async () => {
    const users = Array.from({ length: FEW + 1 }, (_, i) => ({ id: `u${i}`, username: `u${i}`, attributes: { 'systemprompt.io/managed-by': ['systemprompt'] } }));
    const kc = fakeKeycloak(users);
    const listing = await readUsers(kc, shapes, new Set(), kc.members());
    expect(kc.calls.sort()).toEqual(['count', 'count shape', 'list marked', 'list marked full', 'list shape']);
    expect(listing.full).toHaveLength(FEW + 1);
  });

  it('a user we did not write is listed by name only, so the plan calls it a conflict; nothing of it is shown', async () => {
    const users = ofRealm.map((d, i) => created(d.name, d.spec, i));
    users[0] = { ...users[0]!, email: 'private@example.com', attributes: { department: ['x'] } };
    users.push({ id: 'stranger', username: 'stranger', email: 'stranger@example.com', attributes: {} });
    const kc = fakeKeycloak(users);
    const l = live(await readUsers(kc, shapes, new Set(), kc.members()));
    expect(kc.calls.sort()).toEqual(['count', 'count shape', 'list all', 'list marked', 'list shape']);
    expect(l.get(users[0]!.username)).toEqual({ managed: false, spec: {} });
    expect(l.get('stranger')).toEqual({ managed: false, spec: {} });
  });

  it('the search ignores case, the marker does not: "SystemPrompt" is not ours', async () => {
    const users = ofRealm.map((d, i) => created(d.name, d.spec, i));
    users[0] = { ...users[0]!, attributes: { 'systemprompt.io/managed-by': ['SystemPrompt'] } };
    const kc = fakeKeycloak(users);
    const l = live(await readUsers(kc, shapes, new Set(), kc.members()));
    expect(kc.calls.sort()).toEqual(['count', 'count shape', 'get', 'list marked', 'list shape']);
    expect(l.get(users[0]!.username)!.managed).toBe(false);
  });

  it("never takes a client's service account for one of ours, even marked", async () => {
    const users = ofRealm.map((d, i) => created(d.name, d.spec, i));
    users.push({ id: 'sa', username: 'service-account-agent', serviceAccount: true, attributes: created(ofRealm[0]!.name, ofRealm[0]!.spec, 0).attributes! });
    const kc = fakeKeycloak(users);
    const l = live(await readUsers(kc, shapes, serviceAccountNames([{ clientId: 'Agent', serviceAccountsEnabled: true }, { clientId: 'web' }]), kc.members()));
    expect(kc.calls.sort()).toEqual(['count', 'count shape', 'list shape']);
    expect(l.has('service-account-agent')).toBe(false);
  });

  it('a realm with no desired users (one being deleted) is read with the same shapes', async () => {
    const users = ofRealm.map((d, i) => created(d.name, d.spec, i));
    const kc = fakeKeycloak(users);
    const listing = await readUsers(kc, userShapes({ ...desired, resources: desiredUsers.slice(0, 1) }), new Set(), kc.members());
    expect(kc.calls.sort()).toEqual(['count', 'count shape']);
    expect(listing.confirmed).toHaveLength(users.length);
  });
});

describe('Keycloak paged listings', () => {
  const pages = async (n: number) => {
    const asked: string[] = [];
    const items = await everyPage(async (first, max) => {
      asked.push(`${first}+${max}`);
      return Array.from({ length: Math.max(0, Math.min(max, n - first)) }, (_, i) => first + i);
    }, 500);
    return { asked, items };
  };

  it('ask one more than a page: exactly 500 is one request, 1,000 two, never an empty last page', async () => {
    expect((await pages(0)).asked).toEqual(['0+501']);
    expect((await pages(500)).asked).toEqual(['0+501']);
    expect((await pages(501)).asked).toEqual(['0+501', '500+501']);
    expect((await pages(1000)).asked).toEqual(['0+501', '500+501']);
    const { items } = await pages(1234);
    expect(items).toEqual(Array.from({ length: 1234 }, (_, i) => i));
  });
});
