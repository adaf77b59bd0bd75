// Preloaded into the benchmarked child (node --import): writes its peak RSS (KiB) at exit, for
// machines without GNU time.
import { writeFileSync } from 'node:fs';

const file = process.env.SP_BENCH_RSS_FILE;
if (file) process.on('exit', () => writeFileSync(file, String(process.resourceUsage().maxRSS)));
