import { stringify } from 'yaml';
import { toStructural, type ConversionNote, type Schema } from './structural.js';

/**
 * The CustomResourceDefinitions of the operator (DESIGN §7), generated from schemas/ so that a
 * tenant file and a Tenant resource validate alike. Pure: schemas in, CRD objects and text out;
 * `npm run crds` (src/crds/cli.ts) writes them to crds/.
 */

export const CRD_GROUP = 'systemprompt.io';
export const CRD_VERSION = 'v1alpha1';
export const CRD_API_VERSION = `${CRD_GROUP}/${CRD_VERSION}`;
export const CRD_FIELD_MANAGER = 'systemprompt';
/** The command that regenerates crds/, named in each file's header and in the sync test's failure. */
export const REGENERATE_COMMAND = 'npm run crds';

export interface CrdSchemas {
  /** schemas/tenant.schema.json */
  tenant: Schema;
  /** schemas/agent.schema.json */
  agent: Schema;
}

export interface GeneratedCrd {
  /** File name in crds/, e.g. `tenants.systemprompt.io.yaml`. */
  file: string;
  kind: string;
  /** The CustomResourceDefinition object. */
  crd: Schema;
  /** The schema files it comes from, relative to the project root. */
  sources: string[];
  notes: ConversionNote[];
}

const DNS_LABEL = '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$';

/** kstatus conditions (cli-utils): Ready, Reconciling, Stalled, merged per `type`. */
function conditionsSchema(): Schema {
  return {
    description: 'kstatus conditions: Ready, Reconciling and Stalled, one entry per type.',
    type: 'array',
    'x-kubernetes-list-type': 'map',
    'x-kubernetes-list-map-keys': ['type'],
    maxItems: 16,
    items: {
      type: 'object',
      required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
      properties: {
        type: { description: 'Ready, Reconciling or Stalled.', type: 'string', maxLength: 316, pattern: '^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$' },
        status: { type: 'string', enum: ['True', 'False', 'Unknown'] },
        observedGeneration: { description: 'The metadata.generation this condition was set for.', type: 'integer', format: 'int64', minimum: 0 },
        lastTransitionTime: { description: 'When status last changed.', type: 'string', format: 'date-time' },
        reason: { description: 'A CamelCase reason, e.g. Applied, Progressing, InvalidConfig.', type: 'string', minLength: 1, maxLength: 1024, pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$' },
        message: { description: 'Human-readable details.', type: 'string', maxLength: 32768 },
      },
    },
  };
}

function observedGeneration(): Schema {
  return { description: 'The metadata.generation the operator last acted on.', type: 'integer', format: 'int64', minimum: 0 };
}

const READY_COLUMN = { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' };
const AGE_COLUMN = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };

function crd(kind: string, plural: string, spec: Schema, status: Schema, columns: Schema[], description: string): Schema {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${plural}.${CRD_GROUP}`,
      labels: { 'app.kubernetes.io/name': 'systemprompt', 'app.kubernetes.io/part-of': 'systemprompt' },
    },
    spec: {
      group: CRD_GROUP,
      scope: 'Namespaced',
      names: { kind, listKind: `${kind}List`, plural, singular: kind.toLowerCase(), categories: ['systemprompt'] },
      versions: [
        {
          name: CRD_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: columns,
          schema: {
            openAPIV3Schema: {
              description,
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec,
                status,
              },
            },
          },
        },
      ],
    },
  };
}

export function tenantCrd(schemas: CrdSchemas): GeneratedCrd {
  const { schema: spec, notes } = toStructural(schemas.tenant, schemas.tenant, 'spec');
  const status: Schema = {
    description: 'What the operator last saw and did for this tenant.',
    type: 'object',
    properties: {
      conditions: conditionsSchema(),
      observedGeneration: observedGeneration(),
      realm: { description: "The tenant's Keycloak realm.", type: 'string' },
      namespace: { description: "The tenant's Kubernetes namespace.", type: 'string' },
      database: { description: "The tenant's PostgreSQL database.", type: 'string' },
      lastError: { description: 'The last error reconciling this tenant; empty once it succeeds.', type: 'string', maxLength: 32768 },
    },
  };
  const columns = [
    READY_COLUMN,
    { name: 'Realm', type: 'string', jsonPath: '.status.realm' },
    { name: 'Namespace', type: 'string', jsonPath: '.status.namespace' },
    { name: 'Database', type: 'string', jsonPath: '.status.database' },
    AGE_COLUMN,
  ];
  return {
    file: `tenants.${CRD_GROUP}.yaml`,
    kind: 'Tenant',
    crd: crd('Tenant', 'tenants', spec, status, columns, 'A tenant: its Keycloak realm, Kubernetes namespace and PostgreSQL database. `spec` is a tenant file (tenants/<name>.yaml).'),
    sources: ['schemas/tenant.schema.json'],
    notes,
  };
}

/** `spec` is the single-agent form of an agent file (`$defs/agent`): one Agent object per agent. */
export function agentCrd(schemas: CrdSchemas): GeneratedCrd {
  const defs = schemas.agent.$defs as Record<string, Schema> | undefined;
  const agent = defs?.agent;
  if (!agent) throw new Error('schemas/agent.schema.json has no $defs/agent');
  const { schema: spec, notes } = toStructural(agent, schemas.agent, 'spec');
  const status: Schema = {
    description: 'What the operator last saw and did for this agent.',
    type: 'object',
    properties: {
      conditions: conditionsSchema(),
      observedGeneration: observedGeneration(),
      lastError: { description: 'The last error reconciling this agent; empty once it succeeds.', type: 'string', maxLength: 32768 },
    },
  };
  const columns = [READY_COLUMN, { name: 'Tenant-Aware', type: 'boolean', jsonPath: '.spec.tenant_aware' }, AGE_COLUMN];
  return {
    file: `agents.${CRD_GROUP}.yaml`,
    kind: 'Agent',
    crd: crd('Agent', 'agents', spec, status, columns, 'An AI agent: an OAuth client in each tenant realm that gets it, and its A2A card. `spec` is one agent of services/agents/*.yaml.'),
    sources: ['schemas/agent.schema.json'],
    notes,
  };
}

/** Where a config repository lives and how to apply it; written by hand (it is not a config file). */
export function configSourceCrd(): GeneratedCrd {
  const spec: Schema = {
    description: 'A git repository holding a systemprompt config, and how to apply it.',
    type: 'object',
    required: ['git'],
    properties: {
      git: {
        type: 'object',
        required: ['url'],
        properties: {
          url: {
            description: 'The repository: https://…, ssh://…, user@host:path (scp-like SSH) or file:///path.',
            type: 'string',
            minLength: 1,
            maxLength: 2048,
            pattern: '^(https://|ssh://|file://|[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:)[^\\s]+$',
          },
          ref: {
            description: 'What to check out: exactly one of branch, tag or commit. Default: the remote HEAD.',
            type: 'object',
            properties: {
              branch: { type: 'string', minLength: 1, maxLength: 255 },
              tag: { type: 'string', minLength: 1, maxLength: 255 },
              commit: { description: 'A full commit hash (SHA-1 or SHA-256).', type: 'string', pattern: '^([0-9a-f]{40}|[0-9a-f]{64})$' },
            },
            oneOf: [{ required: ['branch'] }, { required: ['tag'] }, { required: ['commit'] }],
          },
          path: { description: 'The folder of the config repository inside the git repository.', type: 'string', default: '.', maxLength: 1024, pattern: '^[^/]' },
          secretRef: {
            description:
              "A Secret in this ConfigSource's namespace with the repository's credentials, read at every fetch. https://: `username` and `password`, or `token` (sent as the password, username `username` or else `x-access-token`), and optionally `ca.crt` (PEM) to trust a private CA. SSH: `identity` (a private key without passphrase) and `known_hosts` (required: host keys are always checked).",
            type: 'object',
            required: ['name'],
            properties: { name: { type: 'string', minLength: 1, maxLength: 253 } },
          },
        },
      },
      interval: { description: 'How often to fetch the repository, e.g. 30s, 1m, 1h30m.', type: 'string', default: '1m', pattern: '^([0-9]+(\\.[0-9]+)?(ms|s|m|h))+$' },
      suspend: { description: 'Stop fetching and applying; what was applied stays.', type: 'boolean', default: false },
      allowDestroy: {
        description: 'Apply destructive changes (deleting realms, namespaces, databases). When false they wait and are reported in status.',
        type: 'boolean',
        default: false,
      },
    },
  };
  const status: Schema = {
    description: 'What the operator last fetched, planned and applied.',
    type: 'object',
    properties: {
      conditions: conditionsSchema(),
      observedGeneration: observedGeneration(),
      lastAttemptedRevision: { description: 'The last commit fetched and tried.', type: 'string' },
      lastAppliedRevision: { description: 'The last commit applied completely.', type: 'string' },
      plan: {
        description: 'The changes of the last plan.',
        type: 'object',
        properties: {
          create: { type: 'integer', minimum: 0 },
          update: { type: 'integer', minimum: 0 },
          delete: { type: 'integer', minimum: 0 },
        },
      },
      diagnostics: {
        description: 'Why lastAttemptedRevision does not validate, one `file:line:col: code: message` each.',
        type: 'array',
        maxItems: 1000,
        items: { type: 'string' },
      },
    },
  };
  const columns = [READY_COLUMN, { name: 'Revision', type: 'string', jsonPath: '.status.lastAppliedRevision' }, AGE_COLUMN];
  return {
    file: `configsources.${CRD_GROUP}.yaml`,
    kind: 'ConfigSource',
    crd: crd('ConfigSource', 'configsources', spec, status, columns, 'A git repository with a systemprompt config that the operator applies.'),
    sources: ['src/crds/generate.ts'],
    notes: [],
  };
}

export function generateCrds(schemas: CrdSchemas): GeneratedCrd[] {
  return [tenantCrd(schemas), agentCrd(schemas), configSourceCrd()];
}

/** The text of one file in crds/: a header saying where it comes from, then the CRD. */
export function renderCrd(g: GeneratedCrd): string {
  const header = [
    `# Generated by \`${REGENERATE_COMMAND}\` (src/crds/generate.ts) from ${g.sources.join(', ')}. Do not edit;`,
    '# test/unit/crds.test.ts fails when this file and the schemas disagree.',
  ];
  const preserve = g.notes.filter((n) => n.kind === 'preserve-unknown');
  if (preserve.length > 0) {
    header.push('# Nodes a structural schema cannot express (x-kubernetes-preserve-unknown-fields: true):');
    for (const n of preserve) header.push(`#   ${n.path}: ${n.what}`);
  }
  const other = g.notes.filter((n) => n.kind !== 'preserve-unknown');
  if (other.length > 0) {
    header.push('# Checked differently than in the JSON Schema:');
    for (const n of other) header.push(`#   ${n.path}: ${n.kind === 'cel' ? 'CEL rule: ' : 'dropped: '}${n.what}`);
  }
  return `${header.join('\n')}\n${stringify(g.crd, { lineWidth: 0, aliasDuplicateObjects: false })}`;
}

/** A Tenant or Agent object: the file's content as `spec`. */
export function customResource(kind: 'Tenant' | 'Agent', name: string, spec: unknown, namespace?: string): Schema {
  if (!new RegExp(DNS_LABEL).test(name)) throw new Error(`${kind} name ${name} is not a DNS-1123 label`);
  return {
    apiVersion: CRD_API_VERSION,
    kind,
    metadata: { name, ...(namespace ? { namespace } : {}), labels: { 'app.kubernetes.io/part-of': 'systemprompt' } },
    spec,
  };
}
