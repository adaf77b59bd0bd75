import { appendTo } from '../collections.js';
import type { DesiredState, TenantDesired } from '../compile/desired.js';
import { DATABASE_SECRET, POSTGRES_PASSWORD_REF } from '../compile/kubernetes.js';
import { TargetError } from '../errors.js';
import { isSecretRef, type DesiredResource } from '../model/resource.js';
import { generatePassword } from '../targets/passwords.js';
import type { SecretResolver } from '../targets/target.js';

export interface SecretSources {
  /** A decoded key of a Secret in a tenant namespace, or undefined. */
  readSecretValue(namespace: string, name: string, key: string): Promise<string | undefined>;
  /** The secret of a confidential client, or undefined when the client does not exist. */
  clientSecret?(realm: string, clientId: string): Promise<string | undefined>;
}

/**
 * Secret values for one apply: the tenant's database password lives only in its Kubernetes Secret
 * (generated once, when that Secret is first written; reused ever after); client secrets are read
 * from Keycloak. Values stay in memory for the run and are never logged.
 */
export class ApplySecrets implements SecretResolver {
  private readonly cache = new Map<string, Promise<string>>();
  /** The tenants by name and each tenant's Kubernetes Secrets, indexed once (not scanned per secret). */
  private readonly tenants: Map<string, TenantDesired>;
  private readonly secretsOf = new Map<string, DesiredResource[]>();

  constructor(desired: DesiredState, private readonly sources: SecretSources) {
    this.tenants = new Map(desired.tenants.map((t) => [t.name, t]));
    for (const r of desired.resources) if (r.target === 'kubernetes' && r.kind === 'Secret' && r.tenant !== undefined) appendTo(this.secretsOf, r.tenant, r);
  }

  resolve(tenant: string, ref: string, opts: { mayGenerate?: boolean } = {}): Promise<string> {
    // A client secret is the client's: tenants sharing a realm's client (organization isolation) read it once.
    const key = ref.startsWith('client-secret:') ? `realm:${this.tenants.get(tenant)?.realm}\0${ref}` : `${tenant}\0${ref}`;
    let p = this.cache.get(key);
    if (!p) {
      p = this.load(tenant, ref, opts.mayGenerate ?? false);
      this.cache.set(key, p);
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  async stored(tenant: string, ref: string): Promise<string | undefined> {
    for (const r of this.secretsOf.get(tenant) ?? []) {
      const data = (r.spec.data ?? {}) as Record<string, unknown>;
      const key = Object.keys(data).find((k) => isSecretRef(data[k]) && (data[k] as { secretRef: string }).secretRef === ref);
      if (key === undefined) continue;
      const [namespace, name] = r.name.split('/') as [string, string];
      return this.sources.readSecretValue(namespace, name, key);
    }
    return undefined;
  }

  private async load(tenant: string, ref: string, mayGenerate: boolean): Promise<string> {
    const t = this.tenants.get(tenant);
    if (!t) throw new TargetError('apply', `no tenant ${tenant} for secret ${ref}`);
    if (ref === POSTGRES_PASSWORD_REF) {
      const existing = await this.sources.readSecretValue(t.namespace, DATABASE_SECRET, 'PGPASSWORD');
      if (existing) return existing;
      if (mayGenerate) return generatePassword();
      throw new TargetError('apply', `the database password of tenant ${tenant} is not in Secret ${t.namespace}/${DATABASE_SECRET}`, {
        hint: 'apply again: the Secret is written before the role that uses it',
      });
    }
    if (ref.startsWith('client-secret:')) {
      const clientId = ref.slice('client-secret:'.length);
      const v = await this.sources.clientSecret?.(t.realm, clientId);
      if (v) return v;
      throw new TargetError('apply', `client ${clientId} in realm ${t.realm} has no secret yet`);
    }
    throw new TargetError('apply', `unknown secret reference ${ref}`);
  }
}
