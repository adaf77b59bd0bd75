// Synthetic config repository: N tenants x U users, A agents (deterministic, no randomness).
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const SCOPES = ['user', 'read', 'write', 'admin'];

/** The repository as a Map of relative path -> text. */
export function generateRepository({ tenants = 1000, users = 10, agents = 50, isolation = undefined } = {}) {
  const files = new Map();
  files.set('systemprompt.yaml', [
    'tenancy:',
    '  enabled: true',
    ...(isolation ? [`  isolation: ${isolation}`] : []),
    '  default_tenant: default',
    'scopes:',
    '  anonymous: Public access',
    '  user: Authenticated user access',
    '  read: Read tenant data',
    '  write: Write tenant data',
    '  admin: Administer the tenant',
    '',
  ].join('\n'));
  for (let a = 0; a < agents; a++) {
    const name = `agent-${String(a).padStart(3, '0')}`;
    files.set(`services/agents/${name}.yaml`, [
      `name: ${name}`,
      `tenant_aware: ${a % 5 === 0}`,
      'security:',
      '  oauth2:',
      '    scopes: ["tenant:{{tenant_id}}"]',
      '  isolation: per_tenant',
      'card:',
      `  description: Synthetic agent ${a}`,
      '  securitySchemes:',
      '    oauth2:',
      '      type: oauth2',
      '      flows:',
      '        authorizationCode:',
      '          authorizationUrl: "http://localhost:8080/api/v1/core/oauth/authorize"',
      '          tokenUrl: "http://localhost:8080/api/v1/core/oauth/token"',
      '          scopes:',
      '            user: "Authenticated user access"',
      '            read: "Read tenant data"',
      '            write: "Write tenant data"',
      '  security:',
      '    - oauth2: ["user"]',
      '',
    ].join('\n'));
  }
  for (let t = 0; t < tenants; t++) {
    const name = t === 0 ? 'default' : `tenant-${String(t).padStart(4, '0')}`;
    const lines = [
      `name: ${name}`,
      `display_name: Tenant ${t}`,
      'quotas:',
      `  cpu: "${1 + (t % 8)}"`,
      `  memory: ${1 + (t % 16)}Gi`,
      '  storage: 20Gi',
      `  pods: ${10 + (t % 20)}`,
      '  requests_per_minute: 600',
      `agents: [agent-${String(t % agents).padStart(3, '0')}, agent-${String((t + 1) % agents).padStart(3, '0')}]`,
      `deletion_policy: ${t % 2 ? 'retain' : 'delete'}`,
      'users:',
    ];
    for (let u = 0; u < users; u++) {
      lines.push(`  - email: user${u}@${name}.example.com`);
      lines.push(`    scopes: [${SCOPES.slice(0, 1 + ((t + u) % SCOPES.length)).join(', ')}]`);
      if (u % 7 === 6) lines.push('    enabled: false');
    }
    lines.push('');
    files.set(`tenants/${name}.yaml`, lines.join('\n'));
  }
  return files;
}

export function writeRepository(dir, files) {
  rmSync(dir, { recursive: true, force: true });
  for (const [rel, text] of files) {
    const p = path.join(dir, rel);
    mkdirSync(path.dirname(p), { recursive: true });
    writeFileSync(p, text);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2] ?? path.join(path.dirname(new URL(import.meta.url).pathname), 'generated');
  const files = generateRepository();
  writeRepository(dir, files);
  console.log(`wrote ${files.size} files to ${dir}`);
}
