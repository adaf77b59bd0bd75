// The two Keycloak isolation modes side by side, in one process against the same Keycloak:
// organization isolation at T tenants (default 1,000), then a realm per tenant at R tenants
// (default 200), each x U users (default 5): apply from empty, a no-op plan, a one-user change, and the
// removal of everything. Then organization isolation at a tenth of the tenants, with U and with 10 x U
// users each, to show what users cost a no-op plan (users are listed in pages of 500).
// Keycloak only (`--target keycloak`): namespaces and databases are the same in both modes.
// Usage: npm run build && systemprompt dev up && node bench/organizations/run.js [--tenants 1000] [--realm-tenants 200] [--users 5] [--skip-check]
import { generateRepository, writeRepository } from '../compile/generate.js';
import { arg, cli, targetEnv, tempRepo } from '../lib.js';

const env = await targetEnv();
const users = Number(arg('users', 5));
const target = ['--target', 'keycloak'];
const log = (line) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${line}\n`);

/** One mode at one size: from empty, no-op plan, one-user change, removal. */
async function measure(isolation, tenants, usersPerTenant = users) {
  const files = generateRepository({ tenants, users: usersPerTenant, agents: 5, isolation });
  const dir = tempRepo(files);
  log(`${isolation}: ${tenants} tenants x ${usersPerTenant} users, apply from empty`);
  const apply = await cli(env, dir, 'apply', '--auto-approve', '--allow-destroy', ...target, '--concurrency', arg('concurrency', '4'));
  if (apply.json.result.failed.length) throw new Error(`apply failed: ${JSON.stringify(apply.json.result.failed.slice(0, 3))}`);
  log(`${isolation}: applied in ${apply.ms} ms; no-op plan`);
  const plan = await cli(env, dir, 'plan', '--detailed-exitcode', ...target);
  if (plan.json.changes.length) throw new Error(`the plan after apply is not empty: ${plan.json.changes.slice(0, 5).map((c) => `${c.action} ${c.kind} ${c.name}`).join(', ')}`);
  // Each step as it ends: a long run stopped early still leaves its figures.
  log(`${isolation}: no-op plan ${plan.ms} ms, ${plan.json.requests.keycloak} Keycloak requests; one-user change`);

  // One user of one tenant loses one scope.
  const file = 'tenants/tenant-0001.yaml';
  const edited = files.get(file).replace(/(  - email: user0@tenant-0001\.example\.com\n    scopes: \[)([^\]]*), ([a-z]+)\]/, '$1$2]');
  if (edited === files.get(file)) throw new Error('the one-user edit did not apply');
  writeRepository(dir, new Map([...files, [file, edited]]));
  const onePlan = await cli(env, dir, 'plan', ...target);
  const oneApply = await cli(env, dir, 'apply', '--auto-approve', ...target);
  log(`${isolation}: one-user change planned in ${onePlan.ms} ms, applied with ${oneApply.json.result.writes} writes`);

  let removal;
  if (!process.argv.includes('--keep')) {
    log(`${isolation}: removing everything`);
    writeRepository(dir, new Map([['systemprompt.yaml', 'tenancy:\n  enabled: true\n']]));
    const gone = await cli(env, dir, 'apply', '--auto-approve', '--allow-destroy', ...target);
    removal = { ms: gone.ms, writes: gone.json.result.writes };
  }
  const requests = plan.json.requests.keycloak;
  const result = {
    isolation,
    tenants,
    users_per_tenant: usersPerTenant,
    from_empty: { ms: apply.ms, ms_per_tenant: Math.round(apply.ms / tenants), changes: apply.json.plan.changes.length, writes: apply.json.result.writes },
    noop_plan: { ms: plan.ms, requests, requests_per_tenant: Number((requests / tenants).toFixed(2)) },
    one_user_change: { plan_ms: onePlan.ms, changes: onePlan.json.changes.map((c) => `${c.action} ${c.kind} ${c.name}`), apply_ms: oneApply.ms, writes: oneApply.json.result.writes },
    ...(removal ? { removal } : {}),
  };
  log(JSON.stringify(result));
  return result;
}

const org = await measure('organization', Number(arg('tenants', 1000)));
const realm = await measure('per_tenant', Number(arg('realm-tenants', 200)));
const small = Math.max(2, Math.round(org.tenants / 10));
const check = process.argv.includes('--skip-check') ? undefined : [await measure('organization', small), await measure('organization', small, users * 10)];

const ratio = (a, b) => Number((a / b).toFixed(2));
console.log(JSON.stringify({
  realm_per_tenant: realm,
  organization: org,
  ...(check ? { organization_users_check: check } : {}),
  ratios_realm_over_organization_per_tenant: {
    apply_from_empty_ms: ratio(realm.from_empty.ms_per_tenant, org.from_empty.ms_per_tenant),
    noop_plan_requests: ratio(realm.noop_plan.requests_per_tenant, org.noop_plan.requests_per_tenant),
    noop_plan_ms: ratio(realm.noop_plan.ms / realm.tenants, org.noop_plan.ms / org.tenants),
  },
  ...(check ? { noop_requests_10x_users_over_1x: ratio(check[1].noop_plan.requests, check[0].noop_plan.requests) } : {}),
}, null, 2));
