import KcAdminClient from '@keycloak/keycloak-admin-client';
import { decodeJwt } from 'jose';
import * as oidc from 'openid-client';
import { endpoints, kubeHttp } from './helpers.js';

/**
 * Real logins against the test stack's Keycloak: a user of a tenant realm signs in to the
 * tenant's agent client (the one whose redirect URI the test agents declare) and gets a token.
 */
export const KC = endpoints.keycloak.url.replace(/\/+$/, '');
const REDIRECT = 'http://localhost:8080/callback';
const PASSWORD = 'correct horse battery staple';

/** An agent whose client `login()` signs in to: authorization code + PKCE, scopes user/read/write. */
export const assistantAgent = `name: assistant
tenant_aware: true
security:
  oauth2:
    scopes: ["tenant:{{tenant_id}}"]
card:
  securitySchemes:
    oauth2:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: "http://localhost:8080/api/v1/core/oauth/authorize"
          tokenUrl: "http://localhost:8080/api/v1/core/oauth/token"
          scopes:
            user: "Authenticated user access"
            read: "Read tenant data"
            write: "Write tenant data"
  security:
    - oauth2: ["user"]
`;

export async function admin(): Promise<KcAdminClient> {
  const kc = new KcAdminClient({ baseUrl: KC, realmName: 'master' });
  await kc.auth({ grantType: 'password', clientId: 'admin-cli', username: endpoints.keycloak.username, password: endpoints.keycloak.password });
  return kc;
}

/** Test provisioning: users get a password (the product manages identities, not credentials). */
export async function setPassword(realm: string, username: string): Promise<void> {
  const kc = await admin();
  const [u] = await kc.users.find({ realm, username, exact: true });
  await kc.users.resetPassword({ realm, id: u!.id!, credential: { type: 'password', value: PASSWORD, temporary: false } });
}

async function clientSecretFromSecret(tenant: string): Promise<string> {
  const s = await kubeHttp().request<{ data: Record<string, string> }>('GET', `/api/v1/namespaces/tenant-${tenant}/secrets/systemprompt-oidc`);
  return Buffer.from(s.data.ASSISTANT_CLIENT_SECRET!, 'base64').toString('utf8');
}

/** A cookie jar just big enough for one login. */
class Jar {
  private cookies = new Map<string, string>();
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const i = pair!.indexOf('=');
      this.cookies.set(pair!.slice(0, i).trim(), pair!.slice(i + 1));
    }
  }
  header(): string {
    return [...this.cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
}

/**
 * A real authorization-code + PKCE login with openid-client: the authorization request, the
 * login form posted over HTTP like a browser does, the code exchanged with the client secret.
 */
export async function login(realm: string, username: string, scope: string): Promise<{ access: string; claims: Record<string, unknown> }> {
  const secret = await clientSecretFromSecret(realm);
  const config = await oidc.discovery(new URL(`${KC}/realms/${realm}`), 'assistant', secret, undefined, { execute: [oidc.allowInsecureRequests] });
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: REDIRECT,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
  });
  const jar = new Jar();
  const page = await fetch(url, { redirect: 'manual' });
  jar.take(page);
  const html = await page.text();
  const action = /<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"/.exec(html)?.[1]?.replace(/&amp;/g, '&');
  if (!action) throw new Error(`no login form (HTTP ${page.status}${page.headers.get('location') ? `, to ${page.headers.get('location')!.replace(/[?#].*/, '')}: ${new URL(page.headers.get('location')!).searchParams.get('error') ?? ''} ${new URL(page.headers.get('location')!).searchParams.get('error_description') ?? ''}` : ''})`);
  const posted = await fetch(action, {
    method: 'POST',
    redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() },
    body: new URLSearchParams({ username, password: PASSWORD, credentialId: '' }),
  });
  const location = posted.headers.get('location');
  if (posted.status !== 302 || !location?.startsWith(REDIRECT)) throw new Error(`login did not redirect back (HTTP ${posted.status}, to ${location?.replace(/[?#].*/, "")})`);
  const tokens = await oidc.authorizationCodeGrant(config, new URL(location), { pkceCodeVerifier: verifier, expectedState: state });
  return { access: tokens.access_token, claims: decodeJwt(tokens.access_token) as Record<string, unknown> };
}

export const scopes = (claims: Record<string, unknown>): string[] => String(claims.scope ?? '').split(' ').sort();

