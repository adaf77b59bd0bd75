// A no-op plan over N tenants (default 50) against the real Kubernetes, PostgreSQL and Keycloak:
// requests made and time, per tenant, and the ratio no-op plan / apply (same process, same repo).
// Usage: npm run build && systemprompt dev up && node bench/plan/run.js [--tenants 50] [--users 10] [--target kubernetes,postgres,keycloak]
import { generateRepository, writeRepository } from '../compile/generate.js';
import { arg, cli, targetEnv, tempRepo } from '../lib.js';

const tenants = Number(arg('tenants', 50));
const users = Number(arg('users', 10));
const target = arg('target', 'kubernetes,postgres,keycloak');
const env = await targetEnv();
const median = async (n, fn) => {
  const xs = [];
  for (let i = 0; i < n; i++) xs.push(await fn());
  return xs.sort((a, b) => a.ms - b.ms)[Math.floor(n / 2)];
};

const dir = tempRepo(generateRepository({ tenants, users, agents: 5 }));
const apply = await cli(env, dir, 'apply', '--auto-approve', '--allow-destroy', '--target', target);
const plan = await median(3, () => cli(env, dir, 'plan', '--detailed-exitcode', '--target', target));
if (plan.json.changes.length !== 0) throw new Error(`the plan after apply is not empty: ${plan.json.changes.length} changes`);
const noopApply = await cli(env, dir, 'apply', '--auto-approve', '--target', target);
// Five times the users: the same requests (users live in Keycloak only; here they change nothing).
writeRepository(dir, generateRepository({ tenants, users: users * 5, agents: 5 }));
const planMoreUsers = await median(3, () => cli(env, dir, 'plan', '--detailed-exitcode', '--target', target));

console.log(JSON.stringify({
  tenants,
  users_per_tenant: users,
  target,
  apply_from_empty: { ms: apply.ms, writes: apply.json.result.writes, changes: apply.json.plan.changes.length },
  noop_plan: { ms: plan.ms, requests: plan.json.requests, requests_per_tenant: Number((plan.json.requests.total / tenants).toFixed(3)) },
  noop_plan_with_5x_users: { ms: planMoreUsers.ms, requests: planMoreUsers.json.requests.total },
  noop_apply: { ms: noopApply.ms, writes: noopApply.json.result.writes },
  ratio_noop_plan_to_apply: Number((plan.ms / apply.ms).toFixed(3)),
}, null, 2));

if (!process.argv.includes('--keep')) {
  writeRepository(dir, new Map([['systemprompt.yaml', 'tenancy:\n  enabled: true\n']]));
  await cli(env, dir, 'apply', '--auto-approve', '--allow-destroy', '--target', target);
}
