import { readSchema } from '../config/schema.js';
import { generateCrds, renderCrd } from './generate.js';

/** crds/<file> -> text, generated from the schemas in schemas/ (the only I/O: reading them). */
export function crdFiles(): Map<string, string> {
  const generated = generateCrds({ tenant: readSchema('tenant'), agent: readSchema('agent') });
  return new Map(generated.map((g) => [g.file, renderCrd(g)]));
}
