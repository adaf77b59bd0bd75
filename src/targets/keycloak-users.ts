/**
 * Users of a realm without reading their attributes. Our marker is an attribute, and only a full
 * representation shows attributes; but on Keycloak 26.7 every user a listing returns costs about
 * the same (0.3-0.5 ms of server CPU), brief, full or as a role member, so what counts is how many
 * users are returned, not how. Keycloak is asked instead for what we expect: the users carrying
 * the attributes the compiler writes on users (`q`, an AND of exact but case-insensitive attribute
 * matches), which confirms the marker and the owned attributes at once.
 *
 * Steady state: two counts (all users; users carrying that shape) equal to the number of users
 * holding our roles, which the roles are read from anyway: those listings are the user listing.
 * Otherwise, one brief listing per shape, then only what the counts leave unexplained: users of
 * ours carrying other attributes (read in full: one by one when few, else one full listing of our
 * users) and users that are not ours (one brief listing of all users, names only). Requests stay
 * constant in the number of users; pages of 500.
 *
 * What a search cannot tell: the case of a value, and extra values of an attribute. A user whose
 * marker reads "SystemPrompt" counts as ours here, so every user is read in full, its marker
 * checked exactly, before it is changed or deleted (keycloak.ts).
 */
import { isKcMarked, KC_MANAGED_ATTR, MANAGED_BY_VALUE } from '../model/ownership.js';
import type { DesiredState } from '../compile/desired.js';
import type { Json, JsonObject } from '../model/resource.js';
import { canonicalJson } from '../plan/diff.js';

type Rep = Record<string, any>;

/** At most this many attribute shapes are listed per realm (the compiler writes one today). */
export const MAX_SHAPES = 3;
/** Up to this many users of ours carrying other attributes are read one by one; more, in one full listing. */
export const FEW = 20;
/** Keycloak names a client's service-account user so; it is a client's, never ours. */
const SERVICE_ACCOUNT_PREFIX = 'service-account-';

/** The attributes the compiler writes on users, and the `q` search that finds the users carrying them. */
export interface UserShape {
  attributes: JsonObject;
  query: string;
}

/** The admin API calls the user read needs (the target runs them counted and retried). */
export interface UserSource {
  /** `GET /users/count[?q=]`: without q the realm's users, service accounts not included; with q, every match. */
  count(q?: string): Promise<number>;
  /** `GET /users?q=&briefRepresentation=`, every page; service accounts only with q. */
  list(q: string | undefined, brief: boolean): Promise<Rep[]>;
  /** `GET /users/{id}`. */
  get(id: string): Promise<Rep | undefined>;
}

/** What readUsers found: ours with attributes confirmed by a query, ours read in full, and the rest. */
export interface UserListing {
  confirmed: Array<{ user: Rep; attributes: JsonObject }>;
  /** Users carrying the marker (any case) but none of the shapes, in full representation. */
  full: Rep[];
  /** Users without our marker (brief). */
  unowned: Rep[];
}

const quote = (s: string): string => `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"')}"`;

/**
 * Keycloak's `q` for users carrying every attribute of `attrs`: `"key":"value"` pairs. Undefined
 * when a value is not one string (a pair matches one value), so that shape cannot be searched.
 */
export function kcSearchQuery(attrs: Record<string, unknown>): string | undefined {
  const pairs: string[] = [];
  for (const [k, v] of Object.entries(attrs).sort(([a], [b]) => (a < b ? -1 : 1))) {
    const one = Array.isArray(v) ? (v.length === 1 ? v[0] : undefined) : v;
    if (typeof one !== 'string') return undefined;
    pairs.push(`${quote(k)}:${quote(one)}`);
  }
  return pairs.length ? pairs.join(' ') : undefined;
}

export const MARKER_QUERY = kcSearchQuery({ [KC_MANAGED_ATTR]: MANAGED_BY_VALUE })!;

/**
 * The attribute maps the desired state writes on users, most common first, at most MAX_SHAPES:
 * those that carry our marker and can be searched. The same shapes serve every realm, so a realm
 * with no desired users (or one being deleted) is still read the cheap way.
 */
export function userShapes(desired: DesiredState): UserShape[] {
  const seen = new Map<string, { shape: UserShape; n: number }>();
  for (const r of desired.resources) {
    if (r.target !== 'keycloak' || r.kind !== 'User') continue;
    const attributes = (r.spec.attributes ?? {}) as JsonObject;
    const key = canonicalJson(attributes);
    const s = seen.get(key);
    if (s) {
      s.n++;
      continue;
    }
    const query = isKcMarked(attributes as Record<string, unknown>) ? kcSearchQuery(attributes) : undefined;
    if (query) seen.set(key, { shape: { attributes, query }, n: 1 });
  }
  return [...seen.values()].sort((a, b) => b.n - a.n).slice(0, MAX_SHAPES).map((s) => s.shape);
}

/** Service-account usernames of the realm's clients (Keycloak lower-cases usernames). */
export function serviceAccountNames(clients: Rep[]): Set<string> {
  return new Set(clients.filter((c) => c.serviceAccountsEnabled).map((c) => `${SERVICE_ACCOUNT_PREFIX}${c.clientId}`.toLowerCase()));
}

/**
 * The users of one realm, brief wherever the answer allows it. `roleMembers`: the users holding our
 * roles (brief), which the roles need anyway. In the steady state (every user of the realm ours,
 * carrying what the compiler writes, holding one of our roles) that is two counts and no listing
 * of its own; else one listing per shape, and what the counts show is still unaccounted for.
 */
export async function readUsers(src: UserSource, shapes: UserShape[], serviceAccounts: Set<string>, roleMembers: Promise<Rep[]>): Promise<UserListing> {
  const isServiceAccount = (u: Rep): boolean => serviceAccounts.has(String(u.username).toLowerCase());
  const only = shapes.length === 1 ? shapes[0]! : undefined;
  const [allCount, shapeCount, members] = await Promise.all([src.count(), only ? src.count(only.query) : undefined, roleMembers]);
  const holders = [...new Map(members.filter((u) => !isServiceAccount(u)).map((u) => [u.id as string, u])).values()];
  // As many users in the realm as carry the shape and as hold our roles: they are the same users.
  // (A service account carrying our marker by hand could stand in for a user that is not ours;
  // a user is read in full, its marker checked exactly, before it is changed or deleted.)
  if (only && shapeCount === allCount && holders.length === allCount) return { confirmed: holders.map((user) => ({ user, attributes: only.attributes })), full: [], unowned: [] };

  const byShape = await Promise.all(shapes.map((s) => src.list(s.query, true)));
  // A user matching two shapes (a multi-valued attribute) is read in full rather than guessed.
  const shapeOf = new Map<string, { user: Rep; attributes: JsonObject } | null>();
  byShape.forEach((users, i) => {
    for (const u of users) {
      if (isServiceAccount(u)) continue;
      shapeOf.set(u.id, shapeOf.has(u.id) ? null : { user: u, attributes: shapes[i]!.attributes });
    }
  });
  const confirmed = [...shapeOf.values()].filter((x): x is NonNullable<typeof x> => !!x);
  if (allCount === confirmed.length) return { confirmed, full: [], unowned: [] };

  // Something else is there: users of ours carrying other attributes, or users that are not ours.
  const marked = (await src.list(MARKER_QUERY, true)).filter((u) => !isServiceAccount(u));
  const others = marked.filter((u) => !shapeOf.get(u.id));
  let full: Rep[];
  if (others.length <= FEW) full = (await Promise.all(others.map((u) => src.get(u.id)))).filter((u): u is Rep => !!u);
  else {
    const ids = new Set(others.map((u) => u.id));
    full = (await src.list(MARKER_QUERY, false)).filter((u) => ids.has(u.id));
  }
  // The search ignores case; the marker does not: a user marked "SystemPrompt" is not ours.
  const ours = full.filter((u) => isKcMarked(u.attributes));
  const oursIds = new Set([...confirmed.map((c) => c.user.id), ...ours.map((u) => u.id)]);
  // Every user is either confirmed or read in full: the unowned are among those read in full.
  const seen = confirmed.length + full.length;
  const unowned = (allCount === seen ? full : await src.list(undefined, true)).filter((u) => !oursIds.has(u.id));
  return { confirmed, full: ours, unowned };
}

/** The live spec of a user of ours: what the plan compares with the desired spec. */
export function userSpec(u: Rep, realmRoles: string[], attributes: JsonObject): JsonObject {
  return {
    email: (u.email ?? '') as Json,
    enabled: (u.enabled ?? false) as Json,
    emailVerified: (u.emailVerified ?? false) as Json,
    realmRoles: [...realmRoles].sort(),
    attributes,
  };
}
