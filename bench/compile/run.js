// validate (parse + schema + cross-file rules) vs. parsing the same files with the `yaml` package
// alone, in the same process, on a synthetic repository (1,000 tenants x 10 users, 50 agents).
// Usage: npm run build && node bench/compile/run.js [--tenants N] [--users N] [--agents N] [--rounds N]
import { parse } from 'yaml';
import { loadRepository } from '../../dist/config/repository.js';
import { compile } from '../../dist/compile/compile.js';
import { generateRepository } from './generate.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
};
const opts = { tenants: arg('tenants', 1000), users: arg('users', 10), agents: arg('agents', 50) };
const rounds = arg('rounds', 7);

const text = generateRepository(opts);
const bytes = new Map([...text].map(([k, v]) => [k, Buffer.from(v)]));
const totalBytes = [...bytes.values()].reduce((n, b) => n + b.length, 0);
const dec = new TextDecoder();

function baseline() {
  let n = 0;
  for (const b of bytes.values()) if (parse(dec.decode(b))) n++;
  return n;
}
function validate() {
  const r = loadRepository(bytes);
  if (!r.repo) throw new Error(`synthetic repository invalid: ${JSON.stringify(r.diagnostics[0])}`);
  return r.repo;
}
const time = (fn) => {
  const t0 = process.hrtime.bigint();
  const v = fn();
  return [Number(process.hrtime.bigint() - t0) / 1e6, v];
};
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

// warm up both paths (JIT, ajv compilation)
baseline();
validate();

const base = [];
const val = [];
const comp = [];
for (let i = 0; i < rounds; i++) {
  // alternate the order so neither side always runs on a warmer heap
  if (i % 2 === 0) {
    base.push(time(baseline)[0]);
    val.push(time(validate)[0]);
  } else {
    val.push(time(validate)[0]);
    base.push(time(baseline)[0]);
  }
  const [, repo] = time(validate);
  comp.push(time(() => compile(repo))[0]);
}
const b = median(base);
const v = median(val);
const result = {
  repository: { ...opts, files: bytes.size, bytes: totalBytes },
  rounds,
  baseline_yaml_parse_ms: Math.round(b),
  validate_ms: Math.round(v),
  ratio_validate_to_parse: Number((v / b).toFixed(2)),
  compile_ms: Math.round(median(comp)),
  heap_used_mb: Math.round(process.memoryUsage().heapUsed / 2 ** 20),
};
console.log(JSON.stringify(result, null, 2));
