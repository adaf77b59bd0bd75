import type { StackPaths } from './paths.js';
import type { StackPorts } from './ports.js';

/** What every component of the stack gets: where its files go, its ports, and a progress line. */
export interface DevContext {
  readonly paths: StackPaths;
  readonly ports: StackPorts;
  readonly env: NodeJS.ProcessEnv;
  /** One progress line for a component, shown on stderr. */
  progress(component: string, message: string): void;
}

/** Seconds with one decimal, for progress lines. */
export function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)}s`;
}
