/**
 * `systemprompt/sdk`: for the authors of agents behind systemprompt. Verify the caller's token,
 * know its tenant, user and scopes, and reach the tenant's own database:
 *
 *   const sp = systemprompt({ agent: 'notes', databases: { secrets: fromKubernetes() } });
 *   http.createServer(sp.wrap(async (req, res) => { const { rows } = await req.systemprompt.db.query('select 1'); ... }));
 *
 * Loading it loads jose and pg, not the CLI nor the Kubernetes or Keycloak clients.
 */
export { systemprompt, requireScope, errorHandler, DEFAULT_NAMESPACE } from './middleware.js';
export type { SystemPromptOptions, SystemPromptMiddleware, DatabasesOptions, Guard, NextFunction, FastifyHook, FastifyPlugin, FastifyRequestLike, FastifyReplyLike, FastifyInstanceLike } from './middleware.js';
export type { SystemPromptContext, TenantDb, TenantQuery } from './context.js';
export { realmIssuers, ISSUERS_ENV, type Issuers } from './issuers.js';
export { fromKubernetes, type FromKubernetesOptions } from './kubernetes.js';
export { TenantDatabases, TenantDatabaseError, type SecretSource, type TenantDatabasesOptions } from '../runtime/tenant-db.js';
export { TokenError, wwwAuthenticate, type TokenFailure } from '../gateway/errors.js';
export { JwksCache, httpJwksFetcher, type JwksFetcher, type JwksCacheOptions } from '../gateway/jwks.js';
