#!/usr/bin/env node
// The notes agent: an example of an agent built on systemprompt/sdk (see README.md here).
//   GET  /notes  (scope read)   the tenant's notes
//   POST /notes  (scope write)  {"text": "..."} adds one
// Each tenant's notes live in that tenant's own database; the table is created on first use.
import http from 'node:http';
import { fromKubernetes, systemprompt } from 'systemprompt/sdk';

const env = process.env;
const sp = systemprompt({
  agent: env.SYSTEMPROMPT_AGENT ?? 'notes',
  // issuers: the JSON in SYSTEMPROMPT_ISSUERS, {"<issuer URL>": ["<tenant>", ...]}
  databases: { secrets: fromKubernetes(), ...(env.SYSTEMPROMPT_NAMESPACE ? { namespaceOf: env.SYSTEMPROMPT_NAMESPACE } : {}) },
});

const MAX_BODY = 64 * 1024;

/** Tenants whose table this process has made sure of (a promise each, so concurrent first calls share it). */
const tables = new Map();
function notesTable(db) {
  let made = tables.get(db.tenant);
  if (!made) {
    made = db
      .query(`CREATE TABLE IF NOT EXISTS notes (
        id bigserial PRIMARY KEY,
        user_id text NOT NULL,
        user_email text,
        text text NOT NULL,
        created_at timestamptz NOT NULL DEFAULT now())`)
      // Two processes creating it at once: one wins, the other's "already exists" is fine.
      .catch((e) => {
        if (e?.code !== '23505' && e?.code !== '42P07') throw e;
      });
    tables.set(db.tenant, made);
    made.catch(() => tables.delete(db.tenant));
  }
  return made;
}

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(text);
}

async function readJson(req) {
  let size = 0;
  const chunks = [];
  for await (const c of req) {
    size += c.length;
    if (size > MAX_BODY) return undefined;
    chunks.push(c);
  }
  try {
    return JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return undefined;
  }
}

const notes = sp.wrap(async (req, res) => {
  const { db, user } = req.systemprompt;
  if (req.method === 'GET') {
    req.systemprompt.requireScope('read');
    await notesTable(db);
    const { rows } = await db.query('SELECT id, user_id, user_email, text, created_at FROM notes ORDER BY id');
    return json(res, 200, { tenant: req.systemprompt.tenant, notes: rows.map((r) => ({ ...r, id: Number(r.id) })) });
  }
  if (req.method === 'POST') {
    req.systemprompt.requireScope('write');
    const body = await readJson(req);
    if (typeof body?.text !== 'string' || body.text === '' || body.text.length > 10_000) return json(res, 400, { error: 'text_required' });
    await notesTable(db);
    const { rows } = await db.query('INSERT INTO notes (user_id, user_email, text) VALUES ($1, $2, $3) RETURNING id, created_at', [user.id, user.email ?? null, body.text]);
    return json(res, 201, { id: Number(rows[0].id), created_at: rows[0].created_at });
  }
  res.setHeader('allow', 'GET, POST');
  return json(res, 405, { error: 'method_not_allowed' });
});

const server = http.createServer((req, res) => {
  const path = (req.url ?? '/').split('?')[0];
  if (path === '/healthz') return json(res, 200, { ok: true });
  if (path === '/notes') return notes(req, res);
  return json(res, 404, { error: 'not_found' });
});

server.listen(Number(env.PORT ?? 3000), env.HOST ?? '127.0.0.1', () => {
  const { address, port } = server.address();
  process.stdout.write(`notes agent listening on http://${address}:${port}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.once(signal, () => {
    server.close();
    server.closeAllConnections?.();
    sp.close().finally(() => process.exit(0));
  });
}
