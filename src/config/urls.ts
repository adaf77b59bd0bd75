import { didYouMean } from './diagnostics.js';
import type { PathSegment } from './source.js';

/**
 * The URL-valued fields of an agent card (services/agents/*.yaml, `card:`), as paths below `card`;
 * `*` stands for any key or list index. Every one must be an absolute http(s) URL, also those the
 * compiler replaces (the OAuth 2.0 flow endpoints): a typo there is a mistake in the file either way.
 * `capabilities.extensions[].uri` identifies an extension, so any absolute URI is accepted there.
 */
export const CARD_URL_FIELDS: ReadonlyArray<{ path: readonly string[]; anyScheme?: boolean }> = [
  { path: ['url'] },
  { path: ['iconUrl'] },
  { path: ['documentationUrl'] },
  { path: ['provider', 'url'] },
  { path: ['additionalInterfaces', '*', 'url'] },
  { path: ['securitySchemes', '*', 'openIdConnectUrl'] },
  { path: ['securitySchemes', '*', 'oauth2MetadataUrl'] },
  { path: ['securitySchemes', '*', 'flows', '*', 'authorizationUrl'] },
  { path: ['securitySchemes', '*', 'flows', '*', 'tokenUrl'] },
  { path: ['securitySchemes', '*', 'flows', '*', 'refreshUrl'] },
  { path: ['capabilities', 'extensions', '*', 'uri'], anyScheme: true },
];

export interface UrlProblem {
  message: string;
  hint: string;
}

const EXAMPLE = 'an absolute URL looks like https://example.com/path';

/**
 * Why `value` is not an absolute http(s) URL (or, with `anyScheme`, not an absolute URI), or
 * undefined when it is one. Stricter than `new URL()`, which repairs `http:/host` and `http:host`.
 */
export function urlProblem(value: string, opts: { anyScheme?: boolean } = {}): UrlProblem | undefined {
  const what = opts.anyScheme ? 'an absolute URI' : 'an absolute http(s) URL';
  const example = opts.anyScheme ? 'an absolute URI starts with its scheme, e.g. https://example.com/ext or urn:example:ext' : EXAMPLE;
  const shown = JSON.stringify(value.length > 80 ? `${value.slice(0, 77)}...` : value);
  if (value.trim() === '') return { message: `the ${opts.anyScheme ? 'URI' : 'URL'} is empty; ${what} is expected`, hint: example };
  // `localhost:8080/x` parses as the scheme `localhost`; it is a URL without its scheme.
  const hostPort = !opts.anyScheme && /^[A-Za-z0-9.-]+:\d+(?:[/?#]|$)/.test(value);
  const scheme = hostPort ? undefined : /^([A-Za-z][A-Za-z0-9+.-]*):/.exec(value)?.[1];
  if (scheme === undefined) {
    const noColon = /^([A-Za-z][A-Za-z0-9+.-]*)\/\//.exec(value)?.[1];
    if (noColon) return { message: `${shown} is not ${what}: \`:\` is missing after \`${noColon}\``, hint: `write \`${noColon}:${value.slice(noColon.length)}\`` };
    if (value.startsWith('//')) return { message: `${shown} is not ${what}: it has no scheme`, hint: `write \`https:${value}\` or \`http:${value}\`` };
    if (value.startsWith('/')) return { message: `${shown} is a relative URL; ${what} is expected`, hint: `write the scheme and host too; ${EXAMPLE}` };
    if (hostPort || /^[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(?:[/?#][^\s]*)?$/.test(value)) {
      return { message: `${shown} is not ${what}: it has no scheme`, hint: `write \`https://${value}\` or \`http://${value}\`` };
    }
    return { message: `${shown} is not ${what}`, hint: example };
  }
  const space = /[\s\u0000-\u001f\u007f]/.exec(value);
  if (space) {
    const which = space[0] === ' ' ? 'a space' : `the character U+${space[0].charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`;
    return { message: `${shown} is not ${what}: it contains ${which}`, hint: 'remove it, or percent-encode it (a space is %20)' };
  }
  const lower = scheme.toLowerCase();
  const rest = value.slice(scheme.length + 1);
  if (opts.anyScheme) {
    return parses(value) ? undefined : { message: `${shown} is not ${what}`, hint: example };
  }
  if (lower !== 'http' && lower !== 'https') {
    const guess = didYouMean(lower, ['http', 'https']);
    return {
      message: `${shown} is not ${what}: its scheme is \`${scheme}\``,
      hint: guess ? `did you mean \`${guess}://${rest.replace(/^\/*/, '')}\`?` : 'use http:// or https://',
    };
  }
  if (!rest.startsWith('//')) {
    return { message: `${shown} is not ${what}: \`//\` must follow \`${scheme}:\``, hint: `write \`${scheme}://${rest.replace(/^\/*/, '')}\`` };
  }
  const authority = /^\/\/([^/?#]*)/.exec(rest)?.[1] ?? '';
  if (authority === '' || authority.endsWith('@')) {
    return { message: `${shown} is not ${what}: it names no host`, hint: EXAMPLE };
  }
  if (!parses(value)) {
    return { message: `${shown} is not ${what}: the host or port \`${authority}\` is not valid`, hint: EXAMPLE };
  }
  return undefined;
}

function parses(value: string): boolean {
  try {
    new URL(value);
    return true;
  } catch {
    return false;
  }
}

/** Every string at a URL-valued field of `card`, with its path below `card` (non-strings are the schema's concern). */
export function cardUrls(card: Record<string, unknown>): Array<{ path: PathSegment[]; value: string; anyScheme: boolean }> {
  const out: Array<{ path: PathSegment[]; value: string; anyScheme: boolean }> = [];
  for (const field of CARD_URL_FIELDS) {
    const walk = (node: unknown, i: number, at: PathSegment[]): void => {
      if (i === field.path.length) {
        if (typeof node === 'string') out.push({ path: at, value: node, anyScheme: field.anyScheme === true });
        return;
      }
      const seg = field.path[i]!;
      if (Array.isArray(node)) {
        if (seg === '*') node.forEach((item, k) => walk(item, i + 1, [...at, k]));
      } else if (node && typeof node === 'object') {
        const o = node as Record<string, unknown>;
        if (seg === '*') for (const k of Object.keys(o)) walk(o[k], i + 1, [...at, k]);
        else if (Object.prototype.hasOwnProperty.call(o, seg)) walk(o[seg], i + 1, [...at, seg]);
      }
    };
    walk(card, 0, []);
  }
  return out;
}
