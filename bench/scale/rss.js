// Preloaded into the benchmarked child (node --import): writes [cpu seconds, peak RSS KiB] at exit,
// for machines without GNU time.
import { writeFileSync } from 'node:fs';

const file = process.env.SP_BENCH_RSS_FILE;
if (file) process.on('exit', () => {
  const u = process.resourceUsage();
  writeFileSync(file, JSON.stringify([(u.userCPUTime + u.systemCPUTime) / 1e6, u.maxRSS]));
});
