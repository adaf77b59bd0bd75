import https from 'node:https';
import http from 'node:http';
import type { KubeConfig } from '@kubernetes/client-node';

/** An API server answer that is not 2xx: `code` and `body` like client-node's ApiException. */
export class KubeHttpError extends Error {
  constructor(readonly code: number, readonly body: unknown) {
    super(`HTTP ${code}`);
  }
}

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

  async request<T = unknown>(method: string, path: string, opts: { query?: Record<string, string | undefined>; body?: unknown; contentType?: string } = {}): Promise<T> {
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
          else reject(new KubeHttpError(status, json));
        });
      });
      req.setTimeout(60_000, () => req.destroy(Object.assign(new Error('request timed out'), { code: 'ETIMEDOUT' })));
      req.on('error', reject);
      if (body) req.write(body);
      req.end();
    });
  }
}
