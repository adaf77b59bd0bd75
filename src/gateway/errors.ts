import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { Principal } from './tokens.js';

/**
 * Why the gateway refused a request's credentials. A short, stable reason code (never token text),
 * and the HTTP status it is answered with:
 * - 401: no usable credentials (missing, malformed, forged, expired, from an issuer we do not manage);
 * - 403: a valid token that may not do this (another agent's audience, another tenant, a missing scope);
 * - 503: the realm's keys could not be fetched (not the client's fault; retry later).
 */
export type TokenFailure =
  | 'missing_token'
  | 'malformed_token'
  | 'unknown_issuer'
  | 'unsupported_algorithm'
  | 'unknown_key'
  | 'bad_signature'
  | 'expired'
  | 'not_yet_valid'
  | 'invalid_claims'
  | 'not_an_access_token'
  | 'unknown_tenant'
  | 'wrong_tenant'
  | 'wrong_audience'
  | 'missing_scope'
  | 'jwks_unavailable';

const STATUS: Record<TokenFailure, 401 | 403 | 503> = {
  missing_token: 401,
  malformed_token: 401,
  unknown_issuer: 401,
  unsupported_algorithm: 401,
  unknown_key: 401,
  bad_signature: 401,
  expired: 401,
  not_yet_valid: 401,
  invalid_claims: 401,
  not_an_access_token: 401,
  unknown_tenant: 401,
  wrong_tenant: 403,
  wrong_audience: 403,
  missing_scope: 403,
  jwks_unavailable: 503,
};

export class TokenError extends Error {
  readonly status: 401 | 403 | 503;
  readonly reason: TokenFailure;
  /** For `missing_scope`: the scopes of the closest requirement the token lacks. */
  readonly missingScopes: readonly string[];
  /**
   * Who the token verifiably speaks for, when the refusal came after its signature and tenant were
   * checked (another tenant's URL, another agent, a missing scope): the refusal is that user's, and
   * is audited in that user's tenant.
   */
  readonly principal: Principal | undefined;
  constructor(reason: TokenFailure, opts: { missingScopes?: readonly string[]; principal?: Principal; cause?: unknown } = {}) {
    super(`token refused: ${reason}`, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'TokenError';
    this.reason = reason;
    this.status = STATUS[reason];
    this.missingScopes = opts.missingScopes ?? [];
    this.principal = opts.principal;
  }
}

/**
 * The RFC 6750 `WWW-Authenticate` challenge for a refusal: no `error` when no token was sent,
 * `invalid_token` for the other 401s, `insufficient_scope` (with the scopes wanted) for a missing scope.
 */
export function wwwAuthenticate(err: TokenError, realm = 'systemprompt'): string | undefined {
  if (err.status === 503) return undefined;
  const parts = [`realm="${realm}"`];
  if (err.reason === 'missing_scope') {
    parts.push('error="insufficient_scope"');
    if (err.missingScopes.length) parts.push(`scope="${err.missingScopes.join(' ')}"`);
  } else if (err.status === 403) {
    parts.push('error="insufficient_scope"', `error_description="${err.reason}"`);
  } else if (err.reason !== 'missing_token') {
    parts.push('error="invalid_token"', `error_description="${err.reason}"`);
  }
  return `Bearer ${parts.join(', ')}`;
}

/** The headers of a refused token's answer: never cached, with the RFC 6750 challenge when there is one. */
export function refusalHeaders(err: TokenError): Record<string, string> {
  const challenge = wwwAuthenticate(err);
  return { 'cache-control': 'no-store', ...(challenge ? { 'www-authenticate': challenge } : {}) };
}

/** A JSON `{"error": ...}` answer, never cached: how the gateway and the SDK refuse or fail a request. */
export function replyError(res: ServerResponse, status: number, error: string, headers: OutgoingHttpHeaders = {}): void {
  const body = JSON.stringify({ error });
  res.writeHead(status, { ...headers, 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), 'cache-control': 'no-store' });
  res.end(body);
}
