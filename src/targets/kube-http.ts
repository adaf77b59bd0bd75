import https from 'node:https';
import http from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';
import { sleep } from './retry.js';

/** An API server answer that is not 2xx: `code` and `body` like client-node's ApiException. */
export class KubeHttpError extends Error {
  constructor(
    readonly code: number,
    readonly body: unknown,
    /** Seconds the server asked to wait before trying again (Retry-After), when it did. */
    readonly retryAfter?: number,
  ) {
    const message = (body as { message?: unknown } | undefined)?.message;
    super(`HTTP ${code}${typeof message === 'string' && message ? `: ${message}` : ''}`);
  }
}

/** How often a request the server refused with 429 (not processed: throttled, or storage not ready) is sent again. */
const MAX_429_RETRIES = 5;

/**
 * Plain JSON requests to the API server with the kubeconfig's credentials. Used instead of the
 * generated clients where their model (de)serialisation renames fields (`default` -> `_default`,
 * `from` -> `_from`), which would corrupt server-side apply and reads of LimitRange and NetworkPolicy.
 */
export class KubeHttp {
  private readonly server: URL;

  constructor(private readonly kc: KubeConfig) {
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    this.server = new URL(cluster.server);
  }

  /**
   * One request; a 429 answer (the request was not processed: API Priority and Fairness throttling,
   * or a custom resource's storage being re-initialised) is sent again after its Retry-After (1 s
   * when absent, at most 10 s), up to 5 times, as client-go does.
   */
  async request<T = unknown>(method: string, path: string, opts: { query?: Record<string, string | undefined>; body?: unknown; contentType?: string } = {}): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.once<T>(method, path, opts);
      } catch (e) {
        if (!(e instanceof KubeHttpError) || e.code !== 429 || attempt >= MAX_429_RETRIES) throw e;
        await sleep(Math.min(10, Math.max(1, e.retryAfter ?? 1)) * 1000);
      }
    }
  }

  private async once<T>(method: string, path: string, opts: { query?: Record<string, string | undefined>; body?: unknown; contentType?: string }): Promise<T> {
    const url = new URL(path.replace(/^\//, ''), this.server.href.endsWith('/') ? this.server.href : `${this.server.href}/`);
    for (const [k, v] of Object.entries(opts.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    const body = opts.body === undefined ? undefined : Buffer.from(JSON.stringify(opts.body));
    const options: https.RequestOptions = {
      method,
      headers: {
        accept: 'application/json',
        ...(body ? { 'content-type': opts.contentType ?? 'application/json', 'content-length': String(body.length) } : {}),
      },
    };
    await this.kc.applyToHTTPSOptions(options);
    const mod = url.protocol === 'http:' ? http : https;
    return new Promise<T>((resolve, reject) => {
      const req = mod.request(url, options, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = text;
          try {
            json = text ? JSON.parse(text) : undefined;
          } catch {
            /* keep the text */
          }
          const status = res.statusCode ?? 0;
          if (status >= 200 && status < 300) resolve(json as T);
          else {
            const retryAfter = Number(res.headers['retry-after']);
            reject(new KubeHttpError(status, json, Number.isFinite(retryAfter) ? retryAfter : undefined));
          }
        });
      });
      req.setTimeout(60_000, () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
  }
}
