import { InvalidArgumentError, Option } from 'commander';

export const outputOption = (): Option => new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text');
export const dirOption = (): Option => new Option('--dir <dir>', 'config repository').default('.');

/** `30s`, `2m`, `1h`, `500ms` or plain seconds, as milliseconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)?$/.exec(v.trim());
  if (!m) throw new InvalidArgumentError(`not a duration: ${v} (e.g. 30s, 2m)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(m[1]) * unit);
}
