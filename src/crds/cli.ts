import { readdirSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { crdFiles } from './files.js';

/** `npm run crds`: regenerate crds/*.yaml from schemas/ (README.md there is kept). */
const CRD_DIR = fileURLToPath(new URL('../../crds/', import.meta.url));

const files = crdFiles();
for (const f of readdirSync(CRD_DIR)) {
  if (f.endsWith('.yaml') && !files.has(f)) rmSync(`${CRD_DIR}${f}`);
}
for (const [file, text] of files) writeFileSync(`${CRD_DIR}${file}`, text);
process.stdout.write(`wrote ${[...files.keys()].map((f) => `crds/${f}`).join(', ')}\n`);
