// The offline plan of bench/scale in one process, phase by phase (wall and CPU seconds, heap after
// each), then what `apply --watch` and the operator pay after a one-file change: the repository
// read and loaded again with the LoadCache of the first load, against a load without it.
// Usage: node bench/scale/phases.js DIR OUTFILE   (prints one JSON object)
import { appendFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { compile } from '../../dist/compile/compile.js';
import { readRepositoryFiles } from '../../dist/config/files.js';
import { LoadCache } from '../../dist/config/load-cache.js';
import { loadRepository } from '../../dist/config/repository.js';
import { writeJsonFile } from '../../dist/plan/json-stream.js';
import { computePlan, EMPTY_LIVE } from '../../dist/plan/plan.js';

const [dir, out] = process.argv.slice(2);
const phases = {};
let wall = performance.now();
let cpu = process.cpuUsage();
const lap = (name) => {
  const c = process.cpuUsage(cpu);
  phases[name] = { wall_s: round((performance.now() - wall) / 1000), cpu_s: round((c.user + c.system) / 1e6), heap_mb: Math.round(process.memoryUsage().heapUsed / 2 ** 20) };
  wall = performance.now();
  cpu = process.cpuUsage();
};
const round = (x) => Number(x.toFixed(2));

const files = await readRepositoryFiles(dir);
lap('read');
const cache = new LoadCache();
const loaded = loadRepository(files, { cache });
if (!loaded.repo) throw new Error('invalid repository');
lap('load');
const desired = compile(loaded.repo);
lap('compile');
const plan = computePlan(desired, EMPTY_LIVE, { offline: true });
lap('plan');
await writeJsonFile(out, plan);
lap('write');

// One tenant gains a user; the repository is read and loaded again, as a watch round does.
const tenant = readdirSync(path.join(dir, 'tenants')).sort()[1];
appendFileSync(path.join(dir, 'tenants', tenant), `  - email: added@${tenant.replace(/\.yaml$/, '')}.example.com\n    scopes: [user]\n`);
const timed = async (load) => {
  const w = performance.now();
  const c = process.cpuUsage();
  const r = load(await readRepositoryFiles(dir));
  if (!r.repo) throw new Error('invalid repository');
  const u = process.cpuUsage(c);
  return { wall_s: round((performance.now() - w) / 1000), cpu_s: round((u.user + u.system) / 1e6) };
};
const parsedBefore = cache.stats.parsed;
const cached = await timed((f) => loadRepository(f, { cache }));
const full = await timed((f) => loadRepository(f));
console.log(JSON.stringify({
  phases,
  reload_after_one_change: { ...cached, files_parsed: cache.stats.parsed - parsedBefore, files_reused: files.size - (cache.stats.parsed - parsedBefore) },
  full_load: full,
}));
