/** Types of generate.js, for the tests that use its synthetic repositories. */
export function generateRepository(opts?: { tenants?: number; users?: number; agents?: number }): Map<string, string>;
export function writeRepository(dir: string, files: ReadonlyMap<string, string>): void;
