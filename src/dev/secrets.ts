import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** A random password safe in URLs and shell words: base64url, 32 characters (192 bits). */
export function generatePassword(): string {
  return randomBytes(24).toString('base64url');
}

/** Writes a secret atomically as a 0600 file in a 0700 folder. */
export async function writeSecret(file: string, value: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  await chmod(dirname(file), 0o700);
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, value, { mode: 0o600 });
  await rename(tmp, file);
}

/** Reads a secret file, or undefined when it does not exist. */
export async function readSecret(file: string): Promise<string | undefined> {
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw e;
  }
}

/** The secret in `file`, created with a new random password the first time. */
export async function ensureSecret(file: string): Promise<string> {
  const existing = await readSecret(file);
  if (existing) return existing;
  const value = generatePassword();
  await writeSecret(file, value);
  return value;
}
