import type { StackState } from './state.js';

/** Quotes a value as one POSIX shell word. */
export function shellQuote(v: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`;
}

/** `$(cat 'FILE')`: a secret read when the line is evaluated, so it is never printed. */
function catSecret(file: string): string {
  return `$(cat ${shellQuote(file)})`;
}

/** Inside double quotes, only $ ` " \ are special; escape them in literal text. */
function dq(literal: string): string {
  return literal.replace(/[$`"\\]/g, (c) => `\\${c}`);
}

/**
 * Shell `export` lines for the DESIGN §2 variables pointing at the dev stack. Secrets appear as
 * `$(cat file)` substitutions, so `eval "$(systemprompt dev env)"` works and nothing secret is printed.
 */
export function renderEnv(state: StackState): string {
  const lines: string[] = [];
  if (state.keycloak) {
    lines.push(`export SYSTEMPROMPT_KEYCLOAK_URL=${shellQuote(state.keycloak.url)}`);
    lines.push(`export SYSTEMPROMPT_KEYCLOAK_USER=${shellQuote(state.keycloak.user)}`);
    lines.push(`export SYSTEMPROMPT_KEYCLOAK_PASSWORD="${catSecret(state.keycloak.passwordFile)}"`);
  }
  if (state.kube) {
    lines.push(`export KUBECONFIG=${shellQuote(state.kube.kubeconfig)}`);
  }
  if (state.postgres) {
    const url = new URL(state.postgres.url);
    const prefix = `${url.protocol}//${encodeURIComponent(decodeURIComponent(url.username))}:`;
    const rest = `@${url.host}${url.pathname}`;
    lines.push(`export SYSTEMPROMPT_POSTGRES_URL="${dq(prefix)}${catSecret(state.postgres.passwordFile)}${dq(rest)}"`);
  }
  if (state.postgres2) {
    // Its variable is named after the server's name in postgres.servers, which the stack cannot know.
    const url = new URL(state.postgres2.url);
    const prefix = `${url.protocol}//${encodeURIComponent(decodeURIComponent(url.username))}:`;
    lines.push(`# the stack's second PostgreSQL server: with the variables above, the second server of postgres.servers (named NAME) needs`);
    lines.push(`# export SYSTEMPROMPT_POSTGRES_URL_<NAME>="${dq(prefix)}${catSecret(state.postgres2.passwordFile)}${dq(`@${url.host}${url.pathname}`)}"`);
    lines.push(`# (without them, commands use the stack itself, which serves postgres.servers in order)`);
  }
  if (state.redis) {
    // For `systemprompt gateway` (its rate-limit counters); the password is the stack's, read at eval time.
    const url = new URL(state.redis.url);
    lines.push(`export SYSTEMPROMPT_REDIS_URL="${dq(`${url.protocol}//${encodeURIComponent(state.redis.user)}:`)}${catSecret(state.redis.passwordFile)}${dq(`@${url.host}`)}"`);
  }
  if (state.kube) lines.push(`# kubectl for this stack: ${state.kube.kubectl}`);
  return lines.length ? `${lines.join('\n')}\n` : '';
}
