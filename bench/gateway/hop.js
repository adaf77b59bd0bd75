// What one hop between processes costs on this machine, apart from any proxy: a one-byte TCP round
// trip over 127.0.0.1 from this process (pinned to CPU 1) to an echo process pinned to CPU 0 (the
// other core, as the gateway is in run.js) and to one pinned to CPU 1 (the same core), after an idle
// millisecond (as at a quarter load, where a core sleeps between requests) and back to back. A call
// through the gateway makes two such hops more than a direct one (client → gateway → upstream and
// back), each across cores in run.js. Linux with taskset and two CPUs.
//
// Usage: node bench/gateway/hop.js [--count 5000] [-o json]
import { execFileSync, fork } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

if (process.argv[2] === '--echo') {
  // The echo process: answers every byte it gets.
  const server = net.createServer((s) => {
    s.setNoDelay(true);
    s.on('data', (d) => s.write(d));
  });
  server.listen(0, '127.0.0.1', () => process.send(server.address().port));
} else {
  let opts;
  try {
    opts = parseArgs({ strict: true, options: { count: { type: 'string', default: '5000' }, output: { type: 'string', short: 'o' }, help: { type: 'boolean', short: 'h', default: false } } }).values;
  } catch (err) {
    process.stderr.write(`bench hop: ${err.message}\nusage: node bench/gateway/hop.js [--count 5000] [-o json]\n`);
    process.exit(2);
  }
  if (opts.help) {
    process.stdout.write('usage: node bench/gateway/hop.js [--count 5000] [-o json]\n  --count N  round trips per case (5000)\n  -o json    the figures as JSON\n');
    process.exit(0);
  }
  const count = Number(opts.count);
  if (!Number.isInteger(count) || count < 100) {
    process.stderr.write(`bench hop: --count must be a whole number of at least 100, not ${JSON.stringify(opts.count)}\n`);
    process.exit(2);
  }
  if (opts.output !== undefined && opts.output !== 'json') {
    process.stderr.write(`bench hop: -o must be json, not ${opts.output}\n`);
    process.exit(2);
  }
  try {
    execFileSync('taskset', ['-a', '-c', '-p', '1', String(process.pid)], { stdio: 'ignore' });
  } catch {
    process.stderr.write('bench hop: needs Linux, taskset and two CPUs\n');
    process.exit(1);
  }
  const self = fileURLToPath(import.meta.url);
  /** `count` round trips to an echo process on `cpu`, each after `gapMs` idle (0: back to back): latencies in ms. */
  const roundTrips = (cpu, gapMs) =>
    new Promise((resolve, reject) => {
      const child = fork(self, ['--echo'], { execPath: 'taskset', execArgv: ['-c', cpu, process.execPath] });
      child.on('error', reject);
      child.once('message', (port) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.setNoDelay(true);
        const times = [];
        let t0 = 0n;
        const send = () => {
          t0 = process.hrtime.bigint();
          socket.write('x');
        };
        socket.on('connect', send);
        socket.on('error', reject);
        socket.on('data', () => {
          times.push(Number(process.hrtime.bigint() - t0) / 1e6);
          if (times.length < count) {
            if (gapMs) setTimeout(send, gapMs);
            else setImmediate(send);
            return;
          }
          socket.destroy();
          child.kill();
          resolve(times.sort((a, b) => a - b));
        });
      });
    });
  const at = (sorted, q) => Number(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))].toFixed(3));
  const result = {};
  for (const [name, cpu] of [['other_core', '0'], ['same_core', '1']]) {
    for (const [load, gap] of [['after_1ms_idle', 1], ['back_to_back', 0]]) {
      const t = await roundTrips(cpu, gap);
      result[`${name}_${load}`] = { round_trips: t.length, p50_ms: at(t, 0.5), p90_ms: at(t, 0.9), p99_ms: at(t, 0.99), p999_ms: at(t, 0.999) };
    }
  }
  if (opts.output === 'json') console.log(JSON.stringify({ node: process.version, ...result }, null, 2));
  else for (const [k, r] of Object.entries(result)) console.log(`${k.padEnd(26)} p50 ${r.p50_ms} ms  p90 ${r.p90_ms} ms  p99 ${r.p99_ms} ms  p99.9 ${r.p999_ms} ms`);
}
