/**
 * An AbortSignal that Ctrl-C (SIGINT) or SIGTERM aborts, for as long as a long-running command
 * wants it; `dispose()` gives the signals back to Node's defaults.
 */
export function interruptSignal(reason?: () => unknown): { signal: AbortSignal; dispose(): void } {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort(reason?.());
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return {
    signal: stop.signal,
    dispose: () => {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    },
  };
}
