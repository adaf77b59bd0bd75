import { createHash } from 'node:crypto';
import type { Diagnostic } from './diagnostics.js';
import { validateAgainst, type ValidatorName } from './schema.js';
import { parseSource, type ParsedSource, type SourceFile } from './source.js';

interface Entry {
  digest: string;
  parsed: ParsedSource;
  /** Schema diagnostics of the parsed file, by the schema it was validated against. */
  validated?: { which: ValidatorName; diagnostics: Diagnostic[] };
}

/**
 * Parsed and schema-validated files of one repository, kept by path and content hash between loads
 * by a process that lives on (`apply --watch`, the operator's ConfigSource sync): a load after one
 * file changed parses and validates that file only. The cross-file rules still see every file.
 * What it hands out is shared between loads and must not be changed.
 */
export class LoadCache {
  private readonly entries = new Map<string, Entry>();
  /** Files parsed (not found, or changed) and files reused, over this cache's life. */
  readonly stats = { parsed: 0, reused: 0 };

  /** parseSource, or its earlier result for the same path and content. */
  parse(file: string, content: Uint8Array | string): ParsedSource {
    const digest = createHash('sha256').update(content).digest('base64');
    const had = this.entries.get(file);
    if (had && had.digest === digest) {
      this.stats.reused++;
      return had.parsed;
    }
    this.stats.parsed++;
    const parsed = parseSource(file, content);
    this.entries.set(file, { digest, parsed });
    return parsed;
  }

  /** validateAgainst, or its earlier result for the same parsed file. */
  validate(which: ValidatorName, source: SourceFile): Diagnostic[] {
    const entry = this.entries.get(source.file);
    if (!entry || entry.parsed.source !== source) return validateAgainst(which, source);
    if (entry.validated?.which !== which) entry.validated = { which, diagnostics: validateAgainst(which, source) };
    return entry.validated.diagnostics;
  }

  /** Forget the files that are no longer in the repository. */
  keepOnly(files: ReadonlySet<string>): void {
    for (const file of this.entries.keys()) if (!files.has(file)) this.entries.delete(file);
  }

  get size(): number {
    return this.entries.size;
  }
}
