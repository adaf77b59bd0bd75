import { describe, expect, it } from 'vitest';
import { downstreamHeaderList, HeaderValueError, upstreamHeaders } from '../../src/gateway/headers.js';
import type { Principal } from '../../src/gateway/tokens.js';

const ann: Principal = { tenant: 'acme', userId: '5b1c-user', email: 'ann@acme.test', scopes: ['openid', 'read'], issuer: 'http://kc.test/realms/acme', expiresAt: 0 };

/** Header names case-insensitively, as a server reads them. */
const lower = (h: Record<string, unknown>) => Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), v]));

describe('gateway upstream headers', () => {
  it('sets tenant, user, email and scopes from the verified token', () => {
    const h = upstreamHeaders({ accept: 'application/json' }, ann);
    expect(h).toEqual({
      accept: 'application/json',
      'X-SystemPrompt-Tenant': 'acme',
      'X-SystemPrompt-User': '5b1c-user',
      'X-SystemPrompt-User-Email': 'ann@acme.test',
      'X-SystemPrompt-Scopes': 'openid read',
    });
  });

  it('never lets a client-sent X-SystemPrompt-* header through, in any letter case', () => {
    const h = lower(
      upstreamHeaders(
        {
          'x-systemprompt-tenant': 'b',
          'X-SYSTEMPROMPT-USER': 'admin',
          'X-SystemPrompt-Scopes': 'admin write',
          'x-systemprompt-user-email': 'root@b.test',
          'x-systemprompt-anything-else': '1',
        },
        ann,
      ),
    );
    expect(h['x-systemprompt-tenant']).toBe('acme');
    expect(h['x-systemprompt-user']).toBe('5b1c-user');
    expect(h['x-systemprompt-scopes']).toBe('openid read');
    expect(h['x-systemprompt-user-email']).toBe('ann@acme.test');
    expect(h).not.toHaveProperty('x-systemprompt-anything-else');
    // Exactly one of each: no duplicate under another spelling survives.
    expect(Object.keys(h).filter((k) => k === 'x-systemprompt-tenant')).toHaveLength(1);
  });

  it('sends no email header when the token has none, even if the client sent one', () => {
    const h = lower(upstreamHeaders({ 'x-systemprompt-user-email': 'spoof@b.test' }, { ...ann, email: undefined }));
    expect(h).not.toHaveProperty('x-systemprompt-user-email');
  });

  it('drops hop-by-hop headers, those Connection names, and client-sent forwarding headers', () => {
    const h = upstreamHeaders(
      {
        host: 'acme.gw.test',
        connection: 'keep-alive, X-Secret-Hop',
        'keep-alive': 'timeout=5',
        'x-secret-hop': '1',
        'transfer-encoding': 'chunked',
        upgrade: 'websocket',
        te: 'trailers',
        'proxy-authorization': 'Basic Zm9vOmJhcg==',
        'x-forwarded-for': '10.0.0.1',
        forwarded: 'for=10.0.0.1',
        'content-type': 'application/json',
        'content-length': '12',
        expect: '100-continue',
        'set-cookie': ['a=1', 'b=2'],
      },
      ann,
      { forwarded: { for: '192.0.2.7', host: 'acme.gw.test', proto: 'https' } },
    );
    // content-length (and expect) are the client library's: the gateway sends the body it read whole.
    expect(Object.keys(h).filter((k) => !k.startsWith('X-SystemPrompt-')).sort()).toEqual(['content-type', 'set-cookie', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto']);
    expect(h['x-forwarded-for']).toBe('192.0.2.7');
    expect(h['set-cookie']).toEqual(['a=1', 'b=2']);
  });

  it('forwards Authorization to the agent (its audience) unless told not to', () => {
    expect(upstreamHeaders({ authorization: 'Bearer a.b.c' }, ann).authorization).toBe('Bearer a.b.c');
    expect(upstreamHeaders({ authorization: 'Bearer a.b.c' }, ann, { forwardAuthorization: false })).not.toHaveProperty('authorization');
  });

  it('refuses claims that would split or smuggle headers', () => {
    for (const p of [{ ...ann, email: 'ann@acme.test\r\nX-SystemPrompt-Tenant: b' }, { ...ann, userId: 'u\n1' }, { ...ann, email: 'änn@acme.test' }, { ...ann, scopes: ['read\0'] }]) {
      expect(() => upstreamHeaders({}, p)).toThrow(HeaderValueError);
    }
  });

  it("passes an upstream's answer headers on without hop-by-hop fields or those its Connection names, repeats kept in order", () => {
    const raw = ['Content-Type', 'application/json', 'Set-Cookie', 'a=1', 'Connection', 'keep-alive, X-Hop', 'Keep-Alive', 'timeout=5', 'X-Hop', 'secret', 'Transfer-Encoding', 'chunked', 'set-cookie', 'b=2'].map((v) => Buffer.from(v, 'latin1'));
    expect(downstreamHeaderList(raw)).toEqual(['content-type', 'application/json', 'set-cookie', 'a=1', 'set-cookie', 'b=2']);
    expect(downstreamHeaderList(null)).toEqual([]);
  });
});
