import { readFileSync } from 'node:fs';
import path from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import { describe, expect, it } from 'vitest';
import { buildArtifacts } from '../../src/compile/build.js';
import { compile } from '../../src/compile/compile.js';
import type { DesiredState } from '../../src/compile/desired.js';
import { PROJECT_ROOT, exampleRepo, mustLoad, textFiles } from '../helpers/repo.js';

/**
 * Every emitted AgentCard must validate against the A2A 0.3.0 AgentCard definition of the public
 * a2a.json. schemas/a2a-agent-card.schema.json is our transcription of it (no `format` keywords in
 * the original, so ajv-formats is not needed).
 */
const SCHEMA_FILE = path.join(PROJECT_ROOT, 'schemas', 'a2a-agent-card.schema.json');
const schema = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8')) as Record<string, unknown>;
const ajv = new Ajv2020({ allErrors: true, strict: false });
const validate: ValidateFunction = ajv.compile(schema);

function errorsOf(card: unknown): string[] {
  return validate(card) ? [] : (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''}`);
}

function cardsOf(state: DesiredState): Array<{ where: string; card: Record<string, unknown> }> {
  return state.tenants.flatMap((t) => t.agents.map((a) => ({ where: `${t.name}/${a.name}`, card: a.card })));
}

function expectAllValid(state: DesiredState): void {
  const cards = cardsOf(state);
  expect(cards.length).toBeGreaterThan(0);
  for (const { where, card } of cards) expect({ where, errors: errorsOf(card) }).toEqual({ where, errors: [] });
}

const WELCOME = `card:
  securitySchemes:
    oauth2:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: "http://localhost:8080/api/v1/core/oauth/authorize"
          tokenUrl: "http://localhost:8080/api/v1/core/oauth/token"
          scopes:
            anonymous: "Public access"
            user: "Authenticated user access"
      description: "OAuth 2.0 authentication"
  security:
    - oauth2: ["anonymous"]
`;

const SKILLS = `name: helper
tenant_aware: true
security:
  oauth2:
    scopes: ["tenant:{{tenant_id}}"]
card:
  name: Helper
  description: Answers questions
  capabilities:
    streaming: true
    extensions:
      - uri: https://example.com/ext/1
        required: false
  provider:
    organization: Example
    url: https://example.com
  additionalInterfaces:
    - url: http://localhost:8080/api/v1/agents/helper
      transport: JSONRPC
  securitySchemes:
    oauth2:
      type: oauth2
      flows:
        authorizationCode:
          authorizationUrl: "http://localhost:8080/api/v1/core/oauth/authorize"
          tokenUrl: "http://localhost:8080/api/v1/core/oauth/token"
          refreshUrl: "http://localhost:8080/api/v1/core/oauth/token"
          scopes:
            read: "Read tenant data"
  security:
    - oauth2: ["read"]
  skills:
    - id: faq
      name: FAQ
      description: Answers frequently asked questions
      tags: [faq, support]
      examples: ["How do I reset my password?"]
      inputModes: [text/plain]
      outputModes: [text/plain, application/json]
      security:
        - oauth2: ["read"]
`;

describe('emitted A2A agent cards', () => {
  it('the transcribed schema has the expected identity and root', () => {
    expect(schema.$id).toBe('https://systemprompt.io/schemas/a2a-agent-card.schema.json');
    expect(schema.$schema).toBe('https://json-schema.org/draft/2020-12/schema');
    for (const word of ['A2A', '0.3.0', 'a2a.json', 'AgentCard']) expect(String(schema.description)).toContain(word);
  });

  it('every card of every tenant of the example repository validates', () => {
    const state = compile(exampleRepo());
    expect(cardsOf(state).map((c) => c.where).sort()).toEqual(
      ['customer-a/assistant', 'customer-a/welcome', 'customer-b/assistant', 'default/assistant', 'default/welcome'],
    );
    expectAllValid(state);
  });

  it('the card files written by build validate', () => {
    const files = buildArtifacts(compile(exampleRepo()));
    const cardFiles = [...files.keys()].filter((f) => f.endsWith('.card.json'));
    expect(cardFiles.length).toBe(5);
    for (const f of cardFiles) expect({ f, errors: errorsOf(JSON.parse(files.get(f)!)) }).toEqual({ f, errors: [] });
  });

  it('an agent with no card at all gets a valid card', () => {
    const state = compile(mustLoad(textFiles({
      'tenants/default.yaml': 'name: default\n',
      'services/agents/bare.yaml': 'description: nothing else\n',
    })));
    expectAllValid(state);
    const card = state.tenants[0]!.agents[0]!.card;
    expect(card.protocolVersion).toBe('0.3.0');
  });

  it("the brief's welcome card (only securitySchemes + security) validates", () => {
    const state = compile(mustLoad(textFiles({
      'tenants/default.yaml': 'name: default\n',
      'services/agents/welcome.yaml': WELCOME,
    })));
    expectAllValid(state);
  });

  it('a card with skills, capabilities, provider and interfaces validates in every tenant', () => {
    const state = compile(mustLoad(textFiles({
      'tenants/default.yaml': 'name: default\n',
      'tenants/acme.yaml': 'name: acme\n',
      'services/agents/helper.yaml': SKILLS,
    })));
    expect(cardsOf(state).length).toBe(2);
    expectAllValid(state);
    const card = state.tenants[0]!.agents[0]!.card;
    expect((card.skills as unknown[]).length).toBe(1);
  });

  it('an agent with {{user_id}} scopes gets a valid card', () => {
    const state = compile(mustLoad(textFiles({
      'tenants/default.yaml': 'name: default\n',
      'services/agents/assistant.yaml': 'security:\n  oauth2:\n    scopes: ["user:{{user_id}}", "tenant:{{tenant_id}}"]\n  isolation: per_tenant\n',
    })));
    expectAllValid(state);
  });

  it('other security scheme kinds and oauth2 flows validate', () => {
    const state = compile(mustLoad(textFiles({
      'tenants/default.yaml': 'name: default\n',
      'services/agents/multi.yaml': `card:
  securitySchemes:
    key: { type: apiKey, name: X-API-Key, in: header }
    bearer: { type: http, scheme: bearer, bearerFormat: JWT }
    oidc: { type: openIdConnect, openIdConnectUrl: "http://localhost/.well-known/openid-configuration" }
    mtls: { type: mutualTLS }
    oauth2:
      type: oauth2
      flows:
        clientCredentials: { tokenUrl: "http://x/token", scopes: {} }
        implicit: { authorizationUrl: "http://x/auth", scopes: {} }
        password: { tokenUrl: "http://x/token", refreshUrl: "http://x/token", scopes: {} }
  security:
    - key: []
    - oauth2: []
`,
    })));
    expectAllValid(state);
  });

  describe('the schema rejects invalid cards', () => {
    const good = (): Record<string, unknown> => structuredClone(compile(exampleRepo()).tenants[0]!.agents[0]!.card);

    it('accepts the baseline', () => {
      expect(errorsOf(good())).toEqual([]);
    });

    it.each(['name', 'description', 'url', 'version', 'protocolVersion', 'capabilities', 'skills', 'defaultInputModes', 'defaultOutputModes'])(
      'a card missing %s',
      (field) => {
        const card = good();
        delete card[field];
        expect(errorsOf(card).join('\n')).toContain(`must have required property '${field}'`);
      },
    );

    it('a security scheme of an unknown type', () => {
      const card = good();
      card.securitySchemes = { weird: { type: 'kerberos' } };
      expect(errorsOf(card)).not.toEqual([]);
    });

    it('an oauth2 scheme without flows, and an authorization code flow without tokenUrl', () => {
      const a = good();
      a.securitySchemes = { o: { type: 'oauth2' } };
      expect(errorsOf(a)).not.toEqual([]);
      const b = good();
      b.securitySchemes = { o: { type: 'oauth2', flows: { authorizationCode: { authorizationUrl: 'http://x', scopes: {} } } } };
      expect(errorsOf(b)).not.toEqual([]);
    });

    it('an apiKey scheme with an unknown location', () => {
      const card = good();
      card.securitySchemes = { k: { type: 'apiKey', name: 'k', in: 'body' } };
      expect(errorsOf(card)).not.toEqual([]);
    });

    it('a skill without tags, a wrong type, and a malformed security requirement', () => {
      const a = good();
      a.skills = [{ id: 's', name: 'S', description: 'd' }];
      expect(errorsOf(a).join('\n')).toContain("must have required property 'tags'");
      const b = good();
      b.name = 42;
      expect(errorsOf(b)).not.toEqual([]);
      const c = good();
      c.security = [{ oauth2: 'user' }];
      expect(errorsOf(c)).not.toEqual([]);
    });

    it('a provider missing url and a signature missing its signature', () => {
      const a = good();
      a.provider = { organization: 'x' };
      expect(errorsOf(a)).not.toEqual([]);
      const b = good();
      b.signatures = [{ protected: 'eyJ' }];
      expect(errorsOf(b)).not.toEqual([]);
    });
  });
});
