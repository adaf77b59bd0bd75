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

export async function clientSecretFromSecret(tenant: string): Promise<string> {
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

/** A login Keycloak refused: the message its error page showed. */
export class LoginRefused extends Error {}

/** What a Keycloak login page says went wrong: its error message, a field error, or its text. */
const pageMessage = (html: string): string =>
  (/id="kc-error-message"[\s\S]*?<p[^>]*>([^<]+)/.exec(html)?.[1] ?? /id="input-error[^"]*"[^>]*>([^<]+)/.exec(html)?.[1] ?? html.replace(/<[^>]+>/g, ' ')).replace(/\s+/g, ' ').trim().slice(0, 300);

/**
 * A real authorization-code + PKCE login with openid-client: the authorization request, the
 * login form(s) posted over HTTP like a browser does (one page, or username then password when the
 * realm has organizations), the code exchanged with the client secret. `tenant` is whose Secret
 * holds the client secret (the realm's tenant by default).
 */
export async function login(realm: string, username: string, scope: string, tenant = realm): Promise<{ access: string; claims: Record<string, unknown> }> {
  const secret = await clientSecretFromSecret(tenant);
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
  let res = await fetch(url, { redirect: 'manual' });
  jar.take(res);
  let sentPassword = false;
  for (let step = 0; step < 4; step++) {
    const location = res.headers.get('location');
    if (res.status === 302 && location?.startsWith(REDIRECT)) {
      const tokens = await oidc.authorizationCodeGrant(config, new URL(location), { pkceCodeVerifier: verifier, expectedState: state });
      return { access: tokens.access_token, claims: decodeJwt(tokens.access_token) as Record<string, unknown> };
    }
    if (res.status === 302 && location) {
      res = await fetch(new URL(location, KC), { redirect: 'manual', headers: { cookie: jar.header() } });
      jar.take(res);
      continue;
    }
    const html = await res.text();
    const action = /<form[^>]*id="kc-form-login"[^>]*action="([^"]+)"/.exec(html)?.[1]?.replace(/&amp;/g, '&');
    if (!action) {
      if (res.status >= 400 && res.status < 500) throw new LoginRefused(`login refused (HTTP ${res.status}): ${pageMessage(html)}`);
      throw new Error(`no login form (HTTP ${res.status}${location ? `, to ${location.replace(/[?#].*/, '')}` : ''}): ${pageMessage(html)}`);
    }
    // A form again after the password (or the username page twice): the login was refused.
    const asksPassword = /name="password"/.test(html);
    if (sentPassword || (step > 0 && !asksPassword)) throw new LoginRefused(`login refused (HTTP ${res.status}): ${pageMessage(html)}`);
    // Identity-first: a page with the username only comes before the password page.
    sentPassword = asksPassword;
    const fields: Record<string, string> = asksPassword ? { username, password: PASSWORD, credentialId: '' } : { username };
    res = await fetch(action, { method: 'POST', redirect: 'manual', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie: jar.header() }, body: new URLSearchParams(fields) });
    jar.take(res);
  }
  throw new Error(`login did not redirect back (HTTP ${res.status}, to ${res.headers.get('location')?.replace(/[?#].*/, '')})`);
}

export const scopes = (claims: Record<string, unknown>): string[] => String(claims.scope ?? '').split(' ').sort();

