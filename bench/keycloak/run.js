// Keycloak at scale: T tenants x U users (default 20 x 500) from empty, then a no-op plan, then a
// one-user change. Reports time, requests and writes of each step (Keycloak only), and the CPU
// seconds Keycloak spent on it when it is the local stack's.
// Usage: npm run build && systemprompt dev up && node bench/keycloak/run.js [--tenants 20] [--users 500] [--keep] [--again]
// --keep leaves the realms; --again starts from the realms a --keep run left (its first apply then
// only undoes that run's one-user change), so the plan figures can be re-measured in a minute.
import { generateRepository, writeRepository } from '../compile/generate.js';
import { arg, cli, keycloakCpu, targetEnv, tempRepo } from '../lib.js';

const tenants = Number(arg('tenants', 20));
const users = Number(arg('users', 500));
const env = await targetEnv();
const target = 'keycloak';

const again = process.argv.includes('--again');
const files = generateRepository({ tenants, users, agents: 5 });
const dir = tempRepo(files);
// Keycloak's CPU seconds per step, when it is the local stack's (steadier than wall time on a shared machine).
const clock = await keycloakCpu();
const timed = async (...args) => {
  const before = clock?.();
  const r = await cli(env, dir, ...args);
  if (clock) r.keycloak_cpu_s = Number((clock() - before).toFixed(1));
  return r;
};
const apply = await timed('apply', '--auto-approve', '--allow-destroy', '--target', target, '--concurrency', arg('concurrency', '4'));
if (apply.json.result.failed.length) throw new Error(`apply failed: ${JSON.stringify(apply.json.result.failed.slice(0, 3))}`);
if (again && apply.json.plan.changes.length > 1) throw new Error(`--again: ${apply.json.plan.changes.length} changes; run once with --keep first, with the same --tenants and --users`);
const plan = await timed('plan', '--detailed-exitcode', '--target', target);

// One user loses one scope.
const file = 'tenants/tenant-0001.yaml';
const edited = files.get(file).replace(/(  - email: user0@tenant-0001\.example\.com\n    scopes: \[)([^\]]*), ([a-z]+)\]/, '$1$2]');
if (edited === files.get(file)) throw new Error('the one-user edit did not apply');
writeRepository(dir, new Map([...files, [file, edited]]));
const onePlan = await timed('plan', '--target', target);
const oneApply = await timed('apply', '--auto-approve', '--target', target);

console.log(JSON.stringify({
  tenants,
  users_per_tenant: users,
  users_total: tenants * users,
  [again ? 'first_apply' : 'from_empty']: { ms: apply.ms, keycloak_cpu_s: apply.keycloak_cpu_s, changes: apply.json.plan.changes.length, writes: apply.json.result.writes },
  noop_plan: { ms: plan.ms, keycloak_cpu_s: plan.keycloak_cpu_s, changes: plan.json.changes.length, requests: plan.json.requests.keycloak, requests_per_tenant: Number((plan.json.requests.keycloak / tenants).toFixed(2)) },
  one_user_change: {
    plan_ms: onePlan.ms,
    plan_keycloak_cpu_s: onePlan.keycloak_cpu_s,
    plan_requests: onePlan.json.requests.keycloak,
    changes: onePlan.json.changes.map((c) => `${c.action} ${c.kind} ${c.name}`),
    apply_ms: oneApply.ms,
    apply_keycloak_cpu_s: oneApply.keycloak_cpu_s,
    writes: oneApply.json.result.writes,
  },
}, null, 2));

if (!process.argv.includes('--keep')) {
  writeRepository(dir, new Map([['systemprompt.yaml', 'tenancy:\n  enabled: true\n']]));
  await cli(env, dir, 'apply', '--auto-approve', '--allow-destroy', '--target', target);
}
