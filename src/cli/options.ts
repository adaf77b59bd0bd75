import { Option } from 'commander';

export const outputOption = (): Option => new Option('-o, --output <format>', 'output format').choices(['text', 'json']).default('text');
export const dirOption = (): Option => new Option('--dir <dir>', 'config repository').default('.');
