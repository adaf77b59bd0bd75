import { describe, expect, it } from 'vitest';
import { missingScopes, requiredScopes, UNSATISFIABLE } from '../../src/gateway/scopes.js';
import { buildCard } from '../../src/compile/card.js';

const oauth = { oauth2: { type: 'oauth2', flows: {} } };

describe('gateway scope requirements from an A2A card', () => {
  it('reads alternatives of scope sets from security', () => {
    const card = { securitySchemes: { ...oauth, oidc: { type: 'openIdConnect' } }, security: [{ oauth2: ['write', 'read'] }, { oidc: ['admin'] }] };
    expect(requiredScopes(card)).toEqual([['read', 'write'], ['admin']]);
  });

  it('requires nothing without security, and only a valid token with an empty scope list', () => {
    expect(requiredScopes({ securitySchemes: oauth })).toEqual([]);
    expect(requiredScopes({ securitySchemes: oauth, security: [{ oauth2: [] }] })).toEqual([[]]);
    expect(missingScopes([], [[]])).toEqual([]);
  });

  it('fails closed when only a scheme a token cannot satisfy is accepted', () => {
    const card = { securitySchemes: { ...oauth, key: { type: 'apiKey' } }, security: [{ key: [] }] };
    expect(requiredScopes(card)).toEqual([[UNSATISFIABLE]]);
    expect(missingScopes(['read', 'write', 'admin'], requiredScopes(card))).toEqual([UNSATISFIABLE]);
    // An alternative combining a token scheme with another one is not satisfiable either; the others still are.
    const mixed = { securitySchemes: { ...oauth, key: { type: 'apiKey' } }, security: [{ oauth2: ['admin'], key: [] }, { oauth2: ['read'] }] };
    expect(requiredScopes(mixed)).toEqual([['read']]);
  });

  it('reports the alternative that misses the fewest scopes', () => {
    expect(missingScopes(['read'], [['admin', 'audit'], ['read', 'write']])).toEqual(['write']);
    expect(missingScopes(['read', 'write'], [['admin'], ['read', 'write']])).toEqual([]);
  });

  it('applies to the cards the compiler builds', () => {
    const card = buildCard(
      { name: 'assistant', card: { securitySchemes: { oauth2: { type: 'oauth2', flows: { authorizationCode: { authorizationUrl: 'http://x/a', tokenUrl: 'http://x/t', scopes: { read: 'Read' } } } } }, security: [{ oauth2: ['read'] }] } } as never,
      { issuer: 'http://kc.test/realms/acme', tenantScopes: [] },
    );
    expect(requiredScopes(card)).toEqual([['read']]);
  });
});
