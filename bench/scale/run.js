// How the offline core grows with the repository: `systemprompt plan --offline -o json --out FILE`
// as a child process on synthetic repositories of N tenants x U users (default 1,000 and 10,000
// tenants x 5 users), with its wall time, peak RSS and output sizes, and the ratio of each size to
// the first (the baseline, run in the same process): linear growth shows as ratios close to the
// ratio of the sizes. Then, unless --no-phases, the same in one process phase by phase (phases.js:
// read, load, compile, plan, write) and a re-load after one file changed, with the LoadCache that
// `apply --watch` and the operator keep, against a full load. No target is contacted.
// Usage: npm run build && node bench/scale/run.js [--sizes 1000,10000] [--users 5] [--agents 50] [--keep] [--no-phases]
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateRepository, writeRepository } from '../compile/generate.js';

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const sizes = String(arg('sizes', '1000,10000')).split(',').map(Number);
const users = Number(arg('users', 5));
const agents = Number(arg('agents', 50));
const keep = process.argv.includes('--keep');
const withPhases = !process.argv.includes('--no-phases');
const phasesScript = fileURLToPath(new URL('./phases.js', import.meta.url));
const bin = fileURLToPath(new URL('../../bin/systemprompt.js', import.meta.url));
const rssPreload = fileURLToPath(new URL('./rss.js', import.meta.url));
const TIME = process.env.SP_BENCH_TIME ?? '/usr/bin/time'; // GNU time; without it, the child's own figures

/** Run the CLI as a child; peak RSS from GNU time (or, without it, the child's own maxRSS at exit). */
function runChild(args, dir) {
  return new Promise((resolve) => {
    const stdoutFile = path.join(dir, 'stdout.json');
    const stderrFile = path.join(dir, 'stderr.txt');
    const timeFile = path.join(dir, 'time.txt');
    const rssFile = path.join(dir, 'rss.txt');
    const useTime = existsSync(TIME);
    const nodeArgs = ['--import', rssPreload, bin, ...args];
    const [cmd, argv] = useTime ? [TIME, ['-f', '%U %S %M', '-o', timeFile, process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
    const out = openSync(stdoutFile, 'w');
    const err = openSync(stderrFile, 'w');
    // Only what the CLI reads offline; nothing that points at a live stack.
    const env = { PATH: process.env.PATH, HOME: process.env.HOME, SP_BENCH_RSS_FILE: rssFile };
    const t0 = process.hrtime.bigint();
    const child = spawn(cmd, argv, { stdio: ['ignore', out, err], env, cwd: dir });
    child.on('exit', (code, signal) => {
      const wallS = Number(process.hrtime.bigint() - t0) / 1e9;
      closeSync(out);
      closeSync(err);
      let peakKb = null;
      let cpuS = null;
      if (useTime && existsSync(timeFile)) {
        const m = /([\d.]+) ([\d.]+) (\d+)\s*$/.exec(readFileSync(timeFile, 'utf8').trim());
        if (m) [cpuS, peakKb] = [Number(m[1]) + Number(m[2]), Number(m[3])];
      } else if (existsSync(rssFile)) [cpuS, peakKb] = JSON.parse(readFileSync(rssFile, 'utf8'));
      const stderr = readFileSync(stderrFile, 'utf8');
      resolve({ code, signal, wallS, cpuS, peakKb, stdoutBytes: statSync(stdoutFile).size, stderr });
    });
  });
}

/** phases.js as a child: its JSON, or undefined (with a note on stderr) when it failed. */
function runPhases(repo, outFile, dir) {
  return new Promise((resolve) => {
    const stdoutFile = path.join(dir, 'phases.json');
    const out = openSync(stdoutFile, 'w');
    const child = spawn(process.execPath, [phasesScript, repo, outFile], { stdio: ['ignore', out, 'inherit'], env: { PATH: process.env.PATH, HOME: process.env.HOME } });
    child.on('exit', (code) => {
      closeSync(out);
      if (code !== 0) {
        process.stderr.write(`phases.js exited ${code}\n`);
        resolve(undefined);
      } else resolve(JSON.parse(readFileSync(stdoutFile, 'utf8')));
    });
  });
}

const round = (x, d = 2) => (x == null ? null : Number(x.toFixed(d)));
const runs = [];
for (const tenants of sizes) {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sp-bench-scale-'));
  const repo = path.join(dir, 'repo');
  const files = generateRepository({ tenants, users, agents });
  writeRepository(repo, files);
  const outFile = path.join(dir, 'plan.json');
  const r = await runChild(['plan', '--offline', '-o', 'json', '--out', outFile, '--dir', repo], dir);
  const ok = r.code === 0 && existsSync(outFile);
  const entry = {
    tenants,
    users_per_tenant: users,
    agents,
    files: files.size,
    ok,
    exit_code: r.code,
    ...(r.signal ? { signal: r.signal } : {}),
    wall_s: round(r.wallS),
    // user + system CPU of the child: less sensitive than wall time to other load on the machine
    cpu_s: round(r.cpuS),
    peak_rss_mb: r.peakKb == null ? null : Math.round(r.peakKb / 1024),
    plan_file_mb: ok ? round(statSync(outFile).size / 2 ** 20, 1) : null,
    stdout_mb: round(r.stdoutBytes / 2 ** 20, 1),
  };
  if (!ok) entry.error = r.stderr.trim().split('\n').slice(0, 6).join('\n');
  if (ok && withPhases) {
    rmSync(outFile, { force: true });
    const p = await runPhases(repo, outFile, dir);
    if (p) Object.assign(entry, p);
  }
  runs.push(entry);
  if (!keep) rmSync(dir, { recursive: true, force: true });
  else entry.dir = dir;
}

const base = runs[0];
const ratios = runs.slice(1).map((r) => ({
  of: `${r.tenants}/${base.tenants}`,
  size: round(r.tenants / base.tenants),
  wall: r.ok && base.ok ? round(r.wall_s / base.wall_s) : null,
  cpu: r.ok && base.ok && r.cpu_s && base.cpu_s ? round(r.cpu_s / base.cpu_s) : null,
  peak_rss: r.ok && base.ok && r.peak_rss_mb && base.peak_rss_mb ? round(r.peak_rss_mb / base.peak_rss_mb) : null,
}));
console.log(JSON.stringify({ node: process.version, cpus: os.cpus().length, runs, ratios }, null, 2));
